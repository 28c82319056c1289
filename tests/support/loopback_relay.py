"""An HTTP forward proxy that lets Lambda containers call the local stack's servers on this machine's 127.0.0.1.

The local stack listens on 127.0.0.1 only (moto, the Auth0 emulator), and the functions insist on it: a plain-http
issuer or endpoint is accepted on loopback only (`aegis_auth.oidc`). A container started by `sam local` has a
loopback of its own, and SAM 1.170 leaves it on Docker's bridge even with `--docker-network host`
(samcli/local/docker/container.py connects the container to the named network unless it is "host", and never sets a
network mode). So the containers get this relay as their HTTP proxy: a request for `http://127.0.0.1:<port>/...`
made inside a container reaches the relay on the bridge's gateway address, which forwards it to the same URL on the
host. URLs, issuer and token claims stay exactly what the stack serves.

Only the ports given are forwarded, and only to 127.0.0.1; anything else is refused with 403, CONNECT with 405.
S3 Control puts the account id in front of the endpoint's host (`123456789012.127.0.0.1`); as the local stack's
`S3ControlEndpointFix` does for clients in its own process, the relay drops that label (in the Host header too).
Each request is sent upstream with `Connection: close` and relayed byte for byte until the server closes, so the
relay never parses a body or a response.
"""

from __future__ import annotations

import contextlib
import re
import socket
import socketserver
import threading
from collections.abc import Iterable
from urllib.parse import urlsplit

MAX_HEAD_BYTES = 64 * 1024
# 127.0.0.1 or localhost, with S3 Control's account label in front or not.
LOOPBACK_HOST = re.compile(r"^(?:\d{12}\.)?(127\.0\.0\.1|localhost)$")
# Hop-by-hop headers of the client-to-proxy leg; the upstream leg gets `Connection: close` instead.
DROPPED_HEADERS = frozenset({b"connection", b"proxy-connection", b"keep-alive", b"proxy-authorization"})


class LoopbackRelay:
    """Serves on `listen_host` (a free port) until `close()`, forwarding to 127.0.0.1 on `ports` only."""

    def __init__(self, listen_host: str, ports: Iterable[int]) -> None:
        allowed = frozenset(ports)

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                _relay(self.request, allowed)

        self.host = listen_host
        self.server = socketserver.ThreadingTCPServer((listen_host, 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, name="loopback-relay", daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _answer(client: socket.socket, status: str) -> None:
    client.sendall(f"HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode("ascii"))


def _read_head(client: socket.socket) -> tuple[bytes, bytes] | None:
    """The request head (without its blank line) and whatever of the body arrived with it."""
    received = b""
    while b"\r\n\r\n" not in received:
        if len(received) > MAX_HEAD_BYTES:
            return None
        chunk = client.recv(65536)
        if not chunk:
            return None
        received += chunk
    head, _, rest = received.partition(b"\r\n\r\n")
    return head, rest


def _relay(client: socket.socket, allowed: frozenset[int]) -> None:
    read = _read_head(client)
    if read is None:
        return
    head, body_start = read
    request_line, *header_lines = head.split(b"\r\n")
    try:
        method, target, version = request_line.decode("ascii").split(" ")
    except (UnicodeDecodeError, ValueError):
        _answer(client, "400 Bad Request")
        return
    if method == "CONNECT":
        _answer(client, "405 Method Not Allowed")
        return
    url = urlsplit(target)
    loopback = LOOPBACK_HOST.match(url.hostname or "")
    if url.scheme != "http" or loopback is None or url.port not in allowed:
        _answer(client, "403 Forbidden")
        return
    path = (url.path or "/") + (f"?{url.query}" if url.query else "")
    headers = [
        f"Host: {loopback.group(1)}:{url.port}".encode("ascii") if name == b"host" else line
        for line in header_lines
        if (name := line.split(b":", 1)[0].strip().lower()) not in DROPPED_HEADERS
    ]
    upstream_head = b"\r\n".join(
        [f"{method} {path} {version}".encode("ascii"), *headers, b"Connection: close", b"", b""]
    )
    try:
        upstream = socket.create_connection(("127.0.0.1", url.port), timeout=60)
    except OSError:
        _answer(client, "502 Bad Gateway")
        return
    with upstream:
        upstream.sendall(upstream_head + body_start)
        # The rest of the body flows client -> server on a thread; the response flows back here until the server,
        # told `Connection: close`, closes.
        threading.Thread(target=_pipe, args=(client, upstream), daemon=True).start()
        _pipe(upstream, client)


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    try:
        while chunk := source.recv(65536):
            sink.sendall(chunk)
    except OSError:
        return
    finally:
        # The other side may be gone already; there is nothing left to tell it.
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)
