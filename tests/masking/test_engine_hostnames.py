"""AWS hostnames that identify a resource; public service endpoints stay."""

import pytest

from tests.masking.engine_support import BACKENDS, found


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


@pytest.mark.parametrize(
    ("host", "kind"),
    [
        ("ip-10-0-1-23.ec2.internal", "ec2_private_dns"),
        ("ip-10-0-1-23.us-west-2.compute.internal", "ec2_private_dns"),
        ("ip-172-31-5-200", "ec2_private_dns"),
        ("ec2-54-1-2-3.compute-1.amazonaws.com", "ec2_public_dns"),
        ("ec2-3-250-10-7.eu-west-1.compute.amazonaws.com", "ec2_public_dns"),
        ("aurora.cluster-c9akciq32.us-east-1.rds.amazonaws.com", "rds_endpoint"),
        ("aurora.cluster-ro-c9akciq32abc.us-east-1.rds.amazonaws.com", "rds_endpoint"),
        ("main.c9akciq32abc.eu-central-1.rds.amazonaws.com", "rds_endpoint"),
        ("sessions.abc123.ng.0001.use1.cache.amazonaws.com", "elasticache_endpoint"),
        ("clustercfg.sessions.abc123.euw1.cache.amazonaws.com", "elasticache_endpoint"),
        ("web-prod-1234567890.us-east-1.elb.amazonaws.com", "elb_dns"),
        ("internal-api-prod-987654321.eu-west-1.elb.amazonaws.com", "elb_dns"),
        ("nlb-prod-0123456789abcdef.elb.us-east-1.amazonaws.com", "elb_dns"),
        ("a1b2c3d4e5.execute-api.us-east-1.amazonaws.com", "api_gateway_host"),
        ("d111111abcdef8.cloudfront.net", "cloudfront_domain"),
        ("0123456789ABCDEF0123456789ABCDEF.gr7.us-west-2.eks.amazonaws.com", "eks_endpoint"),
        ("search-logs-abc123xyz.us-east-1.es.amazonaws.com", "aws_hostname"),
        ("b-1.prod.abc123.c2.kafka.us-east-1.amazonaws.com", "aws_hostname"),
        ("abcdefghij.lambda-url.us-east-1.on.aws", "aws_hostname"),
    ],
)
def test_it_masks_the_resource_hostname(backend, host, kind):
    assert found(f"connect to https://{host}:443/path now", backend) == [(host, kind)]


@pytest.mark.parametrize(
    "text",
    [
        "https://s3.amazonaws.com",
        "https://sts.amazonaws.com",
        "https://ec2.us-east-1.amazonaws.com",
        "https://rds.us-east-1.amazonaws.com",
        "https://elasticloadbalancing.us-east-1.amazonaws.com",
        "https://lambda.eu-west-1.amazonaws.com/2015-03-31/functions",
        "https://sqs.us-east-1.amazonaws.com",
        "https://kafka.us-east-1.amazonaws.com",
        "https://console.aws.amazon.com/ec2/home",
        "https://docs.aws.amazon.com/cli/latest/",
        "cloudfront.net is a CDN domain",
    ],
)
def test_it_leaves_public_service_endpoints(backend, text):
    assert found(text, backend) == []
