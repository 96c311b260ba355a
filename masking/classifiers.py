"""What the rules cannot say in a regex: which kind an ARN or an address is, whether a bucket-looking
value can be one, and where an identifier starts and ends when Hyperscan's gate found it.

Each classifier takes the scanned bytes and the match's span and returns a kind name, None (not an
identifier after all) or PROTECT (identifies nobody: leave it and everything inside it alone).
"""

import ipaddress
import re
from collections.abc import Callable
from functools import lru_cache

PROTECT = ""

_ARN_KINDS = {
    "lambda": "lambda_arn",
    "ecs": "ecs_arn",
    "eks": "eks_arn",
    "elasticloadbalancing": "elb_arn",
    "rds": "rds_arn",
    "dynamodb": "dynamodb_arn",
    "sns": "sns_arn",
    "sqs": "sqs_arn",
    "kms": "kms_arn",
    "secretsmanager": "secret_arn",
    "ssm": "ssm_arn",
    "cloudformation": "cloudformation_arn",
    "states": "stepfunctions_arn",
    "kinesis": "kinesis_arn",
    "firehose": "kinesis_arn",
    "logs": "log_group_arn",
    "acm": "acm_arn",
    "ecr": "ecr_arn",
    "s3": "s3_arn",
}
_IAM_KINDS = {
    "role": "iam_role_arn",
    "user": "iam_user_arn",
    "group": "iam_group_arn",
    "policy": "iam_policy_arn",
    "instance-profile": "iam_instance_profile_arn",
}


def classify_arn(data: bytes, start: int, end: int) -> str | None:
    parts = data[start:end].decode("ascii").split(":", 5)
    if len(parts) < 6:  # punctuation trimmed from the end was all there was after the head
        return None
    _, _, service, _, account, resource = parts
    resource = resource.replace("\\/", "/")
    if account == "aws" or resource.startswith(("alias/aws/", "parameter/aws/")):
        return PROTECT
    if not account and service == "states":  # service integrations: arn:aws:states:::sqs:sendMessage
        return PROTECT
    if service == "iam":
        return _IAM_KINDS.get(resource.split("/", 1)[0], "arn")
    if service == "sts":
        return "sts_assumed_role_arn" if resource.startswith("assumed-role/") else "arn"
    return _ARN_KINDS.get(service, "arn")


_PERCENT_COLON = re.compile(rb"%3[Aa]")
_PERCENT_SLASH = re.compile(rb"%2[Ff]")


def classify_encoded_arn(data: bytes, start: int, end: int) -> str | None:
    """A URL-encoded ARN (`arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fdeploy`), as its decoded form is."""
    decoded = _PERCENT_SLASH.sub(b"/", _PERCENT_COLON.sub(b":", data[start:end]))
    return classify_arn(decoded, 0, len(decoded))


_ARN_BYTES = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+=,.@_/:*$#%!-")


def arn_span(data: bytes, start: int, end: int) -> tuple[int, int] | None:
    """The ARN's gate is its regex, but for the lengths the regex bounds, and a terminator byte
    (none at the end of the text). Within those bounds, the gate's span less its terminator is
    the regex's match."""
    stop = end if data[end - 1] in _ARN_BYTES else end - 1
    if stop - start > 2048:
        return None
    _, _, service, region, _ = data[start:stop].split(b":", 4)
    return (start, stop) if len(service) <= 64 and len(region) <= 32 else None


# `v1.2.3.4` is already excluded (a letter is glued to it); these are "version 1.2.3.4" and friends,
# as words of their own: inside an identifier (`role/version`) the word is gone once that is masked.
_VERSION_BEFORE = re.compile(rb"(?<![A-Za-z0-9_/:.\\-])(?i:version|release|ver|rev|build)[\s:=]{0,3}\Z")
_LABEL_SEPARATORS = frozenset(b" \t\r\n:=")  # the only bytes a version label leaves before an address
_VERSION_ENDS = frozenset(b"nerdvNERDV")
_SPECIAL_V4 = {b"169.254.169.254", b"169.254.169.253", b"169.254.170.2"}  # instance metadata, DNS, ECS
_DIGITS = frozenset(b"0123456789")
_AFTER_SEPARATOR = frozenset(b" \t\r\n:=nerdvNERDV")  # a version label may end two bytes before


