"""Realistic prompts for the proxy tests: AWS CLI output with identifiers, quotes and non-ASCII text."""

ORIGINALS = [
    "i-0a1b2c3d4e5f67890",
    "i-0123456789abcdef0",
    "vpc-0f1e2d3c4b5a69788",
    "vpc-12345678",
    "arn:aws:iam::123456789012:role/WebServerRole",
    "arn:aws:iam::123456789012:role/DeployRole",
    "AKIAIOSFODNN7EXAMPLE",
    "123456789012",
]

PROMPT = """I ran `aws ec2 describe-instances` and got:
{"Reservations": [{"Instances": [{"InstanceId": "i-0a1b2c3d4e5f67890", "VpcId": "vpc-0f1e2d3c4b5a69788",
  "IamInstanceProfile": {"Arn": "arn:aws:iam::123456789012:role/WebServerRole"}, "State": {"Name": "running"}}]}]}
and `aws sts get-caller-identity`:
{"UserId": "AROAEXAMPLEID:deploy", "Account": "123456789012", "Arn": "arn:aws:iam::123456789012:role/DeployRole"}
The access key AKIAIOSFODNN7EXAMPLE was used. Instance i-0123456789abcdef0 sits in vpc-12345678.
Ünïcödé: 日本語のテキスト ✓ 🚀 — why can't i-0a1b2c3d4e5f67890 reach the internet?\tTab, "quotes" and \\ backslash."""

SHORT_PROMPT = "Why is i-0a1b2c3d4e5f67890 (in vpc-12345678) slow? 日本 🚀 i-0a1b2c3d4e5f67890 AKIAIOSFODNN7EXAMPLE."
