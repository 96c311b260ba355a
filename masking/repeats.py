"""A bucket a request names once in a way the engine recognises (an ARN, an `s3://` URI, a labelled
field) is masked wherever else the request names it: "arn:aws:s3:::acme-finance-reports ... the
acme-finance-reports bucket is public" would otherwise send the name in the prose as it is.

Only names that cannot be ordinary words are carried over (a dash, a dot or a digit in them): a bucket
called `logs` is masked where the engine finds it, but "logs" elsewhere stays a word. The masker
does the same for account ids (masking/masker.py, `_mask_known_accounts`).
"""

import re
from bisect import bisect_right
from functools import lru_cache

from masking.engine import Match

KIND = "s3_bucket"
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
