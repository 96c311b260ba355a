"""Identifiers a request shows once, masked where it names them again.

Account ids: the engine takes a bare 12-digit number for an account only when its context says so
(most 12-digit numbers are not accounts); once the request shows a number is an account (an ARN, a
label), its other bare occurrences are accounts too ("owned by 123456789012"), and so is the next
item of a list that starts with one.

Buckets: a bucket a request names once in a way the engine recognises (an ARN, an `s3://` URI, a labelled
field) is masked wherever else the request names it: "arn:aws:s3:::acme-finance-reports ... the
acme-finance-reports bucket is public" would otherwise send the name in the prose as it is.

Only names that cannot be ordinary words are carried over (a dash, a dot or a digit in them): a bucket
called `logs` is masked where the engine finds it, but "logs" elsewhere stays a word.

The masker (masking/masker.py) runs both passes over every text of a request, and remembers their
outcome for an unchanged text.
"""

import re
from bisect import bisect_right, insort
from functools import lru_cache

from masking.engine import Match

KIND = "s3_bucket"
ARN_ACCOUNT = re.compile(r"arn:aws[a-z-]{0,10}:[a-z0-9-]{0,60}:[a-z0-9-]{0,30}:([0-9]{12}):")
# `(?<![0-9])[0-9]{12}(?![0-9])`, with the left boundary checked after the first digit: a pattern that
# starts with a digit class lets the regex engine skip to the next digit instead of trying a
# lookbehind at every position (seven times faster on a 16 KB prompt).
TWELVE_DIGITS = re.compile(r"[0-9](?<![0-9][0-9])[0-9]{11}(?![0-9])")
# What may stand between two account ids of one list: `, `, `", "`, a line break and indentation, "and".
_LIST_GAP = re.compile(r"""["']?\s{0,12}(?:[,;/&|]|and|or)?\s{0,12}["']?""")
_S3_ARN_BUCKET = re.compile(r"arn:aws[a-z-]{0,10}:s3:::([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])")
_NOT_A_WORD = re.compile(r"[-.0-9]")


def bucket_named(text: str, match: Match) -> str | None:
    """The bucket name `match` shows, if it is one to carry over to the rest of the request."""
    if match.kind == KIND:
        name = text[match.start : match.end]
    elif match.kind == "s3_arn":
        inner = _S3_ARN_BUCKET.match(text, match.start, match.end)
        name = inner.group(1) if inner else None
    else:
        return None
    return name if name and _NOT_A_WORD.search(name) else None


@lru_cache(maxsize=256)
def _finder(names: frozenset[str]) -> re.Pattern:
    alternatives = "|".join(re.escape(name) for name in sorted(names, key=len, reverse=True))
    # Not inside a longer name or word: no name character before, none after but a sentence's full stop.
    return re.compile(rf"(?<![A-Za-z0-9_.-])(?:{alternatives})(?![A-Za-z0-9_-]|\.[A-Za-z0-9])")


def more_buckets(text: str, kept: list[tuple[Match, str]], names: frozenset[str], mode: str) -> list:
    """The other places `text` names one of the buckets `names`, outside every span already kept."""
    starts = [match.start for match, _ in kept]  # sorted, spans never overlap
    extra = []
    for found in _finder(names).finditer(text):
        start, end = found.span()
        after = bisect_right(starts, start)
        if (after > 0 and kept[after - 1][0].end > start) or (after < len(kept) and starts[after] < end):
            continue  # part of an ARN, a URL, a hostname...: masked with it
        extra.append((Match(start, end, KIND), mode))
    return extra


def more_accounts(text: str, kept: list, runs: list[tuple[int, int]], accounts: frozenset[str], mode: str) -> list:
    """The bare 12-digit runs of `text` that are accounts: one the request shows elsewhere, or the
    next item of a list that starts with an account or an ARN naming one ("Accounts: 111111111111,
    222222222222", `"AWS": ["arn:aws:iam::111111111111:root", "222222222222"]`)."""
    if not runs:
        return []
    starts = [match.start for match, _ in kept]  # sorted, spans never overlap
    ends = [  # sorted too
        match.end for match, _ in kept if match.kind == "account_id" or ARN_ACCOUNT.match(text, match.start, match.end)
    ]
    extra = []
    for start, end in runs:
        before = bisect_right(starts, start) - 1
        if before >= 0 and kept[before][0].end > start:
            continue  # part of an ARN, a hostname...: masked with it
        before = bisect_right(ends, start) - 1
        if text[start:end] in accounts or (before >= 0 and _LIST_GAP.fullmatch(text, ends[before], start)):
            extra.append((Match(start, end, "account_id"), mode))
            insort(ends, end)
    return extra