def ipv4_candidates(data: bytes, gates: list[tuple], priority: int) -> list[tuple]:
    """Addresses from the gates' hits `(start, rule id, -end, None)`, as candidates `(start, priority,
    -end, kind)`, in one loop with no call per address: 100 KB can hold 12,000 of them."""
    found, digits, separators, by_prefix = [], _DIGITS, _LABEL_SEPARATORS, _V4_BY_PREFIX
    after_separator, append = _AFTER_SEPARATOR, found.append
    for start, _, neg_end, _ in gates:
        if start or data[0] not in digits:  # the gate took the byte before the address (or `^`)
            start += 1
        end = -neg_end
        if data[end - 1] not in digits:  # and one byte after it, or two: `.` and a non-digit
            end -= 2 if data[end - 2] == 46 else 1
        kind = by_prefix[data[start : start + 3]]
        if not kind:
            if kind is None or (kind := _ipv4_kind(data[start:end])) is None:
                continue
        if data[start - 1] in separators and data[start - 2] in after_separator and start > 1:
            if _after_version_label(data, start):
                continue
        append((start, priority, -end, kind))
    return found


def _after_version_label(data: bytes, start: int) -> bool:
    last, separators = start - 1, _LABEL_SEPARATORS
    while last > 0 and start - last < 4 and data[last] in separators:
        last -= 1
    return data[last] in _VERSION_ENDS and _VERSION_BEFORE.search(data, max(0, start - 12), start) is not None


def classify_ipv4(data: bytes, start: int, end: int) -> str | None:
    kind = _ipv4_kind(data[start:end])
    if kind and start and data[start - 1] in _LABEL_SEPARATORS and _after_version_label(data, start):
        return None
    return kind


def _ipv4_kind(value: bytes) -> str | None:
    if value in _SPECIAL_V4:
        return None
    first, second, _ = value.split(b".", 2)
    a, b = int(first), int(second)
    if a in (0, 127, 255) or a >= 224:  # "this network", loopback, multicast and reserved: nobody's
        return None
    if a == 10 or (a == 172 and 16 <= b <= 31) or (a == 192 and b == 168) or (a == 100 and 64 <= b <= 127):
        return "ipv4_private"
    return "ipv4_private" if a == 169 and b == 254 else "ipv4_public"


def _v4_prefix_kinds() -> dict[bytes, str | None]:
    """The kind by the first three bytes of an address (the first octet, or 1-digit octet, dot and
    a digit): None when nobody's, "" (falsy) for 100, 169, 172 and 192, where the second octet decides."""
    table = {}
    for a in range(256):
        kind = "" if a in (100, 169, 172, 192) else _ipv4_kind(b"%d.0.0.1" % a)
        for key in [b"%d.%d" % (a, digit) for digit in range(10)] if a < 10 else [(b"%d." % a)[:3]]:
            table[key] = kind
    return table


_V4_BY_PREFIX = _v4_prefix_kinds()


def classify_ipv6(data: bytes, start: int, end: int) -> str | None:
    return _ipv6_kind(data[start:end])


@lru_cache(maxsize=4096)
def _ipv6_kind(value: bytes) -> str | None:
    text = value.decode("ascii")
    try:
        address = ipaddress.IPv6Address(text)
    except ValueError:
        return None
    if address.is_loopback or address.is_unspecified or not any(c.isdigit() for c in text):
        return None
    groups = [g for g in text.split(":") if g]
    if len(groups) < 3 and max(map(len, groups)) < 3:  # `a[1::2]` is a slice, not an address
        return None
    return "ipv6"


def value_before_gate_end(kind: str, offset: int, length: int) -> Callable[[bytes, list[tuple], int], list[tuple]]:
    """For a gate that is its regex exactly, with a value of fixed length `offset` bytes before its end."""

    def candidates(data: bytes, gates: list[tuple], priority: int) -> list[tuple]:
        return [(-neg_end - offset, priority, neg_end + offset - length, kind) for _, _, neg_end, _ in gates]

    return candidates


