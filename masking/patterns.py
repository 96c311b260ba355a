"""The AWS identifier catalogue: kinds (token prefix, default policy) and the rules that find them.

Every rule is a Python regex over UTF-8 bytes (lookarounds allowed, every repetition bounded) and,
when that regex is not something Hyperscan can run as is, a `gate`: a Hyperscan expression that
fires once near each candidate (it consumes a terminator instead of looking ahead). The engine runs
all gates in one Hyperscan pass and confirms each hit with the rule's regex inside the gate's span;
the pure-Python backend runs the regexes alone. See docs/engine.md.
"""

import re
from collections.abc import Callable
from dataclasses import dataclass

from masking.classifiers import (
    CANONICAL_ID,
    JSON_MEMBER,
    LS_LINE_HEAD,
    PROTECT,
    YAML_MEMBER,
    arn_span,
    bucket_list,
    bucket_objects,
    canonical_id_list,
    classify_arn,
    classify_bucket,
    classify_distribution,
    classify_encoded_arn,
    classify_ipv4,
    classify_ipv6,
    classify_listed_bucket,
    classify_unlabelled_secret,
    ipv4_candidates,
    kms_key_list,
    not_before_digit_group,
    token_candidates,
    value_before_gate_end,
)

MASK, REDACT, OFF = "mask", "redact", "off"
POLICIES = (MASK, REDACT, OFF)


@dataclass(frozen=True, slots=True)
class Kind:
    name: str
    prefix: str
    default_policy: str = MASK


@dataclass(frozen=True, slots=True)
class Rule:
    kind: str  # PROTECT: a span to leave alone with everything inside it (tokens), never emitted
    regex: str  # Python syntax; group `v`, when present, is the identifier inside the match
    gate: str | None = None  # Hyperscan expression when `regex` cannot be used directly
    classify: Callable[[bytes, int, int], str | None] | None = None  # final kind, or None to drop
    needles: tuple[bytes, ...] = ()  # python backend: skip the rule unless one occurs (lower-cased)
    reach: int = 2  # bytes the regex may look past the gate's end
    # > 0: the gate only finds where a match ends (no start-of-match tracking, which is costly for
    # a variable-length start); the regex then looks for it within `lookback` bytes before that end.
    lookback: int = 0
    # With `lookback`: the bytes the identifier is made of, none of which may come just before it (a
    # hostname, a bucket name), and at most `label` bytes of the match before it; the regex then
    # starts looking there, from the last other byte before the gate's end.
    run: bytes = b""
    label: int = 0
    trim: bytes = b""  # trailing bytes never part of the identifier (sentence punctuation)
    # Hyperscan backend: the candidates `(start, priority, -end, kind)` computed from all the gate's
    # hits `(start, rule id, -end)` at once, instead of the regex and `classify` for each.
    from_gates: Callable[[bytes, list[tuple], int], list[tuple]] | None = None
    # Hyperscan backend: the regex's match at the gate's start, told from the gate's span when it
    # can be (None: run the regex).
    whole: Callable[[bytes, int, int], tuple[int, int] | None] | None = None
    # After a match of this (labelled) rule, the spans of the following items of the same list:
    # `"KeyIds": ["<first>", "<more>", ...]`. The label vouches for the first value, the list for the rest.
    more: Callable[[bytes, int, int], list[tuple[int, int]]] | None = None


_KIND_LIST = [
    # EC2 and VPC resource ids
    ("ec2_instance", "EC2"),
    ("ami", "AMI"),
    ("ebs_volume", "VOLUME"),
    ("ebs_snapshot", "SNAPSHOT"),
    ("security_group", "SG"),
    ("vpc", "VPC"),
    ("subnet", "SUBNET"),
    ("internet_gateway", "IGW"),
    ("egress_only_igw", "EIGW"),
    ("nat_gateway", "NAT"),
    ("network_interface", "ENI"),
    ("vpc_endpoint", "VPCE"),
    ("vpc_peering", "PCX"),
    ("transit_gateway", "TGW"),
    ("tgw_attachment", "TGW_ATTACH"),
    ("route_table", "RTB"),
    ("network_acl", "ACL"),
    ("dhcp_options", "DOPT"),
    ("eip_allocation", "EIPALLOC"),
    ("eip_association", "EIPASSOC"),
    ("efs_filesystem", "EFS"),
    ("vpn_connection", "VPN"),
    ("vpn_gateway", "VGW"),
    ("customer_gateway", "CGW"),
    ("launch_template", "LT"),
    ("key_pair", "KEY_PAIR"),
    ("capacity_reservation", "CR"),
    ("placement_group", "PG"),
    ("ec2_resource", "EC2_RES"),
    ("rds_resource_id", "RDS_RES"),
    ("organization_id", "ORG"),
    ("cognito_user_pool", "COGNITO_POOL"),
    # ARNs
    ("iam_role_arn", "IAM_ROLE"),
    ("iam_user_arn", "IAM_USER"),
    ("iam_group_arn", "IAM_GROUP"),
    ("iam_policy_arn", "IAM_POLICY"),
    ("iam_instance_profile_arn", "IAM_PROFILE"),
    ("sts_assumed_role_arn", "ASSUMED_ROLE"),
    ("lambda_arn", "LAMBDA"),
    ("ecs_arn", "ECS"),
    ("eks_arn", "EKS"),
    ("elb_arn", "ELB"),
    ("rds_arn", "RDS"),
    ("dynamodb_arn", "DYNAMODB"),
    ("sns_arn", "SNS"),
    ("sqs_arn", "SQS"),
    ("kms_arn", "KMS"),
    ("secret_arn", "SECRET"),
    ("ssm_arn", "SSM"),
    ("cloudformation_arn", "CFN"),
    ("stepfunctions_arn", "SFN"),
    ("kinesis_arn", "KINESIS"),
    ("log_group_arn", "LOG_GROUP"),
    ("acm_arn", "ACM"),
    ("ecr_arn", "ECR"),
    ("s3_arn", "S3_ARN"),
    ("arn", "ARN"),
    # accounts and credentials
    ("account_id", "ACCOUNT"),
    ("access_key_id", "ACCESS_KEY"),
    ("iam_unique_id", "IAM_ID"),
    ("secret_access_key", "SECRET_KEY", REDACT),
    ("session_token", "SESSION_TOKEN", REDACT),
    ("secret_value", "SECRET_VALUE", REDACT),  # Secrets Manager secret values, SSM SecureString values
    # storage, hostnames, other ids, addresses
    ("s3_bucket", "S3_BUCKET"),
    ("s3_canonical_user_id", "S3_OWNER"),
    ("ec2_private_dns", "PRIVATE_DNS"),
    ("ec2_public_dns", "PUBLIC_DNS"),
    ("rds_endpoint", "RDS_HOST"),
    ("elasticache_endpoint", "CACHE_HOST"),
    ("elb_dns", "ELB_HOST"),
    ("api_gateway_host", "APIGW_HOST"),
    ("cloudfront_domain", "CLOUDFRONT_HOST"),
    ("eks_endpoint", "EKS_HOST"),
    ("aws_hostname", "AWS_HOST"),
    ("cloudfront_distribution", "CLOUDFRONT"),
    ("route53_zone", "R53_ZONE"),
    ("kms_key_id", "KMS_KEY"),
    ("acm_certificate_id", "ACM_CERT"),
    ("ipv4_private", "PRIVATE_IP"),
    ("ipv4_public", "PUBLIC_IP"),
    ("ipv6", "IPV6"),
]
KINDS: dict[str, Kind] = {k.name: k for k in (Kind(*entry) for entry in _KIND_LIST)}

