"""What an operator pastes from the AWS CLI about buckets is masked whole: `aws s3 ls` bucket lines,
`aws s3api list-buckets` as JSON (pretty-printed and compact), YAML and text, and the owner's S3
canonical user id. Log lines, object listings, EC2 `Name` tags and sha256 digests are left alone."""

import json

import pytest

from masking import engine
from tests.masking.engine_support import BACKENDS, assert_backends_agree, found, masked

OWNER_ID = "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be"
OTHER_ID = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
BUCKETS = ("acme-prod-logs", "acme-backups-2024")
LISTED = [(name, "s3_bucket") for name in BUCKETS]
RESPONSE = {
    "Buckets": [
        {"Name": "acme-prod-logs", "CreationDate": "2023-04-01T10:00:00+00:00"},
        {"Name": "acme-backups-2024", "CreationDate": "2024-01-01T10:00:00+00:00", "BucketRegion": "eu-west-1"},
    ],
    "Owner": {"DisplayName": "ops", "ID": OWNER_ID},
}
S3_LS = "2023-04-01 10:00:00 acme-prod-logs\n2024-01-01 10:00:00 acme-backups-2024\n"
LIST_BUCKETS_JSON = json.dumps(RESPONSE, indent=4)
LIST_BUCKETS_COMPACT = json.dumps(RESPONSE)
LIST_BUCKETS_TEXT = (
    "BUCKETS\t2023-04-01T10:00:00+00:00\tacme-prod-logs\n"
    "BUCKETS\teu-west-1\t2024-01-01T10:00:00+00:00\tacme-backups-2024\n"
    f"OWNER\tops\t{OWNER_ID}\n"
)
LIST_BUCKETS_YAML = (
    "Buckets:\n"
    "- CreationDate: '2023-04-01T10:00:00+00:00'\n"
    "  Name: acme-prod-logs\n"
    "- BucketRegion: eu-west-1\n"
    "  CreationDate: '2024-01-01T10:00:00+00:00'\n"
    "  Name: acme-backups-2024\n"
    "Owner:\n"
    "  DisplayName: ops\n"
    f"  ID: {OWNER_ID}\n"
)
OWNED = [*LISTED, (OWNER_ID, "s3_canonical_user_id")]
FORMS = {
    "s3 ls": (S3_LS, LISTED),
    "list-buckets JSON": (LIST_BUCKETS_JSON, OWNED),
    "list-buckets compact JSON": (LIST_BUCKETS_COMPACT, OWNED),
    "list-buckets text": (LIST_BUCKETS_TEXT, OWNED),
    "list-buckets YAML": (LIST_BUCKETS_YAML, OWNED),
}


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


@pytest.mark.parametrize("form", FORMS)
def test_each_cli_output_form_is_masked_whole(backend, form):
    text, expected = FORMS[form]

    assert found(text, backend) == expected


def test_an_s3_ls_listing_keeps_its_dates_and_layout(backend):
    assert masked(S3_LS, backend) == "2023-04-01 10:00:00 <s3_bucket>\n2024-01-01 10:00:00 <s3_bucket>\n"


def test_the_pretty_printed_json_keeps_everything_but_the_names_and_the_owner_id(backend):
    expected = LIST_BUCKETS_JSON.replace("acme-prod-logs", "<s3_bucket>").replace("acme-backups-2024", "<s3_bucket>")
    assert masked(LIST_BUCKETS_JSON, backend) == expected.replace(OWNER_ID, "<s3_canonical_user_id>")


@pytest.mark.parametrize(
    "text",
    [
        "2023-04-01 10:00:00 acme-prod-logs",  # one line, no line break at the end
        "2023-04-01 10:00:00 acme-prod-logs\r\n2024-01-01 10:00:00 acme-backups-2024\r\n",
        "$ aws s3 ls\n    2023-04-01 10:00:00 acme-prod-logs\n    2024-01-01 10:00:00 acme-backups-2024\n",
    ],
)
def test_s3_ls_lines_are_found_at_the_end_of_the_text_with_crlf_and_indented(backend, text):
    assert [value for value, _ in found(text, backend)] == list(BUCKETS[: text.count("acme")])


def test_a_plain_word_bucket_is_taken_only_next_to_another_listed_bucket(backend):
    listing = "2023-04-01 10:00:00 logs\n2023-04-02 10:00:00 backups\n2023-04-03 10:00:00 acme-www\n"

    assert [value for value, _ in found(listing, backend)] == ["logs", "backups", "acme-www"]
    assert found("2023-04-01 10:00:00 started\n", backend) == []


