"""What the test suite's TCP proxies share: a listener on a free port, a connection to the target, closing a pair.

``tests.store_proxy`` (faults of chosen MongoDB requests) and
``tests.silent_proxy`` (sessions that go silent) each say what becomes of a
connection they accept (``accepted``); this is the rest.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterable


def close_all(sockets: Iterable[socket.socket]) -> None:
    """Shut down and close each socket, whatever state it is in."""
    for sock in sockets:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()


class TcpProxy:
    """Listens on a free port of ``host`` for connections it relays to ``target_port``."""

    def __init__(self, target_port: int, host: str = "127.0.0.1", backlog: int = 64) -> None:
        self.target = (host, target_port)
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind((host, 0))
        self.listener.listen(backlog)
        self.port = self.listener.getsockname()[1]
        self.lock = threading.Lock()
        self.running = True

    def start(self) -> None:
        """Accept connections from now on (called once the subclass has set itself up)."""
        threading.Thread(target=self._accept, name=f"{type(self).__name__}-{self.port}", daemon=True).start()

    def connect_target(self) -> socket.socket | None:
        """A new connection to the target, or None if it cannot be made."""
        try:
            server = socket.create_connection(self.target, timeout=5)
        except OSError:
            return None
        server.settimeout(None)
        return server

    def stop_listening(self) -> None:
        self.running = False
        self.listener.close()

    def accepted(self, client: socket.socket) -> None:
        raise NotImplementedError

    def _accept(self) -> None:
        while self.running:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            self.accepted(client)
