"""Mask texts: the service behind the REST API, the proxy and the CLI (masking/unmasker.py restores them).

One call scans every text, makes one store round trip, applies the tenant's policy per kind
(mask, redact or leave), and publishes one event after the work is done (a masking event in the
same round trip: the store's script publishes it once the mappings are written). The proxy's async
calls also use what the worker remembers (masking/cache.py): long texts already scanned, and
mappings already confirmed, which spare the store script and the MGET; they still read the mapping
epoch from Redis first, which fails closed.
"""

import asyncio
import functools
import operator
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import NamedTuple

from masking import cache, deferred, events, jsonbody, policy, repeats, store
from masking.engine import KINDS, Match, scan
from masking.models import DEFAULT_TENANT
from masking.tokens import redaction_marker


class Entity(NamedTuple):
    """An identifier replaced in a masked text; start and end index the *masked* text."""

    token: str
    kind: str
    start: int
    end: int


@dataclass(slots=True)
class MaskResult:
    texts: list[str]
    entities: list[list[Entity]]  # per text
    counts_by_kind: dict[str, int]
    new_mappings: int
    # Each token used, as a JSON text writes it -> its original as it stands between the quotes of a
    # JSON string: what restoring an answer to this request needs (masking.answers). Never mutate:
    # it may be a remembered text's own.
    restore: dict[bytes, bytes] = field(default_factory=dict)
    kinds: dict[bytes, str] = field(default_factory=dict)  # the same tokens -> their kind (`kind_of`)


@dataclass(slots=True)
class _MaskPlan:
    texts: list[str]
    found: list[list[tuple[Match, str]]]  # per text: (match, mode), mode "mask" or "redact"
    counts: dict[str, int] = field(default_factory=dict)  # kind -> matches kept, in every text
    scanned: list["_Scanned"] = field(default_factory=list)  # per text
    # Where `prefixes` comes from, in order: a text's (original, prefix) pairs, or a pass's
    # (text, matches, kind) whose matches of that kind it added. Read only if needed: a request
    # whose texts are remembered masked needs no prefixes.
    sources: list[tuple] = field(default_factory=list)
    _prefixes: dict[str, str] | None = None
    _size: int | None = None
    _stem: tuple[str, str, "events.Stem"] | None = None  # (tenant slug, source, its masking event's stem)

    def stem(self, slug: str, source: str) -> "events.Stem":
        """The stem of this plan's masking event (`events.Stem`), made once per tenant and source."""
        if self._stem is None or self._stem[:2] != (slug, source):
            stats = store.fixed_mask_counters(self.counts)  # every identifier masked is counted by kind
            stem = events.Stem(events.MASKING, tenant=slug, source=source, counts_by_kind=self.counts, stats=stats)
            self._stem = (slug, source, stem)
        return self._stem[2]

    @property
    def prefixes(self) -> dict[str, str]:
        """original -> token prefix, first seen wins."""
        if self._prefixes is None:
            prefixes: dict[str, str] = {}
            for source in self.sources:
                if len(source) == 3:  # (text, matches, kind): what a pass added
                    text, found, kind = source
                    prefix = policy.prefix_of(kind)
                    for match, _ in found:
                        if match.kind == kind:
                            prefixes.setdefault(text[match.start : match.end], prefix)
                else:
                    for original, prefix in source[0]:
                        prefixes.setdefault(original, prefix)
            self._prefixes = prefixes
        return self._prefixes

    @property
    def items(self) -> list[tuple[str, str]]:
        return [(prefix, original) for original, prefix in self.prefixes.items()]

    @property
    def size(self) -> int:
        """The texts' size in UTF-8 bytes, as the masking event reports it."""
        if self._size is None:
            self._size = sum(scanned.byte_size(text) for scanned, text in zip(self.scanned, self.texts, strict=True))
        return self._size


class _Output:
    """A text masked with the tokens it got, and while it stays right: for `tenant`, while the
    mapping cache keeps `version` and until `until` (time.monotonic()), when an entry it used is
    due for a refresh."""

    __slots__ = ("found", "used", "text", "entities", "restore", "kinds", "tenant", "version", "until")

    def __init__(self, found, used, text, entities, restore, kinds) -> None:
        self.found, self.used, self.text, self.entities = found, used, text, entities
        self.restore, self.kinds = restore, kinds
        self.tenant: str | None = None
        self.version = -1
        self.until = 0.0