def token_candidates(data: bytes, gates: list[tuple], priority: int) -> list[tuple]:
    """Tokens from the gates' hits, as candidates of kind PROTECT. The gate stops after three
    digits of the number: the token goes on to the last one."""
    size, found = len(data), []
    for start, _, neg_end, _ in gates:
        end = -neg_end
        while end < size and 48 <= data[end] <= 57:
            end += 1
        found.append((start, priority, -end, PROTECT))
    return found


_DIGITS_AND_DOTS = re.compile(rb"[0-9.]+")
_YAML_WORDS = {b"true", b"false", b"null", b"none", b"yes", b"no", b"name", b"bucket"}


def classify_bucket(data: bytes, start: int, end: int) -> str | None:
    return "s3_bucket" if _is_bucket(data[start:end]) else None


def _is_bucket(value: bytes) -> bool:
    return b".." not in value and value not in _YAML_WORDS and not _DIGITS_AND_DOTS.fullmatch(value)


def classify_distribution(data: bytes, start: int, end: int) -> str | None:
    return "cloudfront_distribution" if any(48 <= c <= 57 for c in data[start:end]) else None


def classify_unlabelled_secret(data: bytes, start: int, end: int) -> str | None:
    """Without a label, 40 characters after a key id are its secret only if they look like one:
    mixed-case base64 (two access key ids glued together are not a secret)."""
    value = data[start:end]
    return "secret_access_key" if value.upper() != value and value.lower() != value else None


def not_before_digit_group(kind: str) -> Callable[[bytes, int, int], str | None]:
    def classify(data: bytes, start: int, end: int) -> str | None:
        return None if data[end : end + 1] == b"-" and data[end + 1 : end + 2].isdigit() else kind

    return classify


# --- lists after a label --------------------------------------------------------------------
# A context kind's label vouches for the first value after it; these find the other items of the
# same list, from the end of that value on. Each step is one anchored match of a bounded regex that
# consumes its item, so a list costs one look per item, and the walk stops at the first byte that
# does not continue the list. A token (`AWS_S3_BUCKET_001`, already masked) is stepped over.
_MASKED = r"AWS(?:\\{0,2}_[A-Z0-9]{1,24}){1,5}\\{0,2}_(?:[0-9]{3,12}|REDACTED)"
_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_BUCKET = r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]"
_NOT_A_KEY = r"(?!\s{0,3}[:=])"  # `"name": ...`, `name = ...`: a key of its own, not an item


def _step(pattern: str) -> re.Pattern:
    return re.compile(pattern.encode())


# KMS keys: `, `, `", "`, `;`, a line break and indentation, "and" / "or" (", and" too), YAML's `- `.
_NEXT_KEY = _step(
    rf"""["']?\s{{0,32}}(?:[,;&|]\s{{0,32}}|-[ \t]{{1,3}})?(?:(?:and|or)\s{{1,32}})?["']?"""
    rf"(?:(?P<v>{_UUID}|mrk-[0-9a-f]{{32}})|{_MASKED})\b"
)
# Buckets, strictly (a bucket name is also an ordinary word): a comma, always; inside `[...]` after
# the label (quoted items, or bare ones each followed by `,` or `]`), or quoted items after it...
_NEXT_BUCKET_IN_BRACKETS = _step(
    rf"""["']?\s{{0,32}},\s{{0,32}}(?:(?P<q>["'])(?:(?P<v>{_BUCKET})|{_MASKED})(?P=q){_NOT_A_KEY}"""
    rf"""|(?:(?P<w>{_BUCKET})|{_MASKED})(?=\s{{0,32}}[,\]]))"""
)
_NEXT_QUOTED_BUCKET = _step(
    rf"""["']\s{{0,32}},\s{{0,32}}(?P<q>["'])(?:(?P<v>{_BUCKET})|{_MASKED})(?P=q){_NOT_A_KEY}"""
)
# ...or a YAML block list, one item a line, each the whole value of its line...
_NEXT_YAML_BUCKET = _step(
    rf"""["']?[ \t]{{0,3}}\r?\n[ \t]{{0,32}}-[ \t]{{1,3}}(?P<q>["']?)(?:(?P<v>{_BUCKET})|{_MASKED})(?P=q)"""
    r"(?=[ \t]{0,3}(?:\r?\n|\Z|#))"
)
# ...or bare items after a plural label (`Buckets: a-logs, b-logs`), each followed by a comma or the
# end of its line: "bucket: logs-prod and staging servers" is prose.
_NEXT_BARE_BUCKET = _step(
    rf"[ \t]{{0,3}},[ \t]{{0,3}}(?:(?P<v>{_BUCKET})|{_MASKED})(?=[ \t]{{0,3}}(?:,|\.?[ \t]{{0,3}}(?:\r?\n|\Z)))"
)
_SPACE = frozenset(b" \t\r\n")