def test_every_name_of_a_long_list_buckets_answer_is_masked(backend):
    names = [f"acme-bucket-{n:03d}" for n in range(60)]
    response = {"Buckets": [{"Name": name, "CreationDate": "2023-04-01T10:00:00+00:00"} for name in names]}

    for text in (json.dumps(response), json.dumps(response, indent=4)):
        assert [value for value, _ in found(text, backend)] == names


@pytest.mark.parametrize(
    "text",
    [
        '{"Buckets": [{"CreationDate": "2023-04-01T10:00:00+00:00", "Name": "acme-prod-logs"}, '
        '{"BucketRegion": "eu-west-1", "CreationDate": null, "Name": "acme-backups-2024"}]}',
        '{"Buckets": [{"Name": "acme-prod-logs"}, {"Name": "AWS_S3_BUCKET_001"}, {"Name": "acme-backups-2024"}]}',
        "Buckets:\n  - Name: 'acme-prod-logs'\n    CreationDate: '2023'\n  - Name: \"acme-backups-2024\"\nOwner:\n",
    ],
)
def test_names_are_found_whatever_the_order_of_the_members_and_already_masked_ones_are_stepped_over(backend, text):
    assert found(text, backend) == LISTED


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f'"Grantee": {{"DisplayName": "ops", "ID": "{OWNER_ID}", "Type": "CanonicalUser"}}', [OWNER_ID]),
        (f'"Grantee": {{"Type": "CanonicalUser", "ID": "{OWNER_ID}"}}', [OWNER_ID]),
        (f'"Initiator": {{"ID": "{OWNER_ID}", "DisplayName": "ops"}}', [OWNER_ID]),
        (f'"Principal": {{"CanonicalUser": "{OWNER_ID}"}}', [OWNER_ID]),
        (f'"Principal": {{"CanonicalUser": ["{OWNER_ID}", "{OTHER_ID}"]}}', [OWNER_ID, OTHER_ID]),
        (f"aws s3api put-object-acl --grant-read id={OWNER_ID} --bucket b", [OWNER_ID]),
        (
            f'--grant-full-control id={OWNER_ID},uri=http://acs.amazonaws.com/groups/x,id="{OTHER_ID}"',
            [OWNER_ID, OTHER_ID],
        ),
        (f'x-amz-grant-read: id="{OWNER_ID}"', [OWNER_ID]),
        (f"GRANTS\tFULL_CONTROL\nGRANTEE\tops\t{OWNER_ID}\tCanonicalUser\n", [OWNER_ID]),
        (f"Owner:\n  ID: '{OWNER_ID}'\n", [OWNER_ID]),
        (f"OWNER\t{OWNER_ID}\n", [OWNER_ID]),
    ],
)
def test_a_canonical_user_id_is_masked_where_its_context_says_so(backend, text, expected):
    assert [value for value, kind in found(text, backend) if kind == "s3_canonical_user_id"] == expected


@pytest.mark.parametrize(
    "text",
    [
        f"sha256:{OWNER_ID}",
        f'{{"ID": "{OWNER_ID}"}}',
        f'{{"Digest": "{OWNER_ID}", "Owner": "ops"}}',
        f'"Owner": {{"Config": {{"x": 1}}, "ID": "{OWNER_ID}"}}',
        f"commit {OWNER_ID}\nID: {OWNER_ID}",
        f"id={OWNER_ID}",
        f"OWNERS\tops\t{OWNER_ID}",
    ],
)
def test_a_bare_64_hex_digest_is_left_alone(backend, text):
    assert found(text, backend) == []


@pytest.mark.parametrize(
    "text",
    [
        '{"Tags": [{"Key": "Name", "Value": "web-server-1"}]}',
        '{"Reservations": [{"Instances": [{"Tags": [{"Key": "Name", "Value": "web"}]}]}]}',
        '{"Roles": [{"RoleName": "deploy-role", "Path": "/"}]}',
        '{"Functions": [{"FunctionName": "resize-images", "Name": "resize-images"}]}',
        '{"Name": "acme-prod-logs"}',
        "Tags:\n- Key: Name\n  Value: web-server-1\n",
        "2023-04-01 10:00:00 INFO started\n2023-04-01 10:00:01 INFO stopped\n",
        "2023-04-01 10:00:00 started\n",
        "2023-04-01 10:00:00,123 acme-prod-logs\n",
        "2023-04-01 10:00:00  acme-prod-logs\n",
        "2023-04-01 10:00:00 acme-prod-logs is ready\n",
        "2023-04-01 10:00:00 Acme-Prod-Logs\n",
        "2023-04-01 10:00:00 10.0.0.1.2\n",
        "2023-04-01 10:00:00       1024 reports/2023/q1.csv\n                           PRE logs/\n",
        "2023-04-01 10:00:00    1048576 acme-prod-logs\n",
        "BUCKETS acme-prod-logs\n",
        "MY_BUCKETS\t2023\tacme-prod-logs\n",
    ],
)
def test_what_only_looks_like_a_bucket_listing_is_left_alone(backend, text):
    assert [value for value, kind in found(text, backend) if kind == "s3_bucket"] == []


