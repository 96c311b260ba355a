"""A free TCP port on the loopback interface, for the servers tests and benchmarks start.

Its own module: `tests.redis_server` starts the session's redis-server when imported, and a process
that only needs a port (the fake upstream, which the benchmarks run on its own) must not start one."""

import socket


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