class _Scanned:
    """The engine's matches in one text, and what was made of them last time: where the text has
    12 digits in a row, its plan under the current policy, its masked form with the tokens it got.
    Remembered texts (a conversation's earlier turns) skip all of that when nothing changed."""

    __slots__ = ("matches", "twelve_digits", "size", "plan", "output", "more")

    def __init__(self, matches: list[Match]) -> None:
        self.matches = matches
        self.twelve_digits: list[tuple[int, int]] | None = None
        self.size: int | None = None  # in UTF-8 bytes
        self.plan: _TextPlan | None = None
        self.output: _Output | None = None  # the text masked last
        self.more: dict[str, tuple] = {}  # what `with_more` added last, per pass: (kept, key, matches)

    def byte_size(self, text: str) -> int:
        if self.size is None:
            self.size = byte_size([text])
        return self.size

    def twelve_digit_runs(self, text: str) -> list[tuple[int, int]]:
        if self.twelve_digits is None:
            self.twelve_digits = [m.span() for m in repeats.TWELVE_DIGITS.finditer(text)]
        return self.twelve_digits

    def plan_for(self, text: str, modes: dict[str, str]) -> "_TextPlan":
        if self.plan is None or self.plan.modes is not modes:  # a policy snapshot keeps its dict
            self.plan = _TextPlan.of(text, self.matches, modes)
        return self.plan

    def with_more(self, name: str, kept: list, key: tuple, more, *args) -> list:
        """`kept` with the matches `more(*args)` adds, in order; remembered per `kept` and `key` (the
        request's accounts or buckets, the mode), so an unchanged text skips the pass `name`."""
        last = self.more.get(name)
        if last is not None and last[0] is kept and last[1] == key:
            return last[2]
        extra = more(*args)
        found = sorted(kept + extra, key=lambda pair: pair[0].start) if extra else kept
        self.more[name] = (kept, key, found)
        return found

    def masked(self, text: str, found: list[tuple[Match, str]], tokens: dict[str, str]) -> _Output:
        """`text` masked, and remembered: `_apply_masking` says for which tenant and until when."""
        used = [tokens[text[match.start : match.end]] if mode == policy.MASK else mode for match, mode in found]
        last = self.output
        if last is not None and (last.found is found or last.found == found) and last.used == used:
            # The same matches in a list made again (a policy reloaded): `remembered()` checks this one.
            last.found = found
            return last
        masked, entities = _masked(text, found, tokens)
        escaped = jsonbody.escaped
        restore, kinds = {}, {}
        for (match, mode), token in zip(found, used, strict=True):
            if mode == policy.MASK:
                written = token.encode()
                restore[written] = escaped[text[match.start : match.end]]
                kinds[written] = kind_of(token)
        self.output = _Output(found, used, masked, entities, restore, kinds)
        return self.output

    def remembered(self, found: list[tuple[Match, str]], tenant: str, version: int, now: float) -> _Output | None:
        """The text as masked last, if masking it again now would give the same."""
        last = self.output
        if last is None or last.found is not found or last.version != version or last.tenant != tenant:
            return None
        return last if now < last.until else None


@dataclass(slots=True)
class _TextPlan:
    """One text's matches under a policy: those kept (with their mode), counts, token prefixes,
    and the account ids its ARNs or labels show."""

    modes: dict[str, str]
    kept: list[tuple[Match, str]]  # never changed once made: texts and requests share it
    counts: dict[str, int]
    prefixes: list[tuple[str, str]]  # (original, token prefix), in order
    accounts: frozenset[str]
    buckets: frozenset[str]  # bucket names to mask wherever else the request names them (masking.repeats)

    @classmethod
    def of(cls, text: str, matches: list[Match], modes: dict[str, str]) -> "_TextPlan":
        kept, counts, prefixes, accounts, buckets = [], Counter(), [], set(), set()
        for match in matches:
            mode = modes.get(match.kind, policy.MASK)  # a kind without a policy is masked: fail safe
            if mode == policy.OFF:
                continue
            kept.append((match, mode))
            counts[match.kind] += 1
            original = text[match.start : match.end]
            if mode == policy.MASK:
                prefixes.append((original, policy.prefix_of(match.kind)))
            inner = repeats.ARN_ACCOUNT.match(text, match.start, match.end)
            if inner:
                accounts.add(inner.group(1))
            elif match.kind == "account_id":
                accounts.add(original)
            if bucket := repeats.bucket_named(text, match):
                buckets.add(bucket)
        return cls(modes, kept, dict(counts), prefixes, frozenset(accounts), frozenset(buckets))


