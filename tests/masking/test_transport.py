"""The upstream transport against real sockets: small asyncio servers in the test's own loop for
scripted answers, a thread server where the loop must not see the server act, uvicorn for the fake
Claude API."""

import asyncio
import gzip
import json
import shutil
import socket
import ssl
import struct
import subprocess
import threading
import time
from contextlib import asynccontextmanager

import httpx
import pytest

from masking import transport as transport_module
from masking.transport import AsyncTransport
from tests.masking.fake_upstream import FakeUpstream, serving
from tests.redis_server import free_port

TIMEOUTS = {"connect": 5.0, "read": 5.0, "write": 5.0, "pool": 5.0}
OK = b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{"ok": 1.0}'


def post(url: str, body: bytes = b'{"q": 1}', timeouts: dict | None = None, **headers: str) -> httpx.Request:
    return httpx.Request("POST", url, content=body, headers=headers, extensions={"timeout": timeouts or TIMEOUTS})


async def read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    """One request's head and body (Content-Length framing); (b"", b"") at EOF."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return b"", b""
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    return head, await reader.readexactly(length)


@asynccontextmanager
async def raw_server(handler, tls: ssl.SSLContext | None = None):
    """An asyncio server in this loop; yields its URL and the list of connections it accepted."""
    connections = []

    async def accept(reader, writer):
        connections.append(writer)
        try:
            await handler(reader, writer)
        finally:
            writer.close()

    server = await asyncio.start_server(accept, "127.0.0.1", 0, ssl=tls)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield f"{'https' if tls else 'http'}://127.0.0.1:{port}", connections


async def answer_each(reader, writer, answer: bytes = OK) -> None:
    while (await read_request(reader))[0]:
        writer.write(answer)


loop_factory = None


@pytest.fixture(autouse=True, params=["asyncio", "uvloop"])
def event_loop_kind(request, monkeypatch):
    """Each test on the standard loop and on uvloop (what uvicorn runs the gateway on)."""
    if request.param == "uvloop":
        monkeypatch.setitem(globals(), "loop_factory", pytest.importorskip("uvloop").new_event_loop)


def run(coroutine):
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        return runner.run(asyncio.wait_for(coroutine, 20))


def test_a_json_answer_comes_back_with_status_headers_and_the_request_as_sent():
    app = FakeUpstream()

    async def main(url):
        transport = AsyncTransport()
        body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "hello"}]}).encode()
        response = await transport.handle_async_request(
            post(url + "/v1/messages?beta=true", body, **{"x-api-key": "k"})
        )
        await response.aread()
        await response.aclose()
        await transport.aclose()
        return response

    with serving(app) as url:
        response = run(main(url))

    assert response.status_code == 200
    assert response.headers["request-id"] == "req_fake_01"
    assert response.json()["content"] == [{"type": "text", "text": "hello"}]
    assert (app.last.path, app.last.query, app.last.headers["x-api-key"]) == ("/v1/messages", "beta=true", "k")
    assert app.last.headers["host"] == url.removeprefix("http://")
    assert app.last.headers["content-length"] == str(len(app.last.body))


def test_a_request_is_written_as_one_http_1_1_message_with_its_headers_in_order():
    heads = []

    async def handler(reader, writer):
        heads.append(await read_request(reader))
        writer.write(OK)

    async def main():
        async with raw_server(handler) as (url, _):
            transport = AsyncTransport()
            request = post(url + "/p?a=b", b"body!", **{"anthropic-version": "2023-06-01", "X-Api-Key": "k"})
            await (await transport.handle_async_request(request)).aread()
            await transport.aclose()

    run(main())

    head, body = heads[0]
    lines = head.decode().split("\r\n")
    assert lines[0] == "POST /p?a=b HTTP/1.1"
    assert lines[1:5] == [
        "Host: " + lines[1].split(" ")[1],
        "anthropic-version: 2023-06-01",
        "X-Api-Key: k",
        "Content-Length: 5",
    ]
    assert body == b"body!"


def test_a_keep_alive_connection_is_reused_for_sequential_requests():
    async def main():
        async with raw_server(answer_each) as (url, connections):
            transport = AsyncTransport()
            for _ in range(3):
                response = await transport.handle_async_request(post(url))
                assert await response.aread() == b'{"ok": 1.0}'
                await response.aclose()
            await transport.aclose()
            return len(connections)

    assert run(main()) == 1


def test_an_answer_with_connection_close_is_not_reused():
    close = OK.replace(b"Content-Length", b"Connection: close\r\nContent-Length")

    async def main():
        async with raw_server(lambda r, w: answer_each(r, w, close)) as (url, connections):
            transport = AsyncTransport()
            for _ in range(2):
                await (await transport.handle_async_request(post(url))).aread()
            await transport.aclose()
            return len(connections)

    assert run(main()) == 2


def test_a_connection_idle_for_longer_than_the_keep_alive_expiry_is_not_reused(monkeypatch):
    monkeypatch.setattr(transport_module, "KEEPALIVE_EXPIRY", 0.05)

    async def main():
        async with raw_server(answer_each) as (url, connections):
            transport = AsyncTransport()
            for pause in (0, 0, 0.1):
                await asyncio.sleep(pause)
                await (await transport.handle_async_request(post(url))).aread()
            await transport.aclose()
            return len(connections)

    assert run(main()) == 2


def test_a_connection_that_sent_more_than_its_answer_is_not_reused():
    async def handler(reader, writer):
        while (await read_request(reader))[0]:
            writer.write(OK)
            await writer.drain()
            await asyncio.sleep(0.02)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\njunk")  # answers nothing asked

    async def main():
        async with raw_server(handler) as (url, connections):
            transport = AsyncTransport()
            response = await transport.handle_async_request(post(url))
            await asyncio.sleep(0.1)
            first = await response.aread()
            second = await (await transport.handle_async_request(post(url))).aread()
            await transport.aclose()
            return first, second, len(connections)

    assert run(main()) == (b'{"ok": 1.0}', b'{"ok": 1.0}', 2)


def test_a_chunked_answer_with_odd_chunk_sizes_split_anywhere_is_reassembled():
    body = bytes(range(256)) * 40
    sizes = [1, 7, 4096, 3, 0x1FF, len(body) - 4096 - 11 - 0x1FF]
    wire = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    start = 0
    for size in sizes:
        wire += b"%X\r\n" % size + body[start : start + size] + b"\r\n"
        start += size
    wire += b"0\r\n\r\n"

    async def handler(reader, writer):
        await read_request(reader)
        for cut in range(0, len(wire), 997):  # cuts land inside sizes, data and CRLFs
            writer.write(wire[cut : cut + 997])
            await writer.drain()
            await asyncio.sleep(0.001)
        await read_request(reader)

    async def main():
        async with raw_server(handler) as (url, _):
            transport = AsyncTransport()
            response = await transport.handle_async_request(post(url))
            data = await response.aread()
            assert response.stream.connection is None  # closed: given back to the pool
            assert sum(len(c) for c in transport.idle.values()) == 1
            await transport.aclose()
            return data

    assert run(main()) == body


def test_a_gzip_answer_is_decoded_by_httpx():
    text = b'{"text": "' + b"compressible " * 1000 + b'"}'
    packed = gzip.compress(text)
    answer = b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(packed) + packed

    async def main():
        async with raw_server(lambda r, w: answer_each(r, w, answer)) as (url, _):
            transport = AsyncTransport()
            data = await (await transport.handle_async_request(post(url))).aread()
            await transport.aclose()
            return data

    assert run(main()) == text


def test_an_answer_without_a_length_is_read_until_the_server_closes():
    async def handler(reader, writer):
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nfirst part, ")
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(b"and the rest")

    async def main():
        async with raw_server(handler) as (url, connections):
            transport = AsyncTransport()
            data = await (await transport.handle_async_request(post(url))).aread()
            await (await transport.handle_async_request(post(url))).aread()
            await transport.aclose()
            return data, len(connections)

    assert run(main()) == (b"first part, and the rest", 2)


def test_a_streamed_answer_reaches_the_caller_chunk_by_chunk_before_the_server_finishes():
    first_seen = asyncio.Event

    async def main():
        seen = first_seen()

        async def handler(reader, writer):
            await read_request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
            writer.write(b"13\r\nevent: one\ndata: 1\n\r\n")
            await writer.drain()
            await asyncio.wait_for(seen.wait(), 5)  # only once the client has the first event
            writer.write(b"13\r\nevent: two\ndata: 2\n\r\n0\r\n\r\n")
            await read_request(reader)

        async with raw_server(handler) as (url, _):
            transport = AsyncTransport()
            response = await transport.handle_async_request(post(url))
            chunks = []
            async for chunk in response.aiter_bytes():
                chunks.append(chunk)
                seen.set()
            await transport.aclose()
            return chunks

    assert run(main()) == [b"event: one\ndata: 1\n", b"event: two\ndata: 2\n"]


def test_closing_an_answer_before_its_end_closes_the_connection_and_the_server_sees_it():
    async def main():
        saw_eof = asyncio.Event()

        async def handler(reader, writer):
            await read_request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nonly the start")
            await writer.drain()
            if await reader.read(1) == b"":
                saw_eof.set()

        async with raw_server(handler) as (url, _):
            transport = AsyncTransport()
            response = await transport.handle_async_request(post(url))
            async for _ in response.aiter_bytes():
                break
            await response.aclose()
            await asyncio.wait_for(saw_eof.wait(), 5)
            assert transport.count == 0 and not any(transport.idle.values())
            await transport.aclose()

    run(main())


def test_a_keep_alive_connection_the_server_closed_while_idle_does_not_fail_the_next_request():
    async def handler(reader, writer):
        await read_request(reader)
        writer.write(OK)  # keep-alive by default, then closed anyway (an idle timeout)

    async def main():
        async with raw_server(handler) as (url, connections):
            transport = AsyncTransport()
            await (await transport.handle_async_request(post(url))).aread()
            await asyncio.sleep(0.05)
            response = await transport.handle_async_request(post(url))
            data = await response.aread()
            await transport.aclose()
            return data, len(connections)

    assert run(main()) == (b'{"ok": 1.0}', 2)


class ThreadServer:
    """A blocking server in a thread: it acts while the client's loop is busy and cannot notice.

    Each connection gets one request answered, then waits for `close_now` and resets (RST)."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.close_now = threading.Event()
        self.requests = self.connections = 0
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self) -> None:
        while True:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self.handle, args=(sock,), daemon=True).start()

    def handle(self, sock: socket.socket) -> None:
        data = b""
        while b'{"q": 1}' not in data:
            data += sock.recv(65536)
        self.requests += 1
        sock.sendall(OK)
        self.close_now.wait(10)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()

    def stop(self) -> None:
        self.close_now.set()
        self.listener.close()


