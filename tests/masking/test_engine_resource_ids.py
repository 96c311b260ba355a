"""EC2/VPC resource ids: `<prefix>-<17 hex>` and the legacy `<prefix>-<8 hex>`."""

import pytest

from tests.masking.engine_support import BACKENDS, found, masked, values

HEX17, HEX8 = "0123456789abcdef0", "1a2b3c4d"

BOTH_FORMS = {
    "i": "ec2_instance",
    "ami": "ami",
    "vol": "ebs_volume",
    "snap": "ebs_snapshot",
    "sg": "security_group",
    "vpc": "vpc",
    "subnet": "subnet",
    "igw": "internet_gateway",
    "eigw": "egress_only_igw",
    "eni": "network_interface",
    "vpce": "vpc_endpoint",
    "pcx": "vpc_peering",
    "tgw": "transit_gateway",
    "tgw-attach": "tgw_attachment",
    "rtb": "route_table",
    "acl": "network_acl",
    "dopt": "dhcp_options",
    "eipalloc": "eip_allocation",
    "eipassoc": "eip_association",
    "fs": "efs_filesystem",
    "vpn": "vpn_connection",
    "vgw": "vpn_gateway",
    "cgw": "customer_gateway",
    "eni-attach": "ec2_resource",
}
CURRENT_FORM_ONLY = {
    "nat": "nat_gateway",
    "lt": "launch_template",
    "key": "key_pair",
    "cr": "capacity_reservation",
    "pg": "placement_group",
    "r": "ec2_resource",
    "sgr": "ec2_resource",
    "tgw-rtb": "ec2_resource",
    "mi": "ec2_resource",
    "h": "ec2_resource",  # a dedicated host
}


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


@pytest.mark.parametrize(("prefix", "kind"), sorted({**BOTH_FORMS, **CURRENT_FORM_ONLY}.items()))
def test_it_masks_each_resource_id_in_its_current_17_hex_form(backend, prefix, kind):
    assert found(f"resource {prefix}-{HEX17} is ready", backend) == [(f"{prefix}-{HEX17}", kind)]


@pytest.mark.parametrize(("prefix", "kind"), sorted(BOTH_FORMS.items()))
def test_it_masks_the_legacy_8_hex_form(backend, prefix, kind):
    assert found(f"legacy {prefix}-{HEX8}.", backend) == [(f"{prefix}-{HEX8}", kind)]


@pytest.mark.parametrize("prefix", sorted(set(CURRENT_FORM_ONLY) - {"tgw-rtb"}))  # its `rtb-` part is an id
def test_it_leaves_8_hex_forms_of_prefixes_that_never_had_them(backend, prefix):
    assert found(f"ticket {prefix}-20240101", backend) == []


@pytest.mark.parametrize(
    "text",
    [
        "the i-node table is full",
        "instance type t3.large in us-east-1",
        "edit the sg-rules file",
        "vpc-peering is a concept",
        "i-0123456",  # too short
        "i-0123456789abcdef",  # 16 hex: neither form
        "i-0123456789ABCDEF0",  # ids are lower case
        "xi-0123456789abcdef0",  # glued to a word
        "i-0123456789abcdef0a",  # 18 hex
        "subnet-groups and vpc-flow-logs",
        "AWS_EC2_001 and AWS_VPC_002",
    ],
)
def test_it_leaves_lookalikes_untouched(backend, text):
    assert found(text, backend) == []


def test_it_masks_ids_in_cli_json_and_keeps_the_json_intact(backend):
    text = '{"InstanceId": "i-0a1b2c3d4e5f67890", "VpcId": "vpc-12345678", "Groups": ["sg-0f1e2d3c4b5a69788"]}'
    assert masked(text, backend) == (
        '{"InstanceId": "<ec2_instance>", "VpcId": "<vpc>", "Groups": ["<security_group>"]}'
    )


def test_it_masks_ids_in_yaml_terraform_urls_and_logs(backend):
    text = (
        "InstanceId: i-0a1b2c3d4e5f67890\n"
        '  + subnet_id = "subnet-0f1e2d3c4b5a69788"\n'
        "https://console.aws.amazon.com/ec2/home?region=us-east-1#InstanceDetails:instanceId=i-0123456789abcdef0\n"
        "2026-11-25T09:12:44Z ERROR attach vol-0a1b2c3d4e5f67890 to i-12345678 failed\n"
    )
    assert values(text, backend) == [
        "i-0a1b2c3d4e5f67890",
        "subnet-0f1e2d3c4b5a69788",
        "i-0123456789abcdef0",
        "vol-0a1b2c3d4e5f67890",
        "i-12345678",
    ]


def test_it_tells_a_transit_gateway_attachment_from_the_gateway(backend):
    text = f"tgw-attach-{HEX17} on tgw-{HEX17}"
    assert found(text, backend) == [(f"tgw-attach-{HEX17}", "tgw_attachment"), (f"tgw-{HEX17}", "transit_gateway")]


def test_it_masks_the_ami_inside_an_import_task_name(backend):
    assert values(f"import-ami-{HEX17}", backend) == [f"ami-{HEX17}"]


def test_it_masks_rds_resource_ids(backend):
    text = (
        '"DbiResourceId": "db-ABCDEFGHIJKL0123456789MNOP", "DbClusterResourceId": "cluster-ABCDEFGHIJKL0123456789MNOP"'
    )
    assert masked(text, backend) == '"DbiResourceId": "<rds_resource_id>", "DbClusterResourceId": "<rds_resource_id>"'


def test_it_masks_aws_organizations_organization_and_unit_ids(backend):
    text = (
        '{"Organization": {"Id": "o-a1b2c3d4e5",'
        ' "Arn": "arn:aws:organizations::123456789012:organization/o-a1b2c3d4e5"},'
        ' "OrganizationalUnit": {"Id": "ou-ab12-cdef3456"}}'
    )
    assert ("o-a1b2c3d4e5", "organization_id") in found(text, backend)
    assert ("ou-ab12-cdef3456", "organization_id") in found(text, backend)


@pytest.mark.parametrize("text", ["an o-ring seal", "co-ordinated go-between", "o-abc123", "you-ab12-cdef3456"])
def test_it_leaves_words_shaped_like_organization_ids_alone(backend, text):
    assert found(text, backend) == []
