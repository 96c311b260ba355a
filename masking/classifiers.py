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
    _, _, service, _, account, resource = data[start:end].decode("ascii").split(":", 5)
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


# `v1.2.3.4` is already excluded (a letter is glued to it); these are "version 1.2.3.4" and friends,
# as words of their own: inside an identifier (`role/version`) the word is gone once that is masked.
_VERSION_BEFORE = re.compile(rb"(?<![A-Za-z0-9_/:.\\-])(?i:version|release|ver|rev|build)[\s:=]{0,3}\Z")
_SPECIAL_V4 = {b"169.254.169.254", b"169.254.169.253", b"169.254.170.2"}  # instance metadata, DNS, ECS


def ipv4_span(data: bytes, start: int, end: int) -> tuple[int, int]:
    """The gate consumed at most one byte before the address and two after it."""
    if not 48 <= data[start] <= 57:
        start += 1
    while not 48 <= data[end - 1] <= 57:
        end -= 1
    return start, end


def classify_ipv4(data: bytes, start: int, end: int) -> str | None:
    kind = _ipv4_kind(data[start:end])
    if kind and start and data[start - 1] in b" \t\r\n:=":  # the only bytes a version label leaves before it
        last = start - 1
        while last > 0 and start - last < 4 and data[last] in b" \t\r\n:=":
            last -= 1
        if data[last] in b"nerdvNERDV" and _VERSION_BEFORE.search(data, max(0, start - 12), start):
            return None
    return kind


@lru_cache(maxsize=4096)  # logs repeat the same few addresses
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


def token_span(data: bytes, start: int, end: int) -> tuple[int, int]:
    """The gate stops after three digits of the number: the token goes on to the last one."""
    size = len(data)
    while end < size and 48 <= data[end] <= 57:
        end += 1
    return start, end


_YAML_WORDS = {b"true", b"false", b"null", b"none", b"yes", b"no", b"name", b"bucket"}


def classify_bucket(data: bytes, start: int, end: int) -> str | None:
    value = data[start:end]
    if b".." in value or value in _YAML_WORDS or re.fullmatch(rb"[0-9.]+", value):
        return None
    return "s3_bucket"


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