def two_requests_across_a_reset(server) -> bytes:
    """Two requests on one transport; the server resets the connection in between."""

    async def main():
        transport = AsyncTransport()
        await (await transport.handle_async_request(post(server.url))).aread()
        server.close_now.set()
        time.sleep(0.2)  # the loop is blocked: only the socket knows the connection is gone
        data = await (await transport.handle_async_request(post(server.url))).aread()
        await transport.aclose()
        return data

    try:
        return run(main())
    finally:
        server.stop()


def test_a_connection_reset_while_the_loop_was_busy_is_not_reused():
    server = ThreadServer()

    assert two_requests_across_a_reset(server) == b'{"ok": 1.0}'
    assert (server.connections, server.requests) == (2, 2)


def test_a_request_whose_write_fails_on_a_reused_connection_is_sent_again_on_a_new_one(monkeypatch):
    # Without the socket check, a request is written to the reset connection: the write fails, the
    # upstream cannot have received it, and it goes once more on a new connection.
    monkeypatch.setattr(transport_module._Connection, "alive", lambda self, now: not self.closed)
    server = ThreadServer()

    assert two_requests_across_a_reset(server) == b'{"ok": 1.0}'
    assert (server.connections, server.requests) == (2, 2)


def test_a_request_the_server_received_whole_is_not_sent_twice_when_the_connection_then_closes():
    received = []

    async def handler(reader, writer):
        while (request := await read_request(reader))[0]:
            received.append(request)
            if len(received) == 1:
                writer.write(OK)
            else:
                return  # read the second request, then closed without answering

    async def main():
        async with raw_server(handler) as (url, connections):
            transport = AsyncTransport()
            await (await transport.handle_async_request(post(url))).aread()
            with pytest.raises(httpx.RemoteProtocolError):
                await transport.handle_async_request(post(url))
            await transport.aclose()
            return len(connections)

    assert run(main()) == 1
    assert len(received) == 2


