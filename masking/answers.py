"""A JSON answer restored in its bytes: the upstream's document goes back as it came, each token
replaced by its original, with no parse and no re-encoding.

Parsing and writing again a 16 KB answer, and searching its decoded text, cost more than the rest
of restoring it; the answer's UTF-8 bytes say everything needed (`tokens.split_json_tokens`). Every
token in the answer's strings is restored: its texts, tool inputs and error message, as before, and
also any other string (a key of a tool input, say). Ids, signatures and encrypted blocks never hold
one: a token needs underscores between word boundaries, which base64 and `msg_...` ids cannot give.
A document the bytes cannot settle (`None`) is parsed and restored text by text (masking.proxy).
"""

import json
import time
from collections import Counter

import orjson

from masking.store import TenantRef
from masking.tokens import split_json_tokens
from masking.unmasker import alookup_originals, publish_proxy_unmasking


async def arestore(body: bytes, tenant: TenantRef, request_id: str | None) -> bytes | None:
    """`body` (JSON) with every token this tenant owns replaced by its original, JSON-escaped, and
    the unmasking event published; unknown tokens stay as they are. None: parse it instead."""
    parts = split_json_tokens(body)
    if parts is None or len(parts) == 1:
        return None if parts is None else body
    started = time.perf_counter()
    written = parts[1::2]
    found = [(token.replace(b"\\", b"") if b"\\" in token else token).decode() for token in written]
    originals = await alookup_originals(list(dict.fromkeys(found)), tenant)
    escaped = {token: _json_string(original) for token, original in originals.items()}
    parts[1::2] = [escaped.get(token, as_written) for token, as_written in zip(found, written, strict=True)]
    restored = Counter(token for token in found if token in escaped)
    publish_proxy_unmasking(restored, len(found) - restored.total(), tenant, request_id, started, len(body))
    return b"".join(parts)


def _json_string(text: str) -> bytes:
    """`text` as it stands between the quotes of a JSON string."""
    try:
        return orjson.dumps(text)[1:-1]
    except orjson.JSONEncodeError:  # a lone surrogate: escaped, as the standard encoder writes it
        return json.dumps(text).encode()[1:-1]