def test_the_bucket_of_an_object_listing_is_in_its_s3_uri_only(backend):
    text = (
        "$ aws s3 ls s3://acme-prod-logs/2023/\n                           PRE 04/\n2023-04-01 10:00:00    1024 a.gz\n"
    )

    assert found(text, backend) == [("acme-prod-logs", "s3_bucket")]


def test_masked_output_is_not_masked_again(backend):
    for text, _ in FORMS.values():
        pieces, position = [], 0
        for number, match in enumerate(engine.scan(text, backend=backend), 1):
            prefix = engine.KINDS[match.kind].prefix
            pieces += [text[position : match.start], f"AWS_{prefix}_{number:03d}"]
            position = match.end
        assert engine.scan("".join(pieces) + text[position:], backend=backend) == []


def test_both_backends_agree_on_generated_cli_outputs():
    pieces = [
        "2023-04-01 10:00:00 ", "BUCKETS\t", "OWNER\t", "Owner:\n  ", '"Owner": {', '"Buckets": [', "{", "}", "]",
        '"Name": ', '"ID": ', "Buckets:\n", "- ", "  Name: ", "CreationDate: '2023'", '"CreationDate": "x", ',
        "acme-prod-logs", "logs", "Acme", f'"{OWNER_ID}"', OWNER_ID, "AWS_S3_BUCKET_001", "ops", "\t", ", ", ",",
        "\n", "\r\n", " ", '"', "'", "--grant-read id=", ",id=", '"CanonicalUser": ', "10.0.0.1", "name",
    ]  # fmt: skip
    assert_backends_agree(pieces, seed=11, texts=600, most=24)


@pytest.mark.parametrize(
    ("unit", "head", "expected"),
    [
        ('{"Name": "abc-1", "CreationDate": "2023-04-01T10:00:00+00:00"}, ', '{"Buckets": [', None),
        ('{"Name": "abc-1"}, ', "", 0),  # Name objects with no Buckets label before them
        ('"Buckets": [{"CreationDate": "x", ', "", 0),  # labels whose objects never have a Name
        ('"Buckets": [{', "", 0),
        ("- CreationDate: '2023'\n  Name: abc-1\n", "Buckets:\n", None),
        ("2023-04-01 10:00:00 abc-1\n", "", None),  # a megabyte-long s3 ls
        ("2023-04-01 10:00:00 logs\n", "", None),  # plain words, each next to another listed one
        ("2023-04-01 10:00:00 abc-1 x\n", "", 0),  # near-misses: more on the line
        ("2023-04-01 10:00:00 Abc-1\n", "", 0),  # capitals
        ("2023-04-01 10:00:00 INFO a\n2023-04-01 10:00:00 done\n", "", 0),  # plain words among log lines
        ("2023-04-01 10:00:00 ", "", 0),  # heads with no name, no line break
        ("BUCKETS\tx\t", "", 0),
        (f"OWNER\tops\t{OWNER_ID}\n", "", None),
        (f'"Owner": {{"DisplayName": "ops", "Size": 1, "ID": "{OWNER_ID[:-1]}"}}, ', "", 0),
        (f"{OWNER_ID} ", '"Owner": {"ID": ', 0),  # digests after a label whose value is not one
    ],
)
def test_hostile_cli_outputs_are_scanned_to_the_end_with_the_right_count(backend, unit, head, expected):
    count = (1_000_000 - len(head)) // len(unit)
    text = head + unit * count
    matches = engine.scan(text, backend=backend)
    assert len(matches) == (count if expected is None else expected)


@pytest.mark.django_db
@pytest.mark.parametrize("form", FORMS)
def test_the_masker_turns_every_bucket_and_the_owner_into_tokens(texts_masked, form):
    text, expected = FORMS[form]

    result = texts_masked(text)

    assert not any(bucket in result for bucket in BUCKETS)
    assert OWNER_ID not in result
    assert result.count("AWS_S3_BUCKET_") == 2
    assert result.count("AWS_S3_OWNER_") == len(expected) - 2