def test_a_server_that_does_not_answer_in_time_raises_read_timeout():
    async def handler(reader, writer):
        await read_request(reader)
        await reader.read()

    async def main():
        async with raw_server(handler) as (url, _):
            transport = AsyncTransport()
            started = time.monotonic()
            with pytest.raises(httpx.ReadTimeout):
                await transport.handle_async_request(post(url, timeouts={**TIMEOUTS, "read": 0.2}))
            assert 0.15 < time.monotonic() - started < 2
            assert transport.count == 0
            await transport.aclose()

    run(main())


def test_the_read_timeout_applies_between_chunks_not_to_the_whole_answer():
    async def handler(reader, writer):
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for _ in range(6):  # 0.6 s in all, never 0.3 s without a byte
            await asyncio.sleep(0.1)
            writer.write(b"1\r\nx\r\n")
        await asyncio.sleep(1)  # then a stall
        writer.write(b"0\r\n\r\n")

    async def main():
        async with raw_server(handler) as (url, _):
            transport = AsyncTransport()
            response = await transport.handle_async_request(post(url, timeouts={**TIMEOUTS, "read": 0.3}))
            chunks = []
            with pytest.raises(httpx.ReadTimeout):
                async for chunk in response.aiter_bytes():
                    chunks.append(chunk)
            await response.aclose()
            await transport.aclose()
            return b"".join(chunks)

    assert run(main()) == b"x" * 6


