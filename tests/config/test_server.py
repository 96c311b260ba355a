"""config/server.py: the gateway's workers each listen on a socket of their own."""

import socket
from collections import Counter
from pathlib import Path

import httpx
import pytest

from config.server import listening_socket
from tests.live import ESTABLISHED, LISTENING, gateway_process, socket_inodes

pytestmark = pytest.mark.django_db(transaction=True)


def sockets_by_process(port: int, state: str) -> Counter:
    """Sockets on local `port` in `state`, counted by the process holding them (from /proc)."""
    inodes = set(socket_inodes(port, state))
    holders = Counter()
    for fd in Path("/proc").glob("[0-9]*/fd/*"):
        try:
            target = fd.readlink().name
        except OSError:  # a process or descriptor gone meanwhile
            continue
        if target.startswith("socket:[") and target[8:-1] in inodes:
            holders[fd.parent.parent.name] += 1
    return holders


def test_each_worker_listens_on_a_socket_of_its_own(tmp_path):
    # `uvicorn --workers 2` listens on one socket, made by its parent process and shared.
    with gateway_process(tmp_path, workers=2) as url:
        listening = sockets_by_process(httpx.URL(url).port, LISTENING)

    assert sorted(listening.values()) == [1, 1]


def test_connections_opened_together_are_spread_over_both_workers(tmp_path):
    # Under `uvicorn --workers 2` and bench/proxy.py's load, the busier worker held 31 to 50 of 50
    # connections (idle, as here, it spreads them too: the test above tells the two apart).
    with gateway_process(tmp_path, workers=2) as url:
        port = httpx.URL(url).port
        connections = [socket.create_connection(("127.0.0.1", port)) for _ in range(40)]
        try:
            for connection in connections:  # answered: accepted by the worker that holds it
                connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                assert connection.recv(65536).startswith(b"HTTP/1.1 200 ")
            held = sockets_by_process(port, ESTABLISHED)
        finally:
            for connection in connections:
                connection.close()

    assert sum(held.values()) == 40
    assert len(held) == 2
    assert min(held.values()) >= 8  # a fair coin, 40 times: fewer than 8 on one side about once in 100,000


def test_a_second_worker_socket_binds_the_port_the_first_listens_on():
    first = listening_socket("127.0.0.1", 0)
    first.listen()
    second = listening_socket("127.0.0.1", first.getsockname()[1])
    try:
        second.listen()
        assert second.getsockname() == first.getsockname()
        assert second.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) == 1
    finally:
        first.close()
        second.close()