def _walk(step: re.Pattern, data: bytes, position: int, check: Callable[[bytes], bool] | None = None) -> list:
    items = []
    while (match := step.match(data, position)) is not None:
        value = match.span("v") if match.start("v") >= 0 else None
        if value is None and "w" in step.groupindex and match.start("w") >= 0:
            value = match.span("w")
        if value is not None:
            if check is not None and not check(data[value[0] : value[1]]):
                break
            items.append(value)
        position = match.end()
    return items


def kms_key_list(data: bytes, start: int, end: int) -> list[tuple[int, int]]:
    """The KMS key ids (UUID or `mrk-`) after a labelled one, in the same list."""
    return _walk(_NEXT_KEY, data, end)


def bucket_list(data: bytes, start: int, end: int) -> list[tuple[int, int]]:
    """The bucket names after a labelled one, in the same list: `"Buckets": ["a", "b"]`, `bucket_names
    = ["a", "b"]`, `Buckets: [a, b]`, `"Bucket": "a", "b"`, a YAML block list (`Buckets:` then `  - a` a
    line) and, after a plural label, `Buckets: a, b`."""
    before, quoted = start - 1, start > 0 and data[start - 1] in b"\"'"
    before -= quoted
    while before >= 0 and data[before] in _SPACE:
        before -= 1
    if before >= 0 and data[before] == 91:  # `[`
        step = _NEXT_BUCKET_IN_BRACKETS
    elif before >= 0 and data[before] == 45:  # `-`: the label's rule takes one only in `label:\n  - name`
        step = _NEXT_YAML_BUCKET
    elif quoted:
        step = _NEXT_QUOTED_BUCKET
    else:  # `label: value`: a plural label ends in `s` just before the colon
        while before >= 0 and data[before] in b" \t:":
            before -= 1
        if before < 0 or data[before] not in b"sS":
            return []
        step = _NEXT_BARE_BUCKET
    return _walk(step, data, end, _is_bucket)


# --- AWS CLI listings: `aws s3 ls`, `aws s3api list-buckets` (JSON, YAML, text) ------------------
# A JSON scalar member of an object (`"CreationDate": "2023-..."`); nested values end a walk.
JSON_MEMBER = r'"[A-Za-z]{1,64}"\s{0,3}:\s{0,3}(?:"[^"\\\n]{0,256}"|null|true|false|-?[0-9][0-9.eE+-]{0,31})'
YAML_MEMBER = r"[A-Za-z]{1,64}:[ \t]{1,3}[^\r\n]{0,256}"  # a scalar member of a YAML mapping, to its line's end
CANONICAL_ID = r"[0-9a-f]{64}"
# `aws s3 ls`: `2023-04-01 10:00:00 acme-prod-logs`, the whole line (an object listing has a size column)
LS_LINE_HEAD = r"[ \t]{0,8}[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2} "
_LS_LINE = _step(rf"{LS_LINE_HEAD}{_BUCKET}[ \t]{{0,16}}\r?(?:\n|\Z)")
_LS_LINE_MAX = 8 + 20 + 63 + 16 + 2


