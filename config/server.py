"""The gateway's web server: uvicorn, each worker on a listening socket of its own.

    python -m config.server [--host 127.0.0.1] [--port 8000] [--workers 2]

`uvicorn --workers N` binds one socket in its parent process and every worker accepts from it, and
a worker that wakes accepts every connection waiting (uvloop drains the queue). Keep-alive clients
that connect together, a load balancer's pool or a benchmark's 50 connections, so crowd on one
worker: on 2 workers under load, the busier one held 31-50 of 50 connections (44 or more in twelve
starts of twenty), its core doing most of the work while the other's waited. Here each worker binds
its own socket with SO_REUSEPORT, and the kernel spreads new connections over the workers by a hash
of their addresses (Linux; nginx's `reuseport` does the same). uvicorn's own supervisor still
starts, health-checks and restarts the workers.

A worker that dies takes the connections still waiting in its socket's queue with it (they are
reset); the others serve on, and its replacement binds a new socket. SO_REUSEPORT lets another
process of the same user bind the port too: two gateways started on one port by mistake share it
instead of the second failing. Where the option does not exist, the workers share one socket as
under `uvicorn --workers`.
"""

import argparse
import socket

import uvicorn
from uvicorn.supervisors import multiprocess

APP = "config.asgi:application"


def listening_socket(host: str, port: int) -> socket.socket:
    """A socket bound to (host, port) with SO_REUSEPORT, for one worker (uvicorn calls listen())."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


class _Worker(multiprocess.Process):
    """A uvicorn worker that serves a socket it binds itself rather than the parent's."""

    def target(self, sockets=None) -> None:
        super().target([listening_socket(self.config.host, self.config.port)])


def serve(config: uvicorn.Config) -> None:
    if config.workers <= 1:
        uvicorn.Server(config).run()
        return
    if hasattr(socket, "SO_REUSEPORT"):
        # uvicorn's supervisor makes its workers from this module-level name: ours bind their own socket.
        multiprocess.Process = _Worker
        sockets = []
    else:
        sockets = [config.bind_socket()]
    multiprocess.Multiprocess(config, sockets=sockets).run()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m config.server", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=1, help="on 2 cores, 2 (docs/proxy.md)")
    parser.add_argument("--log-level", default="info")
    parser.add_argument("--no-access-log", action="store_true")
    parser.add_argument(
        "--forwarded-allow-ips", help="proxies trusted for X-Forwarded-For (uvicorn's; env FORWARDED_ALLOW_IPS)"
    )
    args = parser.parse_args(argv)
    config = uvicorn.Config(
        APP,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level=args.log_level,
        access_log=not args.no_access_log,
        forwarded_allow_ips=args.forwarded_allow_ips,
    )
    serve(config)


if __name__ == "__main__":
    main()