def _scanned(text: str, rules: tuple) -> _Scanned:
    """`scan(text, rules)`, remembered for long texts: a conversation resends its earlier turns."""
    found = cache.scans.get(rules, text)
    if found is None:
        found = _Scanned(scan(text, rules))
        cache.scans.put(rules, text, found)
    return found


# The last plan made, and what it was made from: a conversation's turn sent again (a retry, or the
# same texts read back as the same strings, masking.jsonbody) is planned once.
_last_plan: tuple[dict, tuple, list[str], _MaskPlan] | None = None


def _plan_masking(texts: list[str], tenant: store.TenantRef) -> _MaskPlan:
    global _last_plan
    modes = policy.effective_modes(tenant)
    rules = policy.extra_rules(tenant)
    last = _last_plan
    if (
        last is not None
        and last[0] is modes
        and last[1] is rules
        and len(last[2]) == len(texts)
        and all(map(operator.is_, last[2], texts))
    ):
        return last[3]
    plan = _plan_texts(texts, modes, rules)
    _last_plan = (modes, rules, list(texts), plan)
    return plan


def _plan_texts(texts: list[str], modes: dict[str, str], rules: tuple) -> _MaskPlan:
    plan = _MaskPlan(texts, [])
    plan.scanned = [_scanned(text, rules) for text in texts]
    accounts: set[str] = set()
    buckets: set[str] = set()
    for text, scanned in zip(texts, plan.scanned, strict=True):
        text_plan = scanned.plan_for(text, modes)
        plan.found.append(text_plan.kept)
        counts = plan.counts
        for kind, n in text_plan.counts.items():
            counts[kind] = counts.get(kind, 0) + n
        if text_plan.prefixes:
            plan.sources.append((text_plan.prefixes,))
        accounts |= text_plan.accounts
        buckets |= text_plan.buckets
    if accounts and modes.get("account_id", policy.MASK) != policy.OFF:
        _mask_known_accounts(plan, accounts, modes.get("account_id", policy.MASK))
    if buckets and modes.get(repeats.KIND, policy.MASK) != policy.OFF:
        _mask_known_buckets(plan, frozenset(buckets), modes.get(repeats.KIND, policy.MASK))
    return plan


def _mask_known_buckets(plan: _MaskPlan, names: frozenset[str], mode: str) -> None:
    """A bucket the request names in an ARN, a URI or a field is masked wherever else it stands."""
    for index, text in enumerate(plan.texts):
        kept, scanned = plan.found[index], plan.scanned[index]
        found = scanned.with_more("buckets", kept, (names, mode), repeats.more_buckets, text, kept, names, mode)
        _add_found(plan, index, found, repeats.KIND, mode)


def _add_found(plan: _MaskPlan, index: int, found: list[tuple[Match, str]], kind: str, mode: str) -> None:
    """Text `index` with the matches of `kind` a pass added (`found`, which is its matches as they were
    when the pass added none): counted, and their originals given a token prefix."""
    kept = plan.found[index]
    if found is kept:
        return
    plan.found[index] = found
    plan.counts[kind] = plan.counts.get(kind, 0) + len(found) - len(kept)
    if mode == policy.MASK:
        plan.sources.append((plan.texts[index], found, kind))


def _mask_known_accounts(plan: _MaskPlan, accounts: set[str], mode: str) -> None:
    """An account id seen in an ARN or next to a label is masked wherever else it stands bare.

    The engine only takes a bare 12-digit number for an account when its context says so (most
    12-digit numbers are not accounts); once the request itself shows that number is an account,
    leaving its other occurrences would leak it ("owned by 123456789012").
    """
    accounts = frozenset(accounts)
    for index, text in enumerate(plan.texts):
        kept, scanned = plan.found[index], plan.scanned[index]
        runs = scanned.twelve_digit_runs(text)
        found = scanned.with_more(
            "accounts", kept, (accounts, mode), repeats.more_accounts, text, kept, runs, accounts, mode
        )
        _add_found(plan, index, found, "account_id", mode)


def _masked(text: str, found: list[tuple[Match, str]], tokens: dict[str, str]) -> tuple[str, list[Entity]]:
    parts, entities, pos, length = [], [], 0, 0
    for match, mode in found:
        if mode == policy.MASK:
            token = tokens[text[match.start : match.end]]
        else:
            token = redaction_marker(policy.prefix_of(match.kind))
        length += match.start - pos
        entities.append(Entity(token, match.kind, length, length + len(token)))
        parts += (text[pos : match.start], token)
        length += len(token)
        pos = match.end
    parts.append(text[pos:])
    return "".join(parts), entities


