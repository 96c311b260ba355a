import pytest

from masking import upstream


def test_the_request_head_is_the_request_line_host_headers_and_length():
    key, start = upstream._target("https://api.example.test/v1/messages?beta=true")
    head = upstream._head(start, {"anthropic-version": "2023-06-01", "x-api-key": "k"}, 42)

    assert key == ("https", "api.example.test", 443)
    assert head == (
        b"POST /v1/messages?beta=true HTTP/1.1\r\nHost: api.example.test\r\n"
        b"anthropic-version: 2023-06-01\r\nx-api-key: k\r\nContent-Length: 42\r\n\r\n"
    )


def test_a_port_that_is_not_the_schemes_default_is_named_in_the_host_header():
    key, start = upstream._target("http://127.0.0.1:8123/v1/messages")

    assert key == ("http", "127.0.0.1", 8123)
    assert start == b"POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1:8123\r\n"


@pytest.mark.parametrize("value", ["sk-ant\r\nx-injected: 1", "sk-ant\nx", "sk-ant\rx"])
def test_a_header_value_with_a_line_break_is_never_written(value):
    _, start = upstream._target("https://api.example.test/v1/messages")

    with pytest.raises(upstream.UpstreamError) as raised:
        upstream._head(start, {"x-api-key": value}, 0)

    assert raised.value.status == 502 and "sk-ant" not in raised.value.message


def test_a_header_value_that_is_not_latin_1_is_refused_with_a_clear_error():
    _, start = upstream._target("https://api.example.test/v1/messages")

    with pytest.raises(upstream.UpstreamError) as raised:
        upstream._head(start, {"x-api-key": "sk-ant-\u2603"}, 0)

    assert raised.value.status == 502 and "sk-ant" not in raised.value.message