# --- building blocks ------------------------------------------------------------------------
HEX_ID = r"(?:[0-9a-f]{17}|[0-9a-f]{8})"
HEX17 = r"[0-9a-f]{17}"
REGION = r"[a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]{4,9}-\d"
BUCKET = r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]"
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
IPV4 = rf"{OCTET}(?:\.{OCTET}){{3}}"
SLASH = r"(?:/|\\/)"  # JSON may escape slashes
SEP = r"""["']?\s{0,3}[:=]\s{0,3}["']?"""  # label then value: `"Key": "v"`, `key = v`, `KEY=v`
OPT_SEP = r"""["']?\s{0,3}[:=]?\s{0,3}["']?"""  # the same, or prose: `account 123456789012`
ARN_HEAD = r"arn:(?:aws|aws-cn|aws-us-gov|aws-iso|aws-iso-[a-z]):[a-z0-9-]{1,64}:[a-z0-9-]{0,32}:(?:[0-9]{12}|aws)?:"
ARN_CHARS = r"A-Za-z0-9+=,.@_/:*$#%!-"  # `!`: RDS-managed secrets, `secret:rds!db-<uuid>-AbCdEf`
LABEL_END = r"(?:\z|[^A-Za-z0-9_.-]|\.(?:\z|[^a-z0-9]))"  # gate terminator after a bucket-like value


def _unbounded(pattern: str) -> str:
    """Hyperscan refuses large bounded repeats under leftmost-start matching; a gate may be wider."""
    return re.sub(r"\{(\d+),(\d+)\}", lambda m: f"{{{m[1]},}}" if int(m[2]) > 8 else m[0], pattern)


# --- the rules, most specific first ---------------------------------------------------------
# A hostname starts after something that cannot be part of one: never in the middle of a
# hyphenated or dotted word, so what sits next to an identifier we replace cannot start a new one.
HOST_START = r"(?<![A-Za-z0-9_.-])"
HOST_RUN = bytes(c for c in range(256) if re.fullmatch(rb"[A-Za-z0-9_.-]", bytes([c])))
BUCKET_RUN = b"abcdefghijklmnopqrstuvwxyz0123456789.-"


def _host(kind: str, body: str, **options) -> Rule:
    return Rule(kind, HOST_START + body, gate=rf"(?:^|[^A-Za-z0-9_.-]){body}", **options)


def _ids(kind: str, prefixes: str, legacy: bool = True) -> Rule:
    return Rule(kind, rf"\b(?:{prefixes})-{HEX_ID if legacy else HEX17}\b")


def _labelled(
    kind: str, label: str, value: str, gate_value: str = "", sep: str = SEP, bounded: bool = False, **options
) -> Rule:
    """`label` + separator + value; the regex marks the value. A variable-length value needs a
    `gate_value` that consumes its terminator, so the gate fires once per value, not once per byte.
    `bounded`: the gate keeps the regex's bounds (unbounded repeats of overlapping classes after a
    label that may sit anywhere in a word tripled the size of the whole Hyperscan database)."""
    regex = rf"{label}{sep}(?P<v>{value})"
    if bounded:
        return Rule(kind, regex, gate=f"{label}{sep}" + (gate_value or value), **options)
    return Rule(kind, regex, gate=_unbounded(f"{label}{sep}") + (gate_value or _unbounded(value)), **options)


_MASKED_SHAPE = r"AWS(?:\\{0,2}_[A-Z0-9]{1,24}){1,5}\\{0,2}_(?:[0-9]{3,12}|REDACTED)"
# Anywhere in a word: `recipientAccountId`, `AWS_ACCOUNT_ID`, `myaccount`.
_ACCOUNT_LABEL = (
    r"""(?:(?i:accounts?(?:[ _-]?(?:ids?|numbers?|nos?))?|(?:owner|requester)[ _-]?ids?|domain[ _-]?owner)|"AWS"|"""
    r"\bUserId|\b[Rr]egistryId)"  # a security group pair's `UserId`, ECR's `registryId`
)
_SECRET_LABEL = r"(?i:aws_?secret_?access_?key|secret_?access_?key|aws_?secret_?key|secret_?key)"  # noqa: S105
# A secret access key after that label: the value, and the gate's form of it (consuming its terminator).
_LABELLED_SECRET_KEY = (
    r"(?:[A-Za-z0-9+]|\\?/){30,64}(?![A-Za-z0-9+/=])",
    r"(?:[A-Za-z0-9+]|\\?/){30,64}(?:\z|[^A-Za-z0-9+/=])",
)
_SESSION_LABEL = r"(?i:aws_?session_?token|session_?token|security_?token|x-amz-security-token)"
# STS session tokens; ECR's docker credentials, `QVdTO[g-v]` (base64 `AWS:`, get-authorization-token) and
# `eyJwYXlsb2FkIjoi` (base64 `{"payload":"`, get-login-password): bearer credentials, redacted alike
_SESSION_PREFIX = r"(?:IQoJb3JpZ2lu|FwoGZXIvYXdz|FQoGZXIvYXdz|QVdTO[g-v]|eyJwYXlsb2FkIjoi)"
_ACCESS_LOG_TIME = r"\[[0-9]{2}/[A-Z][a-z]{2}/[0-9]{4}:[0-9]{2}:"
_ACCESS_LOG_GATE = rf"(?:^|\n)[0-9a-f]{{64}} [a-z0-9][a-z0-9.-]+[a-z0-9] {_ACCESS_LOG_TIME}"
_NAME_VALUE_SEP = r"""["']\s{0,3},\s{0,3}["'](?i:value)["']\s{0,3}:\s{0,3}["']"""  # `"name": "LABEL", "value": "`
# `--output table`: `|  OwnerId            |  123456789012  |`, the cell padded to the column's width
TABLE_SEP = r"[ \t]{1,64}\|[ \t]{1,8}"
# `aws sts assume-role --output text`: `CREDENTIALS\t<key id>\t<expiration>\t<secret>\t<session token>`
_CREDENTIALS_LINE = r"(?<![^\n])CREDENTIALS\t(?:AKIA|ASIA)[A-Z0-9]{16,17}\t[^\t\r\n]{1,64}\t"
_CREDENTIALS_GATE = r"(?:^|\n)CREDENTIALS\t(?:AKIA|ASIA)[A-Z0-9]{16,17}\t[^\t\r\n]+\t"
_SECRET_VALUE = r"(?:[A-Za-z0-9+]|\\?/){30,64}"  # noqa: S105
# `--output text` records whose first 12-digit field is an account: a group's, an image's, a snapshot's
# OwnerId, a pair's UserId, an address's NetworkInterfaceOwnerId, an attachment's InstanceOwnerId
_ACCOUNT_RECORDS = (
    "SECURITYGROUPS", "USERIDGROUPPAIRS", "RESERVATIONS", "ADDRESSES", "NETWORKINTERFACES", "ATTACHMENT", "SNAPSHOTS",
    "IMAGES",
)  # fmt: skip
_ACCOUNT_RECORD = "(?:" + "|".join(_ACCOUNT_RECORDS) + ")"
_S3_HOST = r"s3(?:[.-][a-z0-9-]{1,30}){0,2}\.amazonaws\.com(?:\.cn)?"
_BUCKET_FIELD = r"(?i:(?:s3_?)?buckets?(?:_?names?)?)"  # plurals too: `Buckets`, `BucketNames`
_LIST_OPEN = r"(?:\[\s{0,32})?"  # a list's first item, on the next line when pretty-printed
# a JSON string's contents: `\"` and `\\` read as escapes, so it stops at the real closing quote; one line
# (JSON has no raw line break inside a string); a Secrets Manager secret is 64 KB at most, twice that escaped
_JSON_STRING = r'(?:[^"\\\r\n]|\\[^\r\n]){1,131072}'
_JSON_STRING_GATE = r'(?:[^"\\\r\n]|\\[^\r\n])+"'
_YAML_ITEM = r"""[ \t]{0,3}\r?\n[ \t]{0,32}-[ \t]{1,3}["']?"""  # `Buckets:` then `  - name` on the next line

