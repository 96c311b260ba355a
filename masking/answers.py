"""A JSON answer restored in its bytes: the upstream's document goes back as it came, each token
replaced by its original, with no parse and no re-encoding.

Parsing and writing again a 16 KB answer, and searching its decoded text, cost more than the rest
of restoring it; the answer's UTF-8 bytes say everything needed (`tokens.split_json_tokens`). Every
token in the answer's strings is restored: its texts, tool inputs and error message, as before, and
also any other string (a key of a tool input, say). Ids, signatures and encrypted blocks never hold
one: a token needs underscores between word boundaries, which base64 and `msg_...` ids cannot give.
A document the bytes cannot settle (`None`) is parsed and restored text by text (masking.proxy).

An answer names the same few tokens again and again, and the next answer names them too: each is
looked up once per answer (its originals from what the worker remembers, masking/cache.py), and a
worker remembers how a token as written reads (`_names`) and how an original is JSON-escaped
(`_escaped`), both pure functions of their key.
"""

import time
from collections import Counter

from masking import jsonbody
from masking.store import TenantRef
from masking.tokens import canonical_json_token, split_json_tokens
from masking.unmasker import alookup_originals, kind_of, publish_proxy_unmasking

MAX_REMEMBERED = 10_000  # entries of each of the two memos below; past it, that one starts over


class _Memo(dict):
    """key -> compute(key), bounded; read with `memo[key]` (a plain dict read once remembered)."""

    def __init__(self, compute) -> None:
        super().__init__()
        self.compute = compute

    def __missing__(self, key):
        if len(self) >= MAX_REMEMBERED:
            self.clear()
        value = self[key] = self.compute(key)
        return value


_names = _Memo(canonical_json_token)  # a token as a JSON writes it -> as find_tokens gives it
_escaped = jsonbody.escaped  # an original -> as it stands between the quotes of a JSON string
_kinds = _Memo(lambda written: kind_of(canonical_json_token(written)))  # a token as written -> its kind


async def arestore(
    body: bytes,
    tenant: TenantRef,
    request_id: str | None,
    request: dict[bytes, bytes] | None = None,
    kinds: dict[bytes, str] | None = None,
) -> bytes | None:
    """`body` (JSON) with every token this tenant owns replaced by its original, JSON-escaped, and
    the unmasking event published; unknown tokens stay as they are. None: parse it instead.

    `request`: the request's own tokens, as written -> original as escaped (MaskResult.restore), and
    `kinds` the same tokens -> their kind (MaskResult.kinds). An answer that names only those, as it
    usually does, is restored from them in one pass that also counts them by kind, with no lookup
    per token (`restore_from`)."""
    if request:
        started = time.perf_counter()
        done = restore_from(body, request, kinds)
        if done is not None:
            restored, found = done
            if found:
                counted = found if kinds else lambda: Counter(map(_kinds.__getitem__, found))
                publish_proxy_unmasking(None, 0, tenant, request_id, started, len(body), counted)
            return restored
    parts = split_json_tokens(body)
    if parts is None or len(parts) == 1:
        return None if parts is None else body
    return await _restore(parts, body, tenant, request_id)


try:  # scripts/build_speedups.py builds it (`make run`, `make test`)
    from masking._restore import restore as _native_restore
except ImportError:  # no C compiler where it was installed: the Python pass gives the same answers
    _native_restore = None


def restore_from(
    body: bytes, request: dict[bytes, bytes], kinds: dict[bytes, str] | None = None
) -> tuple[bytes, list[bytes] | dict[str, int]] | None:
    """`body` with its tokens replaced from `request` (token as written -> original as escaped), and
    the tokens as written, in order, or with `kinds` (token as written -> kind) how many of each kind;
    None when a token is not in `request` (or `kinds`), or the bytes alone cannot settle it (then
    `arestore` takes the general path). One C pass (masking/_restore.c) where it is built: the regex
    split alone costs a JSON answer most of its restoring."""
    if _native_restore is not None:
        return _native_restore(body, request, kinds)
    return restore_from_python(body, request, kinds)


def restore_from_python(
    body: bytes, request: dict[bytes, bytes], kinds: dict[bytes, str] | None = None
) -> tuple[bytes, list[bytes] | dict[str, int]] | None:
    """`restore_from` without the C pass."""
    parts = split_json_tokens(body)
    if parts is None:
        return None
    if len(parts) == 1:
        return body, {} if kinds is not None else []
    written = parts[1::2]
    replaced = list(map(request.get, written))
    if None in replaced or (kinds is not None and not all(token in kinds for token in written)):
        return None
    parts[1::2] = replaced
    return b"".join(parts), dict(Counter(map(kinds.__getitem__, written))) if kinds is not None else written


async def _restore(parts: list[bytes], body: bytes, tenant: TenantRef, request_id: str | None) -> bytes:
    """`arestore` for an answer cut around its tokens: each looked up once."""
    started = time.perf_counter()
    written = parts[1::2]
    occurrences = Counter(written)  # each token as written, once, in order of appearance
    names = list(map(_names.__getitem__, occurrences))
    restored = dict(zip(names, occurrences.values(), strict=True))  # by token, if each is written one way
    originals = await alookup_originals(list(restored), tenant)
    if len(originals) == len(names):  # the usual answer: every token known, each written one way
        escaped = map(_escaped.__getitem__, map(originals.__getitem__, names))
        replacements = dict(zip(occurrences, escaped, strict=True))
        unresolved = 0
    else:
        replacements, restored = {}, {}
        for token, name in zip(occurrences, names, strict=True):
            if (original := originals.get(name)) is not None:
                replacements[token] = _escaped[original]
                restored[name] = restored.get(name, 0) + occurrences[token]
        unresolved = len(written) - sum(restored.values())
    parts[1::2] = map(replacements.get, written, written)  # an unknown token stays as written
    publish_proxy_unmasking(restored, unresolved, tenant, request_id, started, len(body))
    return b"".join(parts)