def _apply_masking(
    plan: _MaskPlan, stored: store.StoredTokens, tenant: str | None = None, until: float = 0.0
) -> MaskResult:
    """The texts masked with the store's tokens; with `tenant` and `until`, which tell until when
    the tokens are the mapping cache's, each masked text is remembered for `_remembered_result`."""
    tokens = dict(zip(plan.prefixes, stored.tokens, strict=True))
    outputs = [
        scanned.masked(text, found, tokens)
        for text, found, scanned in zip(plan.texts, plan.found, plan.scanned, strict=True)
    ]
    if tenant is not None:
        version = cache.mappings.version
        for output in outputs:
            output.tenant, output.version, output.until = tenant, version, until
    return _result(plan, outputs, stored.new_mappings)


def _result(plan: _MaskPlan, outputs: list[_Output], new_mappings: int) -> MaskResult:
    with_tokens = [output for output in outputs if output.restore]
    if len(with_tokens) == 1:
        restore, kinds = with_tokens[0].restore, with_tokens[0].kinds
    else:
        restore, kinds = {}, {}
        for output in with_tokens:
            restore.update(output.restore)
            kinds.update(output.kinds)
    return MaskResult(
        texts=[output.text for output in outputs],
        entities=[output.entities for output in outputs],
        counts_by_kind=dict(plan.counts),
        new_mappings=new_mappings,
        restore=restore,
        kinds=kinds,
    )


def _remembered_result(plan: _MaskPlan, tenant: str) -> MaskResult | None:
    """The request masked from the texts' remembered outputs (a conversation's earlier turns), with
    no lookup per identifier; None unless every text with something to mask has a valid one."""
    version, now = cache.mappings.version, time.monotonic()
    outputs = []
    for text, found, scanned in zip(plan.texts, plan.found, plan.scanned, strict=True):
        if not found:
            outputs.append(_Output(found, [], text, [], {}, {}))
            continue
        output = scanned.remembered(found, tenant, version, now)
        if output is None:
            return None
        outputs.append(output)
    return _result(plan, outputs, 0)


_KIND_BY_PREFIX = {kind.prefix: kind.name for kind in KINDS.values()}


@functools.lru_cache(maxsize=4096)  # an answer names the same few tokens many times
def kind_of(token: str) -> str:
    """The kind a token stands for, from its name (a custom rule's prefix, lowercased, if not built in)."""
    prefix = token[len("AWS_") : token.rindex("_")]
    return _KIND_BY_PREFIX.get(prefix, prefix.lower())