RULES: list[Rule] = [
    Rule(
        PROTECT,
        _MASKED_SHAPE,
        gate=r"AWS(?:\\{0,2}_[A-Z0-9]+)+\\{0,2}_(?:[0-9]{3}|REDACTED)",
        from_gates=token_candidates,
        needles=(b"aws",),
    ),
    Rule(
        "arn",
        rf"\b{ARN_HEAD}(?:[{ARN_CHARS}]|\\/){{1,2048}}",
        gate=rf"\b{_unbounded(ARN_HEAD)}(?:[{ARN_CHARS}]|\\/)+(?:\z|[^{ARN_CHARS}])",
        classify=classify_arn,
        whole=arn_span,
        needles=(b"arn:",),
        trim=b".,:;!",
    ),
    Rule(  # URL-encoded, as console links carry them: `arn%3Aaws%3Asns%3Aus-east-1%3A123456789012%3Aalerts`
        "arn",
        rf"\barn%3[Aa](?:aws|aws-cn|aws-us-gov|aws-iso|aws-iso-[a-z])%3[Aa][a-z0-9-]{{1,64}}%3[Aa][a-z0-9-]{{0,32}}"
        rf"%3[Aa](?:[0-9]{{12}}|aws)%3[Aa][{ARN_CHARS}]{{1,2048}}",
        gate=rf"\barn%3[Aa](?:aws|aws-cn|aws-us-gov|aws-iso|aws-iso-[a-z])%3[Aa][a-z0-9-]+%3[Aa][a-z0-9-]*"
        rf"%3[Aa](?:[0-9]{{12}}|aws)%3[Aa][{ARN_CHARS}]+(?:\z|[^{ARN_CHARS}])",
        classify=classify_encoded_arn,
        needles=(b"arn%3a",),
        trim=b".,:;!",
    ),
    # hostnames (whole name is the identifier)
    Rule(
        "ec2_public_dns", rf"\bec2-{OCTET}(?:-{OCTET}){{3}}\.(?:compute-1|{REGION}\.compute)\.amazonaws\.com(?:\.cn)?\b"
    ),
    Rule("ec2_private_dns", rf"\bip-{OCTET}(?:-{OCTET}){{3}}(?:\.(?:{REGION}\.compute|ec2)\.internal)?\b"),
    Rule(
        "rds_endpoint",
        rf"{HOST_START}(?:[a-z0-9][a-z0-9-]{{0,62}}\.){{1,5}}{REGION}\.rds\.amazonaws\.com(?:\.cn)?\b",
        gate=rf"\.{REGION}\.rds\.amazonaws\.com",
        lookback=300,
        needles=(b".rds.",),
        run=HOST_RUN,
    ),
    Rule(
        "elasticache_endpoint",
        rf"{HOST_START}(?:[a-z0-9][a-z0-9-]{{0,62}}\.){{1,5}}[a-z]{{3,5}}[0-9]\.cache\.amazonaws\.com(?:\.cn)?\b",
        gate=r"\.[a-z]{3,5}[0-9]\.cache\.amazonaws\.com",
        lookback=400,
        needles=(b".cache.",),
        run=HOST_RUN,
    ),
    Rule(
        "elb_dns",
        rf"{HOST_START}(?:dualstack\.)?[A-Za-z0-9][A-Za-z0-9-]{{0,80}}\.(?:{REGION}\.elb|elb\.{REGION})\.amazonaws\.com(?:\.cn)?\b",
        gate=rf"\.(?:{REGION}\.elb|elb\.{REGION})\.amazonaws\.com",
        lookback=200,
        needles=(b"elb.",),
        run=HOST_RUN,
    ),
    _host(
        "api_gateway_host",
        rf"(?:d-)?[a-z0-9]{{10}}\.execute-api\.{REGION}\.amazonaws\.com(?:\.cn)?\b",
        needles=(b".execute-api.",),
    ),
    _host("cloudfront_domain", r"d[a-z0-9]{12,14}\.cloudfront\.net\b"),
    _host(
        "eks_endpoint",
        rf"[A-Z0-9]{{32}}\.[a-z]{{2}}[0-9]\.{REGION}\.eks\.amazonaws\.com(?:\.cn)?\b",
        needles=(b".eks.",),
    ),
    Rule(  # the cluster's OIDC issuer: `https://oidc.eks.<region>.amazonaws.com/id/<the endpoint's id>`
        "eks_endpoint",
        rf"\boidc\.eks\.{REGION}\.amazonaws\.com(?:\.cn)?{SLASH}id{SLASH}(?P<v>[A-Z0-9]{{32}})\b",
        gate=rf"\boidc\.eks\.{REGION}\.amazonaws\.com(?:\.cn)?{SLASH}id{SLASH}[A-Z0-9]{{32}}\b",
        needles=(b"oidc.eks.",),
    ),
    Rule(  # interface endpoints: `vpce-<id>-<8>[-<zone>].<service>.<region>.vpce.amazonaws.com`, `*.` too
        "aws_hostname",
        rf"{HOST_START}(?:\*\.)?vpce-{HEX_ID}-[a-z0-9]{{8}}(?:-{REGION}[a-z])?\.[a-z0-9-]{{1,40}}\.{REGION}\.vpce\.amazonaws\.com\b",
        gate=rf"(?:^|[^A-Za-z0-9_.-])(?:\*\.)?vpce-{HEX_ID}-[a-z0-9]{{8}}(?:-{REGION}[a-z])?\.[a-z0-9-]+\.{REGION}"
        r"\.vpce\.amazonaws\.com\b",
        needles=(b".vpce.amazonaws.com",),
    ),
    _host("aws_hostname", rf"[a-z0-9]{{14}}(?:-ats)?\.iot\.{REGION}\.amazonaws\.com(?:\.cn)?\b", needles=(b".iot.",)),
    _host("aws_hostname", r"a[0-9a-f]{16}\.awsglobalaccelerator\.com\b", needles=(b".awsglobalaccelerator.com",)),
    Rule(  # Cognito's hosted UI: `<domain prefix>.auth.<region>.amazoncognito.com`
        "aws_hostname",
        rf"{HOST_START}[a-z0-9][a-z0-9-]{{0,62}}\.auth\.{REGION}\.amazoncognito\.com\b",
        gate=rf"(?:^|[^A-Za-z0-9_.-])[a-z0-9][a-z0-9-]*\.auth\.{REGION}\.amazoncognito\.com\b",
        needles=(b".amazoncognito.com",),
    ),
    # IAM Identity Center's access portal: `https://d-9067642ac7.awsapps.com/start` (or the org's alias)
    Rule(
        "aws_hostname",
        HOST_START + r"[a-z0-9][a-z0-9-]{1,62}\.awsapps\.com\b",
        gate=r"(?:^|[^A-Za-z0-9_.-])[a-z0-9][a-z0-9-]+\.awsapps\.com\b",
        needles=(b".awsapps.com",),
    ),
    Rule(
        "aws_hostname",
        rf"{HOST_START}(?:[a-z0-9][a-z0-9-]{{0,62}}\.){{1,5}}(?:{REGION}\.(?:es|aoss|redshift|redshift-serverless|docdb|neptune)"
        rf"\.amazonaws\.com|(?:kafka|appsync-api|mq)\.{REGION}\.amazonaws\.com|lambda-url\.{REGION}\.on\.aws"
        rf"|{REGION}\.elasticbeanstalk\.com|d\.codeartifact\.{REGION}\.amazonaws\.com|(?:memorydb|dax-clusters)\.{REGION}\.amazonaws\.com|notebook\.{REGION}\.sagemaker\.aws"
        rf"|{REGION}\.awsapprunner\.com|amplifyapp\.com)\b",
        gate=rf"\.(?:{REGION}\.(?:es|aoss|redshift|redshift-serverless|docdb|neptune)"
        rf"\.amazonaws\.com|(?:kafka|appsync-api|mq)\.{REGION}\.amazonaws\.com|lambda-url\.{REGION}\.on\.aws"
        rf"|{REGION}\.elasticbeanstalk\.com|d\.codeartifact\.{REGION}\.amazonaws\.com|(?:memorydb|dax-clusters)\.{REGION}\.amazonaws\.com|notebook\.{REGION}\.sagemaker\.aws"
        rf"|{REGION}\.awsapprunner\.com|amplifyapp\.com)",
        needles=(
            b".amazonaws.com",
            b".on.aws",
            b".elasticbeanstalk.com",
            b".sagemaker.aws",
            b".awsapprunner.com",
            b".amplifyapp.com",
        ),
        lookback=400,
        run=HOST_RUN,
    ),
    # S3 buckets (only the bucket name)
    Rule(
        "s3_bucket",
        rf"(?<![A-Za-z0-9_.-])(?P<v>{BUCKET})\.{_S3_HOST}\b",
        gate=rf"[a-z0-9]\.{_unbounded(_S3_HOST)}",
        lookback=200,
        classify=classify_bucket,
        needles=(b".s3",),
        run=HOST_RUN,
    ),
    Rule(
        "s3_bucket",
        rf"(?<![A-Za-z0-9_.-]){_S3_HOST}{SLASH}(?P<v>{BUCKET})(?![A-Za-z0-9_-])",
        gate=rf"{_unbounded(_S3_HOST)}{SLASH}[a-z0-9][a-z0-9.-]+[a-z0-9]{LABEL_END}",
        lookback=200,
        classify=classify_bucket,
        needles=(b"amazonaws.com",),
    ),
    Rule(  # the S3 console: `s3.console.aws.amazon.com/s3/buckets/<bucket>`, `/s3/object/<bucket>`
        "s3_bucket",
        rf"\bs3\.console\.aws\.amazon\.com{SLASH}s3{SLASH}(?:buckets|object){SLASH}(?P<v>{BUCKET})(?![A-Za-z0-9_-])",
        gate=rf"\bs3\.console\.aws\.amazon\.com{SLASH}s3{SLASH}(?:buckets|object){SLASH}"
        rf"[a-z0-9][a-z0-9.-]+[a-z0-9]{LABEL_END}",
        classify=classify_bucket,
        needles=(b"console.aws.amazon.com",),
    ),
    Rule(
        "s3_bucket",
        rf"\bs3[an]?:{SLASH}{SLASH}(?P<v>{BUCKET})(?![A-Za-z0-9_-])",
        gate=rf"\bs3[an]?:{SLASH}{SLASH}[a-z0-9][a-z0-9.-]+[a-z0-9]{LABEL_END}",
        classify=classify_bucket,
        needles=(b"s3",),
    ),
    Rule(
        "s3_bucket",
        rf"""(?:"{_BUCKET_FIELD}"\s{{0,3}}:\s{{0,3}}{_LIST_OPEN}"|\b{_BUCKET_FIELD}\s{{0,3}}"""
        rf"""(?:=\s{{0,3}}{_LIST_OPEN}"|:(?:\s{{1,3}}{_LIST_OPEN}["']?|{_YAML_ITEM})))(?P<v>{BUCKET})(?![A-Za-z0-9_-]|\.[a-z0-9])""",
        gate=rf"""(?:"{_BUCKET_FIELD}"\s*:\s*(?:\[\s*)?"|\b{_BUCKET_FIELD}\s*(?:=\s*(?:\[\s*)?"|:(?:\s+(?:\[\s*)?["']?"""
        rf"""|[ \t]*\r?\n[ \t]*-[ \t]+["']?)))[a-z0-9][a-z0-9.-]+[a-z0-9]{LABEL_END}""",
        classify=classify_bucket,
        more=bucket_list,
        lookback=140,
        needles=(b"bucket",),
        run=BUCKET_RUN,
        label=len('"s3_buckets_names"   :   [' + " " * 32 + '"'),  # the longest label and separator before the name
    ),
    Rule(  # CloudFormation's generated names: `"PhysicalResourceId": "<bucket>", "ResourceType": "AWS::S3::Bucket"`
        "s3_bucket",
        rf'"PhysicalResourceId"\s{{0,3}}:\s{{0,3}}"(?P<v>{BUCKET})"\s{{0,32}},\s{{0,32}}"ResourceType"\s{{0,3}}:\s{{0,3}}'
        r'"AWS::S3::Bucket"',
        gate=r'"PhysicalResourceId"\s*:\s*"[a-z0-9][a-z0-9.-]+[a-z0-9]"\s*,\s*"ResourceType"\s*:\s*"AWS::S3::Bucket"',
        classify=classify_bucket,
        needles=(b"aws::s3::bucket",),
    ),
    # AWS CLI bucket listings. `aws s3 ls`: a line that is exactly date, time and a bucket name.
    Rule(
        "s3_bucket",
        rf"(?<![^\n]){LS_LINE_HEAD}(?P<v>{BUCKET})[ \t]{{0,16}}(?=\r?(?:\n|\Z))",
        gate=rf"(?:^|\n){_unbounded(LS_LINE_HEAD)}[a-z0-9][a-z0-9.-]+[a-z0-9][ \t]*\r?(?:\n|\z)",
        classify=classify_listed_bucket,
        needles=(b":",),
    ),
    # `aws s3api list-buckets`: the first object's (or YAML item's) `Name`, then `bucket_objects`
    # walks on through the rest of the list. The gate is the label; the regex reads on from it.
    Rule(
        "s3_bucket",
        rf'"Buckets"\s{{0,3}}:\s{{0,3}}\[\s{{0,32}}\{{\s{{0,32}}(?:{JSON_MEMBER}\s{{0,32}},\s{{0,32}}){{0,8}}'
        rf'"Name"\s{{0,3}}:\s{{0,3}}"(?P<v>{BUCKET})"',
        gate=r'"Buckets"\s*:\s*\[\s*\{',
        classify=classify_bucket,
        more=bucket_objects,
        needles=(b'"buckets"',),
        reach=4096,
    ),
    Rule(
        "s3_bucket",
        rf"\bBuckets:[ \t]{{0,3}}\r?\n[ \t]{{0,32}}-[ \t]{{1,3}}(?:{YAML_MEMBER}\r?\n[ \t]{{1,32}}){{0,8}}"
        rf"""Name:[ \t]{{1,3}}(?P<q>["']?)(?P<v>{BUCKET})(?P=q)(?=[ \t]{{0,3}}(?:\r?\n|\Z))""",
        gate=r"\bBuckets:[ \t]*\r?\n[ \t]*-[ \t]",
        classify=classify_bucket,
        more=bucket_objects,
        needles=(b"buckets:",),
        reach=4096,
    ),
    Rule(  # `--output text`: `BUCKETS\t[<region>\t]<creation date>\t<name>`, the name last
        "s3_bucket",
        rf"(?<![^\n])BUCKETS\t(?:[^\t\r\n]{{1,128}}\t){{1,4}}(?P<v>{BUCKET})[ \t]{{0,16}}(?=\r?(?:\n|\Z))",
        gate=r"(?:^|\n)BUCKETS\t(?:[^\t\r\n]+\t)+[a-z0-9][a-z0-9.-]+[a-z0-9][ \t]*\r?(?:\n|\z)",
        classify=classify_bucket,
        needles=(b"buckets\t",),
    ),
    # S3 server access log records: `<bucket owner's canonical id> <bucket> [01/May/2024:10:00:00 +0000] ...`
    Rule(
        "s3_bucket",
        rf"(?<![^\n]){CANONICAL_ID} (?P<v>{BUCKET}) {_ACCESS_LOG_TIME}",
        gate=_ACCESS_LOG_GATE,
        classify=classify_bucket,
        needles=(b" [",),
    ),
    # S3 canonical user ids (64 hex: an account), never bare (sha256 digests look the same): the `ID`
    # of an Owner / Grantee / Initiator (JSON, YAML, text lines), a `CanonicalUser` principal, a grant's `id=`.
    Rule(
        "s3_canonical_user_id",
        rf'"(?:Owner|Grantee|Initiator)"\s{{0,3}}:\s{{0,3}}\{{\s{{0,32}}(?:{JSON_MEMBER}\s{{0,32}},\s{{0,32}}){{0,4}}'
        rf'"(?:ID|Id|OwnerId|CanonicalUser|CanonicalUserId)"\s{{0,3}}:\s{{0,3}}"(?P<v>{CANONICAL_ID})"',
        gate=r'"(?:Owner|Grantee|Initiator)"\s*:\s*\{',
        needles=(b'"owner"', b'"grantee"', b'"initiator"'),
        reach=2048,
    ),
    Rule(
        "s3_canonical_user_id",
        rf"\b(?:Owner|Grantee|Initiator):[ \t]{{0,3}}\r?\n(?:[ \t]{{1,32}}{YAML_MEMBER}\r?\n){{0,4}}[ \t]{{1,32}}"
        rf"""(?:ID|Id|OwnerId):[ \t]{{1,3}}(?P<q>["']?)(?P<v>{CANONICAL_ID})(?P=q)(?![0-9A-Za-z])""",
        gate=r"\b(?:Owner|Grantee|Initiator):[ \t]*\r?\n",
        needles=(b"owner:", b"grantee:", b"initiator:"),
        reach=2048,
    ),
    Rule(
        "s3_canonical_user_id",
        rf"(?<![^\n])(?:OWNER|GRANTEE|INITIATOR)\t(?:[^\t\r\n]{{0,128}}\t){{0,3}}(?P<v>{CANONICAL_ID})(?![0-9A-Za-z])",
        gate=rf"(?:^|\n)(?:OWNER|GRANTEE|INITIATOR)\t(?:[^\t\r\n]*\t)*{CANONICAL_ID}(?:\z|[^0-9A-Za-z])",
        needles=(b"owner\t", b"grantee\t", b"initiator\t"),
    ),
    Rule(  # the bucket owner's, at the start of an S3 server access log record
        "s3_canonical_user_id",
        rf"(?<![^\n])(?P<v>{CANONICAL_ID}) {BUCKET} {_ACCESS_LOG_TIME}",
        gate=_ACCESS_LOG_GATE,
        needles=(b" [",),
    ),
    Rule(
        "s3_canonical_user_id",
        rf'"CanonicalUser"\s{{0,3}}:\s{{0,3}}(?:\[\s{{0,32}})?"(?P<v>{CANONICAL_ID})"',
        gate=rf'"CanonicalUser"\s*:\s*(?:\[\s*)?"{CANONICAL_ID}"',
        more=canonical_id_list,
        needles=(b'"canonicaluser"',),
    ),
    Rule(  # `--grant-read id=<id>`, `x-amz-grant-read: id="<id>"`
        "s3_canonical_user_id",
        rf"""(?i:grant(?:-[a-z]{{1,12}}){{0,3}})(?:[ \t]{{1,3}}|=|:[ \t]{{0,3}})["']?(?i:id)=["']?"""
        rf"(?P<v>{CANONICAL_ID})(?![0-9A-Za-z])",
        gate=rf"""(?i:grant(?:-[a-z]+)*)(?:[ \t]+|=|:[ \t]*)["']?(?i:id)=["']?{CANONICAL_ID}(?:\z|[^0-9A-Za-z])""",
        more=canonical_id_list,
        needles=(b"grant",),
    ),
    # credentials
    # `aws secretsmanager get-secret-value`: the whole JSON string after `"SecretString"` / `"SecretBinary"`
    Rule(
        "secret_value",
        rf'"(?:SecretString|SecretBinary)"\s{{0,3}}:\s{{0,3}}"(?P<v>{_JSON_STRING})"',
        gate=rf'"(?:SecretString|SecretBinary)"\s*:\s*"{_JSON_STRING_GATE}',
        needles=(b'"secretstring"', b'"secretbinary"'),
    ),
    # `aws ssm get-parameter(s) --with-decryption`: the `"Value"` that follows `"Type": "SecureString"` in
    # the same object (both the API's order and sorted keys put Type before Value; scalar members between)
    Rule(
        "secret_value",
        rf'"Type"\s{{0,3}}:\s{{0,3}}"SecureString"\s{{0,32}},\s{{0,32}}(?:{JSON_MEMBER}\s{{0,32}},\s{{0,32}}){{0,8}}'
        rf'"Value"\s{{0,3}}:\s{{0,3}}"(?P<v>{_JSON_STRING})"',
        gate=r'"Type"\s*:\s*"SecureString"\s*,',
        needles=(b'"securestring"',),
        reach=270000,  # longer than any match: eight members and the value (escapes count two bytes)
    ),
    # `--output text` prints a top-level object's scalars on one line, tab-separated, sorted by key and
    # unlabelled: get-secret-value's `<ARN>\t<CreatedDate>\t<Name>\t<SecretString or SecretBinary>\t<VersionId>`
    Rule(
        "secret_value",
        r"(?<![^\n])arn:aws[a-z-]{0,10}:secretsmanager:[a-z0-9-]{1,32}:[0-9]{12}:secret:[^\t\r\n]{1,512}"
        r"\t[0-9][0-9T:.+-]{5,40}\t[^\t\r\n]{1,512}\t(?P<v>[^\r\n]{1,131072})\t[A-Za-z0-9-]{32,64}"
        r"[ \t]{0,3}(?=\r?\n|\Z)",
        gate=r"(?:^|\n)arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:[^\t\r\n]+\t",
        needles=(b":secretsmanager:",),
        reach=140000,
    ),
    # and get-parameter(s)' `PARAMETER[S]\t<ARN>\t<DataType>\t<LastModifiedDate>\t<Name>\t<Type>\t<Value>\t<Version>`
    Rule(
        "secret_value",
        r"(?<![^\n])PARAMETERS?\t(?:[^\t\r\n]{1,2048}\t){1,6}SecureString\t(?P<v>[^\r\n]{1,8192})\t[0-9]{1,10}"
        r"[ \t]{0,3}(?=\r?\n|\Z)",
        gate=r"(?:^|\n)PARAMETERS?\t",
        needles=(b"parameter\t", b"parameters\t"),
        reach=21000,  # longer than any match: six fields of up to 2048 bytes and the value
    ),
    Rule(
        "session_token",
        rf"(?<![A-Za-z0-9+/])(?P<v>{_SESSION_PREFIX}(?:[A-Za-z0-9+=%]|\\?/){{20,8192}})",  # `%2F`: URL-encoded
        gate=rf"{_SESSION_PREFIX}(?:[A-Za-z0-9+=%]|\\?/){{20,}}(?:\z|[^A-Za-z0-9+/=%])",
        needles=(b"iqojb3jpz2lu", b"fwogzxivyxdz", b"fqogzxivyxdz", b"qvdto", b"eyjwyxlsb2fkijoi"),
    ),
    Rule(  # `aws eks get-token`, a kubeconfig's `token:`: a presigned STS request, good for 15 minutes
        "session_token",
        r"(?<![A-Za-z0-9_.-])(?P<v>k8s-aws-v1\.[A-Za-z0-9_-]{40,8192})",
        gate=r"k8s-aws-v1\.[A-Za-z0-9_-]{40,}(?:\z|[^A-Za-z0-9_-])",
        needles=(b"k8s-aws-v1.",),
    ),
    Rule(  # `aws codeartifact get-authorization-token`: `eyJ2ZXIiOjEsImlzdSI6…` (base64 `{"ver":1,"isu":`)
        "session_token",
        r"(?<![A-Za-z0-9_.-])(?P<v>eyJ2ZXIiOjEsImlzdSI6[A-Za-z0-9_.-]{20,8192})",
        gate=r"eyJ2ZXIiOjEsImlzdSI6[A-Za-z0-9_.-]{20,}(?:\z|[^A-Za-z0-9_.-])",
        needles=(b"eyj2zxiiojesimlzdsi6",),
        trim=b".",
    ),
    _labelled(
        "session_token",
        _SESSION_LABEL,
        r"(?:[A-Za-z0-9+=%]|\\?/){16,8192}",
        r"(?:[A-Za-z0-9+=%]|\\?/){16,}(?:\z|[^A-Za-z0-9+/=%])",
        sep=rf"(?:{TABLE_SEP}|{SEP})",  # `--output table`: `|  SessionToken  |  …  |`
        needles=(b"token",),
    ),
    _labelled(
        "session_token",
        _SESSION_LABEL,
        r"(?:[A-Za-z0-9+=%]|\\?/){16,8192}",
        r"(?:[A-Za-z0-9+=%]|\\?/){16,}(?:\z|[^A-Za-z0-9+/=%])",
        sep=_NAME_VALUE_SEP,
        needles=(b"token",),
    ),
    Rule(
        "session_token",
        rf"{_CREDENTIALS_LINE}{_SECRET_VALUE}\t(?P<v>(?:[A-Za-z0-9+=]|\\?/){{16,8192}})",
        gate=rf"{_CREDENTIALS_GATE}{_unbounded(_SECRET_VALUE)}\t(?:[A-Za-z0-9+=]|\\?/){{16,}}(?:\z|[^A-Za-z0-9+/=])",
        needles=(b"credentials\t",),
    ),
    Rule(
        "secret_access_key",
        rf"{_CREDENTIALS_LINE}(?P<v>{_SECRET_VALUE})(?=[\t\r\n]|\Z)",
        gate=rf"{_CREDENTIALS_GATE}{_unbounded(_SECRET_VALUE)}(?:\z|[\t\r\n])",
        needles=(b"credentials\t",),
    ),
    _labelled(
        "secret_access_key",
        _SECRET_LABEL,
        *_LABELLED_SECRET_KEY,
        sep=rf"(?:{TABLE_SEP}|{SEP})",  # `--output table`: `|  SecretAccessKey  |  …  |`
        needles=(b"secret",),
    ),
    _labelled(  # ECS task definitions, CloudFormation: `{"name": "AWS_SECRET_ACCESS_KEY", "value": "..."}`
        "secret_access_key",
        _SECRET_LABEL,
        *_LABELLED_SECRET_KEY,
        sep=_NAME_VALUE_SEP,
        needles=(b"secret",),
    ),
    Rule(  # the console's credentials CSV, or any key id with its secret right after it
        "secret_access_key",
        r"""\b(?:AKIA|ASIA)[A-Z0-9]{16}["']?[,;:\s]{1,3}["']?(?P<v>(?:[A-Za-z0-9+]|\\?/){40})(?![A-Za-z0-9+/=])""",
        gate=r"""\b(?:AKIA|ASIA)[A-Z0-9]{16}["']?[,;:\s]{1,3}["']?(?:[A-Za-z0-9+]|\\?/){40}(?:\z|[^A-Za-z0-9+/=])""",
        classify=classify_unlabelled_secret,
    ),
    # 20 characters; AWS's own assume-role example has 21 (ASIAJEXAMPLEXEG2JICEA)
    Rule("access_key_id", r"\b(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z0-9]{16,17}\b"),
    # 21 characters as IAM issues them (AIDAJQABLZS4A3QDU576Q in its documentation), 20 in older examples
    Rule("iam_unique_id", r"\b(?:AIDA|AROA|AGPA|ANPA|ANVA|AIPA|APKA|ASCA)[A-Z0-9]{16,17}\b"),
    # account ids: in AWS hostnames and URLs, or after a label that says so
    Rule(  # the account's console sign-in URL
        "account_id",
        r"\b(?P<v>[0-9]{12})\.signin\.aws\.amazon\.com",
        gate=r"\b[0-9]{12}\.signin\.aws\.amazon\.com",
        needles=(b".signin.aws.amazon.com",),
    ),
    Rule(
        "account_id",
        r"\b(?P<v>[0-9]{12})\.dkr\.ecr\.",
        gate=r"\b[0-9]{12}\.dkr\.ecr\.",
        needles=(b".dkr.ecr.",),
    ),
    Rule(
        "account_id",
        rf"\b(?:sqs\.{REGION}\.amazonaws\.com(?:\.cn)?|(?:{REGION}\.)?queue\.amazonaws\.com){SLASH}(?P<v>[0-9]{{12}})\b",
        gate=rf"\b(?:sqs\.{REGION}\.amazonaws\.com(?:\.cn)?|(?:{REGION}\.)?queue\.amazonaws\.com){SLASH}[0-9]{{12}}\b",
        needles=(b"amazonaws.com",),
    ),
    _labelled(
        "account_id",
        _ACCOUNT_LABEL,
        r"(?:[0-9]{12}|[0-9]{4}-[0-9]{4}-[0-9]{4})\b",
        # a list's first item, on the next line when pretty-printed; `\"accountId\":\"…` inside a JSON string
        # and `--output table`'s `|  OwnerId  |  123456789012  |`
        sep=rf"""(?:{TABLE_SEP}|(?:\\?["'])?\s{{0,3}}[:=]?\s{{0,3}}(?:\\?["'])?\[?\s{{0,12}}(?:\\?["'])?#?)""",
        classify=not_before_digit_group("account_id"),
        bounded=True,
        needles=(b"account", b"owner", b"requester", b'"aws"', b"userid", b"registryid", b"domain"),
    ),
    Rule(  # log delivery prefixes: `AWSLogs/123456789012/...`, `AWSLogs/o-exampleorgid/123456789012/...`
        "account_id",
        rf"\bAWSLogs{SLASH}(?:o-[a-z0-9]{{10,32}}{SLASH})?(?P<v>[0-9]{{12}})\b",
        gate=rf"\bAWSLogs{SLASH}(?:o-[a-z0-9]{{10,32}}{SLASH})?[0-9]{{12}}\b",
        needles=(b"awslogs",),
    ),
    Rule(
        "account_id",
        rf"(?<![^\n]){_ACCOUNT_RECORD}\t(?:[^\t\r\n]{{1,256}}\t){{0,16}}(?P<v>[0-9]{{12}})(?=[\t\r\n]|\Z)",
        gate=rf"(?:^|\n){_ACCOUNT_RECORD}\t",  # the record's head; the regex reads its fields
        needles=tuple(f"{record.lower()}\t".encode() for record in _ACCOUNT_RECORDS),
        reach=4608,  # longer than any match: 17 fields of up to 256 bytes
    ),
    Rule(  # `aws organizations list-accounts` / `describe-account`: `{"Id": "<account>", "Arn": "arn:...:account/...`
        "account_id",
        r'"Id"\s{0,3}:\s{0,3}"(?P<v>[0-9]{12})"\s{0,32},\s{0,32}"Arn"\s{0,3}:\s{0,3}"arn:aws[a-z-]{0,10}:organizations::[0-9]{12}:account\b',
        gate=r'"Id"\s*:\s*"[0-9]{12}"\s*,\s*"Arn"\s*:\s*"arn:aws[a-z-]{0,10}:organizations::[0-9]{12}:account\b',
        needles=(b"organizations::",),
    ),
    Rule(  # VPC flow log records: `<version> <account-id> <interface-id> ...`
        "account_id",
        r"(?<![0-9A-Za-z_.-])[2-9] (?P<v>[0-9]{12}) (?=eni-[0-9a-f])",
        gate=r"(?:^|[^0-9A-Za-z_.-])[2-9] [0-9]{12} eni-[0-9a-f]",
        needles=(b" eni-",),
        from_gates=value_before_gate_end("account_id", len("123456789012 eni-0"), 12),
    ),
    # other AWS ids that only the context tells apart
    _labelled(
        "route53_zone",
        rf"(?:\bhostedzone{SLASH}|(?i:hosted[ _-]?zone[ _-]?(?:name[ _-]?)?id))",  # in a word: `regionalHostedZoneId`
        r"Z[A-Z0-9]{8,32}\b",
        sep=r"""(?:["']?\s{0,3}[:=]?\s{0,3}["']?)""",
        bounded=True,
        needles=(b"hostedzone", b"hosted"),
    ),
    _labelled(
        "cloudfront_distribution",
        r"""(?:\b(?i:distribution[ _-]?id|distribution)|"Id")""",
        r"E[A-Z0-9]{11,14}\b",
        sep=r"""(?:["']?\s{0,3}[:=/]?\s{0,3}["']?|\\/)""",
        classify=classify_distribution,
        needles=(b"distribution", b'"id"'),
    ),
    _labelled(
        "kms_key_id",
        rf"(?:\b(?i:(?:kms|target|source)[ _-]?key[ _-]?ids?|key[ _-]?ids?|kms[ _-]?keys?)|\bkey{SLASH})",
        rf"(?:{UUID}|mrk-[0-9a-f]{{32}})\b",
        sep=OPT_SEP + r"""(?:(?:\[|\s{0,32}-[ \t])\s{0,32}["']?)?""",  # a list's first item: `["...`, YAML `- ...`
        more=kms_key_list,
        needles=(b"key",),
    ),
    Rule("kms_key_id", r"\bmrk-[0-9a-f]{32}\b"),
    _labelled(
        "acm_certificate_id",
        rf"(?:\bcertificate{SLASH}|\b(?i:certificate[ _-]?id))",
        rf"{UUID}\b",
        sep=OPT_SEP,
        needles=(b"certificate",),
    ),
    # resource ids: `<prefix>-<8 or 17 hex>`
    _ids("ec2_instance", "i"),
    _ids("ami", "ami"),
    _ids("ebs_volume", "vol"),
    _ids("ebs_snapshot", "snap"),
    _ids("security_group", "sg"),
    _ids("vpc", "vpc"),
    _ids("subnet", "subnet"),
    _ids("internet_gateway", "igw"),
    _ids("egress_only_igw", "eigw"),
    _ids("nat_gateway", "nat", legacy=False),
    _ids("network_interface", "eni"),
    _ids("vpc_endpoint", "vpce"),
    _ids("vpc_peering", "pcx"),
    _ids("tgw_attachment", "tgw-attach"),
    _ids("transit_gateway", "tgw"),
    _ids("route_table", "rtb"),
    _ids("network_acl", "acl"),
    _ids("dhcp_options", "dopt"),
    _ids("eip_allocation", "eipalloc"),
    _ids("eip_association", "eipassoc"),
    _ids("efs_filesystem", "fs|fsap|fsmt"),
    _ids("vpn_connection", "vpn"),
    _ids("vpn_gateway", "vgw"),
    _ids("customer_gateway", "cgw"),
    _ids("launch_template", "lt", legacy=False),
    _ids("key_pair", "key", legacy=False),
    _ids("capacity_reservation", "cr", legacy=False),
    _ids("placement_group", "pg", legacy=False),
    _ids("ec2_resource", "r|sgr|tgw-rtb|lgw|ipam|ipam-pool|ipam-scope|vpce-svc|h", legacy=False),
    _ids("ec2_resource", "eni-attach"),
    _ids("ec2_resource", "pl|fl|sir"),
    _ids("ec2_resource", "mi|eice|s", legacy=False),  # `s-`: a Transfer Family server
    Rule("rds_resource_id", r"\b(?:db|cluster)-[A-Z0-9]{26}\b"),
    # a load balancer or target group as ALB access logs and CloudWatch dimensions name it, its ARN's
    # tail: `app/my-lb/50dc6c495c0c9188`, `targetgroup/my-targets/73e2d6bc24d8a067`
    Rule(
        "elb_arn",
        r"(?<![A-Za-z0-9_.:/-])(?:app|net|gwy|targetgroup)/[A-Za-z0-9-]{1,32}/[0-9a-f]{16}\b",
        gate=r"(?:^|[^A-Za-z0-9_.:/-])(?:app|net|gwy|targetgroup)/[A-Za-z0-9-]{1,32}/[0-9a-f]{16}\b",
        needles=(b"app/", b"net/", b"gwy/", b"targetgroup/"),
    ),
    # AWS Organizations: an organization (`o-` + 10-32) and an organizational unit (`ou-<root>-<8-32>`)
    Rule("organization_id", r"\bo-[a-z0-9]{10,32}\b"),
    Rule("organization_id", r"\bou-[a-z0-9]{4,32}-[a-z0-9]{8,32}\b"),
    # Cognito user pools: `<region>_<9 letters and digits>`, a capital among them (`us-west-2_aBcDeFgHi`),
    # so `us-east-1_snapshots` stays a name
    Rule(
        "cognito_user_pool",
        rf"\b{REGION}_(?=[a-z0-9]{{0,8}}[A-Z])[A-Za-z0-9]{{9}}\b",
        gate=rf"\b{REGION}_[A-Za-z0-9]{{9}}\b",
        needles=(b"_",),
    ),
    # addresses
    Rule(
        "ipv4_public",
        rf"(?<![0-9A-Za-z_.])(?P<v>{IPV4})(?![0-9A-Za-z_]|\.[0-9])",
        gate=rf"(?:^|[^0-9A-Za-z_.]){IPV4}(?:\z|[^0-9A-Za-z_.]|\.(?:\z|[^0-9]))",
        classify=classify_ipv4,
        from_gates=ipv4_candidates,
    ),
    Rule(
        "ipv6",
        rf"(?<![0-9A-Za-z_:.])(?P<v>[0-9A-Fa-f:]{{2,39}}(?:(?<=:){IPV4})?)(?![0-9A-Za-z_:]|\.[0-9])",
        gate=r"(?:^|[^0-9A-Za-z_:.])(?:(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}"
        r"|(?:[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{1,4}){0,6})?::(?:[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{1,4}){0,6})?)"
        r"(?:\z|[^0-9A-Za-z_:])",
        classify=classify_ipv6,
        needles=(b":",),
        reach=16,
    ),
]