def classify_listed_bucket(data: bytes, start: int, end: int) -> str | None:
    """A bucket of an `aws s3 ls` line. A name with a dash, dot or digit is one; a plain word
    (`2023-04-01 10:00:00 started` could be a log line) only next to another such line."""
    value = data[start:end]
    if not _is_bucket(value):
        return None
    if not value.isalpha():
        return "s3_bucket"
    newline = data.find(b"\n", end, end + 20)
    if newline >= 0 and _LS_LINE.match(data, newline + 1):
        return "s3_bucket"
    line_start = data.rfind(b"\n", max(0, start - 40), start)
    if line_start <= 0:
        return None
    low = max(0, line_start - _LS_LINE_MAX)
    previous = data.rfind(b"\n", low, line_start) + 1
    if previous == 0 and low > 0:
        return None  # the line before is longer than any `s3 ls` line
    match = _LS_LINE.match(data, previous)
    return "s3_bucket" if match is not None and match.end() == line_start + 1 else None


# `"Buckets": [{"Name": "a", ...}, {"CreationDate": "...", "Name": "b"}]`: from the end of a bucket
# name on, one member (or the start of the next object and its first member) a step.
_NEXT_BUCKET_OBJECT = _step(
    r'"?\s{0,32}(?:,|\}\s{0,32},\s{0,32}\{)\s{0,32}'
    rf'(?:"Name"\s{{0,3}}:\s{{0,3}}"(?:(?P<v>{_BUCKET})|{_MASKED})(?=")|{JSON_MEMBER})'
)
# The YAML form: `- CreationDate: '...'` then `  Name: b`, each member the whole of its line; `i`
# and `d` tell the member's column, which must be the items' own.
_NEXT_BUCKET_ITEM = _step(
    r"""["']?[ \t]{0,3}\r?\n(?P<i>[ \t]{0,32})(?P<d>-[ \t]{1,3})?"""
    rf"""(?:Name:[ \t]{{1,3}}(?P<q>["']?)(?:(?P<v>{_BUCKET})|{_MASKED})(?P=q)(?=[ \t]{{0,3}}(?:\r?\n|\Z))"""
    rf"""|{YAML_MEMBER}(?=\r?\n|\Z))"""
)
_INDENT = frozenset(b" \t")


def bucket_objects(data: bytes, start: int, end: int) -> list[tuple[int, int]]:
    """The other buckets' names of `aws s3api list-buckets` after the first one: every `Name` of the
    objects (JSON) or items (YAML) of the same `Buckets` list."""
    colon = start - (start > 0 and data[start - 1] in b"\"'")
    while colon > 0 and data[colon - 1] in _INDENT:
        colon -= 1
    if data[colon - 5 : colon] == b"Name:":  # YAML (JSON has `"Name":`): the items' column is the key's
        line = data.rfind(b"\n", max(0, colon - 48), colon - 5) + 1
        return _walk_items(data, end, colon - 5 - line)
    return _walk_objects(data, end)


def _walk_objects(data: bytes, position: int) -> list[tuple[int, int]]:
    items = []
    while (match := _NEXT_BUCKET_OBJECT.match(data, position)) is not None:
        if match.start("v") >= 0 and _is_bucket(match["v"]):
            items.append(match.span("v"))
        position = match.end()
    return items


def _walk_items(data: bytes, position: int, column: int) -> list[tuple[int, int]]:
    items = []
    while (match := _NEXT_BUCKET_ITEM.match(data, position)) is not None:
        if len(match["i"]) + len(match["d"] or b"") != column:
            break  # a member of something else: the list is over
        if match.start("v") >= 0 and _is_bucket(match["v"]):
            items.append(match.span("v"))
        position = match.end()
    return items


# Canonical user ids after the first one: `"CanonicalUser": ["<id>", "<id>"]`, `--grant-read id=a,id=b`.
_GRANT_COMMA = r"""["']?[ \t]{0,3},[ \t]{0,3}"""
_NEXT_CANONICAL_ID = _step(
    rf"""(?:"\s{{0,32}},\s{{0,32}}"(?P<v>{CANONICAL_ID})(?=")"""
    rf"""|{_GRANT_COMMA}(?:(?i:uri|emailaddress)=["']?[^\s,"']{{1,256}}{_GRANT_COMMA}){{0,4}}"""
    rf"""(?i:id)=["']?(?P<w>{CANONICAL_ID})(?![0-9A-Za-z]))"""
)


def canonical_id_list(data: bytes, start: int, end: int) -> list[tuple[int, int]]:
    return _walk(_NEXT_CANONICAL_ID, data, end)