def byte_size(texts: list[str]) -> int:
    """The texts' size in UTF-8 bytes (what the events report)."""
    return sum(len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass")) for text in texts)


def _masking_event(plan: _MaskPlan, tenant, source, request_id, started: float, ended: float | None = None) -> dict:
    """The event the store publishes with the mappings (it adds `new_mappings`). Its duration is
    the time up to the store call (or `ended`): the script's own time is not known before it runs."""
    return events.build_event(
        events.MASKING,
        tenant=store.tenant_slug(tenant),
        source=source,
        request_id=request_id,
        counts_by_kind=plan.counts,
        duration_ms=((ended or time.perf_counter()) - started) * 1000,
        bytes=plan.size,
    )


def mask_texts(
    texts: list[str], tenant: store.TenantRef = DEFAULT_TENANT, source: str = "api", request_id: str | None = None
) -> MaskResult:
    """Mask every text; raises store.MaskingUnavailable rather than return anything unmasked."""
    started = time.perf_counter()
    policy.refresh()
    plan = _plan_masking(texts, tenant)
    event = _masking_event(plan, tenant, source, request_id, started)
    stored = store.get_or_create_tokens(plan.items, tenant, plan.counts, events.for_store(event))
    result = _apply_masking(plan, stored)
    events.observe_published(event, stored.event_published, time.perf_counter() - started)
    return result


async def start_epoch_read() -> asyncio.Future:
    """The mapping epoch's GET, with the events earlier requests left queued, written to Redis at
    once (after connecting, if this loop's line is not connected yet): a caller that starts it early
    (the proxy, before reading and parsing the body) hides the round trip behind its own work, and
    the read always went out after its request arrived. Pass it to one `amask_texts` call.
    When Redis has said that nothing changed since the last read (masking/tracking.py), no read goes
    out: the future holds that read's answer."""
    loop = asyncio.get_running_loop()
    watch = store.epoch_watch()
    known = watch.trusted(loop)
    if known is not None:  # nothing changed since the last read, Redis says (masking/tracking.py)
        read = loop.create_future()
        read.set_result(known)
        return read
    queued = events.take_queued()
    read = store.start_mapping_epoch_read([(channel, message) for _, channel, message in queued])
    watch.reading(read, loop)
    if queued:
        read.add_done_callback(functools.partial(_settle_queued, queued))
    read.add_done_callback(deferred.retrieved)  # its error is raised by amask_texts, unless nothing awaits it
    if isinstance(read, asyncio.Task):
        await asyncio.sleep(0)  # the line connects first: let that start now
    return read


def _settle_queued(queued: list, read: asyncio.Future) -> None:
    """The outcome of the events that went out with an epoch read: its first replies."""
    if read.cancelled():
        replies = [None] * len(queued)  # the replies were dropped: not known to be published
    elif read.exception() is not None:
        replies = [read.exception()] * len(queued)
    else:
        replies = read.result()[: len(queued)]
    events.settle_soon(queued, replies)


async def amask_texts(
    texts: list[str],
    tenant: store.TenantRef = DEFAULT_TENANT,
    source: str = "api",
    request_id: str | None = None,
    epoch: asyncio.Future | None = None,
) -> MaskResult:
    """`mask_texts` for the proxy: identifiers this worker has seen lately take no store script
    (masking/cache.py); the mapping epoch (`start_epoch_read()`, unless the caller started it) is
    read while the texts are scanned and masked with what the worker remembers, and fails closed.
    What was masked is used only if the epoch is still the one it was remembered under."""
    started = time.perf_counter()
    if epoch is None:
        epoch = await start_epoch_read()  # the GET goes out now, and its answer waits while the texts are scanned
    await policy.arefresh()
    plan = _plan_masking(texts, tenant)
    slug = store.tenant_slug(tenant)
    remembered_under = cache.mappings.epoch
    result = _remembered_result(plan, slug)
    if result is None:
        known = cache.mappings.tokens_until(slug, plan.prefixes)
        if known is not None:
            result = _apply_masking(plan, store.StoredTokens(known[0], 0), slug, known[1])
    current = (await store.amapping_epoch(read=epoch))[0]
    cache.mappings.use_epoch(current)
    if result is not None and current == remembered_under:
        events.publish_stem(plan.stem(slug, source), request_id, (time.perf_counter() - started) * 1000, plan.size)
        return result
    event = _masking_event(plan, tenant, source, request_id, started)
    stored = await store.aget_or_create_tokens(plan.items, tenant, plan.counts, events.for_store(event))
    until = cache.mappings.remember(slug, list(plan.prefixes), stored.tokens, await store.attl_seconds(tenant))
    result = _apply_masking(plan, stored, slug, until)
    await events.aobserve_published(event, stored.event_published, time.perf_counter() - started)
    return result


# --- JSON documents: every string value, keys untouched ----------------------------------------------

JsonPath = tuple[str | int, ...]


def string_slots(document) -> tuple[list, list[tuple[dict | list, str | int, JsonPath]]]:
    """Where the strings are, in document order. Iterative: a deeply nested document cannot overflow."""
    holder = [document]
    slots, stack = [], [(holder, 0, ())]
    while stack:
        container, key, path = stack.pop()
        value = container[key]
        if isinstance(value, str):
            slots.append((container, key, path))
        elif isinstance(value, dict):
            stack.extend((value, k, (*path, k)) for k in reversed(list(value)))
        elif isinstance(value, list):
            stack.extend((value, i, (*path, i)) for i in reversed(range(len(value))))
    return holder, slots


def with_strings(holder: list, slots: list, texts: list[str]):
    for (container, key, _), text in zip(slots, texts, strict=True):
        container[key] = text
    return holder[0]


def mask_json(document, tenant=DEFAULT_TENANT, source="api", request_id=None) -> tuple[object, MaskResult, list]:
    """Mask every string value of a parsed JSON document (changed in place); also returns each string's path."""
    holder, slots = string_slots(document)
    result = mask_texts([container[key] for container, key, _ in slots], tenant, source, request_id)
    return with_strings(holder, slots, result.texts), result, [path for _, _, path in slots]
