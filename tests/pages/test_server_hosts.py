"""The served app refuses a websocket, and a request for a map's items, whose Host is not this machine's name (DNS
rebinding), per .streamlit/config.toml's ``server.allowedHosts``: a real ``streamlit run`` on 127.0.0.1."""

from __future__ import annotations

import base64
import os
import socket
from urllib.parse import urlparse

import pytest

from harness.serving import serving

pytestmark = pytest.mark.slow


def upgrade(port: int, host: str) -> int:
    """The HTTP status of a websocket upgrade to the app's stream with ``Host: host`` and a matching Origin."""
    key = base64.b64encode(os.urandom(16)).decode()
    request = (f"GET /_stcore/stream HTTP/1.1\r\nHost: {host}\r\nOrigin: http://{host}\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
               "Sec-WebSocket-Protocol: streamlit\r\n\r\n")  # fmt: skip
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(request.encode())
        status_line = s.recv(4096).split(b"\r\n", 1)[0].decode()
    return int(status_line.split()[1])


def test_a_websocket_from_a_rebinding_domain_is_refused_and_this_machines_names_are_accepted(tmp_path):
    with serving(tmp_path) as url:
        port = urlparse(url).port
        assert upgrade(port, f"127.0.0.1:{port}") == 101
        assert upgrade(port, f"localhost:{port}") == 101
        assert upgrade(port, f"evil.example:{port}") != 101
        assert upgrade(port, "evil.example") != 101
        for host, status in ((f"127.0.0.1:{port}", 404), (f"evil.example:{port}", 403)):  # no map is offered yet
            assert items_status(port, host) == status


def items_status(port: int, host: str) -> int:
    """The HTTP status of a request for a map's items (ui/served.py) with ``Host: host``."""
    request = f"GET /api/items?map=m&rows=0 HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(request.encode())
        return int(s.recv(4096).split(b"\r\n", 1)[0].split()[1])
