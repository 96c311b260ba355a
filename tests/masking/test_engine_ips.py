"""IP addresses: private, public and IPv6, with CIDR suffixes kept; not versions, times or specials."""

import pytest

from tests.masking.engine_support import BACKENDS, found, masked


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("10.0.1.23", "ipv4_private"),
        ("172.16.0.5", "ipv4_private"),
        ("172.31.255.254", "ipv4_private"),
        ("192.168.1.1", "ipv4_private"),
        ("100.64.3.2", "ipv4_private"),
        ("54.239.28.85", "ipv4_public"),
        ("172.32.0.1", "ipv4_public"),
        ("8.8.8.8", "ipv4_public"),
        ("2001:db8:85a3::8a2e:370:7334", "ipv6"),
        ("2600:1f18:7a3:e400:abcd:1234:5678:9abc", "ipv6"),
        ("fe80::1ff:fe23:4567:890a", "ipv6"),
        ("fd00::1", "ipv6"),
        ("::ffff:10.0.0.1", "ipv6"),
    ],
)
def test_it_masks_ip_addresses_by_kind(backend, address, kind):
    assert found(f"host {address} is down", backend) == [(address, kind)]


def test_it_keeps_the_cidr_suffix_outside_the_token(backend):
    assert masked("route 10.0.0.0/16 and 2001:db8::/32 via 172.16.0.1", backend) == (
        "route <ipv4_private>/16 and <ipv6>/32 via <ipv4_private>"
    )


def test_it_masks_addresses_in_flow_logs_and_urls(backend):
    text = "2 123456789012 eni-0a1b2c3d4e5f67890 10.0.1.5 52.94.76.10 443 49152 6 10 840 ACCEPT OK\n"
    text += "curl http://10.0.1.5:8080/health and http://[2001:db8::1]:443/"
    assert masked(text, backend) == (
        "2 <account_id> <network_interface> <ipv4_private> <ipv4_public> 443 49152 6 10 840 ACCEPT OK\n"
        "curl http://<ipv4_private>:8080/health and http://[<ipv6>]:443/"
    )


@pytest.mark.parametrize(
    "text",
    [
        "upgrade to 10.0.1 today",
        "kernel 6.1.84-99.169.amzn2023",
        "version 1.2.3.4 released",
        "v10.0.0.1",
        "at 09:12:44 UTC",
        "2026-11-25 09:12:44.123",
        "listen on 0.0.0.0:80",
        "curl 127.0.0.1 and 127.0.0.53",
        "metadata at 169.254.169.254",
        "netmask 255.255.255.0",
        "OID 1.3.6.1.4.1.2021",
        "999.1.1.1 is not an address",
        "1.2.3.4.5 is not one either",
        "std::vector and a[1::2] and ::1 and ::",
        "mac aa:bb:cc:dd:ee:ff",
        "ratio 3:2:1",
    ],
)
def test_it_leaves_what_only_looks_like_an_address(backend, text):
    assert found(text, backend) == []