def test_a_port_with_nothing_listening_raises_connect_error():
    async def main():
        transport = AsyncTransport()
        with pytest.raises(httpx.ConnectError):
            await transport.handle_async_request(post(f"http://127.0.0.1:{free_port()}/"))
        assert transport.count == 0

    run(main())


def test_a_tls_handshake_that_never_completes_raises_connect_timeout():
    async def main():
        async with raw_server(lambda r, w: r.read()) as (url, _):  # plain TCP: no ServerHello ever comes
            transport = AsyncTransport()
            with pytest.raises(httpx.ConnectTimeout):
                await transport.handle_async_request(
                    post(url.replace("http", "https"), timeouts={**TIMEOUTS, "connect": 0.2})
                )
            assert transport.count == 0

    run(main())


def test_a_full_pool_raises_pool_timeout():
    async def main():
        async with raw_server(
            lambda r, w: answer_each(r, w, b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nunfinished")
        ) as (
            url,
            _,
        ):
            transport = AsyncTransport(max_connections=1)
            held = await transport.handle_async_request(post(url))
            with pytest.raises(httpx.PoolTimeout):
                await transport.handle_async_request(post(url, timeouts={**TIMEOUTS, "pool": 0.1}))
            await held.aclose()
            await transport.aclose()

    run(main())


def test_a_request_waiting_for_the_pool_gets_the_connection_when_it_is_given_back():
    async def main():
        async with raw_server(answer_each) as (url, connections):
            transport = AsyncTransport(max_connections=1)
            held = await transport.handle_async_request(post(url))
            waiting = asyncio.create_task(transport.handle_async_request(post(url)))
            await asyncio.sleep(0.05)
            assert not waiting.done()
            await held.aread()
            response = await waiting
            data = await response.aread()
            await transport.aclose()
            return data, len(connections)

    assert run(main()) == (b'{"ok": 1.0}', 1)


def test_many_concurrent_requests_share_a_small_pool_and_all_get_their_answer():
    async def handler(reader, writer):
        while (await read_request(reader))[0]:
            await asyncio.sleep(0.01)
            writer.write(OK)

    async def one(transport, url):
        response = await transport.handle_async_request(post(url))
        return await response.aread()

    async def main():
        async with raw_server(handler) as (url, connections):
            transport = AsyncTransport(max_connections=3)
            requests = [asyncio.create_task(one(transport, url)) for _ in range(30)]
            await asyncio.sleep(0)
            quitter = asyncio.create_task(one(transport, url))
            await asyncio.sleep(0)
            quitter.cancel()  # gives up while queued: must not hold up the others
            answers = await asyncio.gather(*requests)
            await transport.aclose()
            return answers, len(connections)

    answers, connections = run(main())
    assert answers == [b'{"ok": 1.0}'] * 30
    assert connections <= 3


def test_a_malformed_answer_raises_remote_protocol_error():
    async def main():
        async with raw_server(lambda r, w: answer_each(r, w, b"HTTP/1.1 2OO NOT OK\r\n\r\n")) as (url, _):
            transport = AsyncTransport()
            with pytest.raises(httpx.RemoteProtocolError):
                await transport.handle_async_request(post(url))
            await transport.aclose()

    run(main())


def test_a_connection_broken_in_the_middle_of_the_body_raises_and_says_nothing_of_the_request():
    async def handler(reader, writer):
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nten bytes.")

    async def main():
        async with raw_server(handler) as (url, _):
            transport = AsyncTransport()
            response = await transport.handle_async_request(post(url, b'{"secret": "AKIAIOSFODNN7EXAMPLE"}'))
            with pytest.raises(httpx.RemoteProtocolError) as raised:
                await response.aread()
            await response.aclose()
            assert "AKIA" not in str(raised.value) and transport.count == 0
            await transport.aclose()

    run(main())


def test_an_answer_the_caller_does_not_read_stops_being_read_at_the_buffer_limit():
    size = 16 * transport_module.BUFFER_LIMIT

    async def handler(reader, writer):
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size)
        writer.write(b"x" * size)
        await writer.drain()
        await read_request(reader)

    async def main():
        async with raw_server(handler) as (url, _):
            transport = AsyncTransport()
            response = await transport.handle_async_request(post(url))
            await asyncio.sleep(0.3)
            connection = response.stream.connection
            assert connection.paused and connection.buffered < 2 * transport_module.BUFFER_LIMIT
            data = await response.aread()
            await transport.aclose()
            return len(data)

    assert run(main()) == size


def test_closing_the_transport_closes_its_idle_connections():
    async def main():
        saw_eof = asyncio.Event()

        async def handler(reader, writer):
            await answer_each(reader, writer)
            saw_eof.set()

        async with raw_server(handler) as (url, _):
            transport = AsyncTransport()
            await (await transport.handle_async_request(post(url))).aread()
            await transport.aclose()
            await asyncio.wait_for(saw_eof.wait(), 5)

    run(main())


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost"]
        + ["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    return cert, key


def test_an_https_upstream_is_reached_over_tls_with_the_given_context(certificate):
    cert, key = certificate
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert, key)
    server_context.set_alpn_protocols(["http/1.1"])
    client_context = ssl.create_default_context(cafile=str(cert))
    client_context.set_alpn_protocols(["http/1.1"])

    async def main():
        async with raw_server(answer_each, tls=server_context) as (url, connections):
            transport = AsyncTransport(ssl_context=client_context)
            datas = [await (await transport.handle_async_request(post(url))).aread() for _ in range(2)]
            alpn = transport.idle[("https", "127.0.0.1", int(url.rsplit(":", 1)[1]))][0].transport.get_extra_info(
                "ssl_object"
            )
            protocol = alpn.selected_alpn_protocol()
            await transport.aclose()
            return datas, len(connections), protocol

    assert run(main()) == ([b'{"ok": 1.0}'] * 2, 1, "http/1.1")


def test_an_https_upstream_with_an_unknown_certificate_raises_connect_error(certificate):
    cert, key = certificate
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert, key)

    async def main():
        async with raw_server(answer_each, tls=server_context) as (url, _):
            transport = AsyncTransport()  # the default context: certifi's roots do not know this one
            with pytest.raises(httpx.ConnectError):
                await transport.handle_async_request(post(url))
            assert transport.count == 0

    run(main())


def wire_request(url: str, body: bytes) -> tuple[tuple[str, str, int], list[bytes]]:
    """`AsyncTransport.exchange`'s target and data for a POST of `body` to the raw server at `url`."""
    head = b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body)
    return ("http", "127.0.0.1", int(url.rsplit(":", 1)[1])), [head, body]


def test_sent_is_called_once_the_request_is_written_and_before_the_answer_arrives():
    seen = []
    answer = asyncio.Event()

    async def handler(reader, writer):
        seen.append(("server has", (await read_request(reader))[1]))
        await answer.wait()
        writer.write(OK)

    async def main():
        async with raw_server(handler) as (url, _):
            transport = AsyncTransport()

            def sent():
                seen.append("sent")
                asyncio.get_running_loop().call_later(0.05, answer.set)

            response = await transport.exchange(*wire_request(url, b"body!"), TIMEOUTS, sent)
            seen.append(("answer", await response.aread()))
            await transport.aclose()

    run(main())
    assert seen == ["sent", ("server has", b"body!"), ("answer", b'{"ok": 1.0}')]


def test_a_server_that_stops_reading_the_request_raises_write_timeout_and_drops_the_connection():
    stop = asyncio.Event()

    async def handler(reader, writer):
        await stop.wait()  # never reads: the request fills the socket buffers, then waits

    async def main():
        async with raw_server(handler) as (url, _):
            transport = AsyncTransport()
            body = b"x" * (64 * 1024 * 1024)  # more than loopback buffers take
            with pytest.raises(httpx.WriteTimeout):
                await transport.handle_async_request(post(url, body, timeouts={**TIMEOUTS, "write": 0.2}))
            count = transport.count
            stop.set()
            await transport.aclose()
            return count

    assert run(main()) == 0


def test_the_proxys_answer_names_headers_in_lower_case_and_joins_repeated_ones():
    answer_bytes = (
        b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 3\r\nVary: Accept\r\nvary: Origin\r\n"
        b"Content-Length: 2\r\n\r\n{}"
    )

    async def handler(reader, writer):
        await read_request(reader)
        writer.write(answer_bytes)

    async def main():
        async with raw_server(handler) as (url, _):
            transport = AsyncTransport()
            answer = await transport.exchange(*wire_request(url, b""), TIMEOUTS)
            result = answer.status_code, answer.headers, await answer.aread(), sum(map(len, transport.idle.values()))
            await transport.aclose()
            return result

    status, headers, body, idle = run(main())
    assert status == 429
    assert headers == {"retry-after": "3", "vary": "Accept, Origin", "content-length": "2"}
    assert body == b"{}"
    assert idle == 1  # read whole: the connection went back to the pool
