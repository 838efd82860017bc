"""A TCP proxy that goes silent, as a network does when a failover, a route or a NAT entry drops a flow.

``tests.store_proxy`` fails chosen requests and closes connections; this
one relays bytes of any protocol (Redis, the MongoDB wire protocol) as they
come, until ``partition()``:

- every session open at that moment goes silent for good: the proxy keeps
  both of its sockets open and reads what either side sends, but passes
  nothing on, and no FIN or RST ever comes (the kernel still acknowledges
  every byte, so TCP keepalive sees a live peer: only a timeout of the
  client's own can tell);
- new sessions are accepted and left unserved (silent as well, for good),
  until ``heal()``, after which new sessions are served normally while the
  old ones stay silent.

``sessions_served`` counts the sessions relayed to the target, so a test can
see that its client made new connections after the heal (and that it talks
through the proxy at all: a MongoDB client must be handed ``store_url``, with
``directConnection=true``, or it could follow a replica set's advertised
address around the proxy).
"""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass

from tests.tcp_proxy import TcpProxy, close_all

CHUNK = 65536


@dataclass(eq=False)
class _Session:
    client: socket.socket
    server: socket.socket | None  # None: accepted while unserved, never connected on
    silent: bool = False

    def close(self) -> None:
        close_all(sock for sock in (self.client, self.server) if sock is not None)


class SilentProxy(TcpProxy):
    """Relays TCP to ``target_port`` until told to go silent; see the module docstring."""

    def __init__(self, target_port: int, host: str = "127.0.0.1") -> None:
        super().__init__(target_port, host, backlog=128)
        self.sessions: list[_Session] = []
        self.serving = True
        self.sessions_served = 0
        self.start()

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def store_url(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/?directConnection=true"

    def partition(self) -> None:
        """Every open session silent for good; new ones accepted and left unserved until ``heal``."""
        with self.lock:
            self.serving = False
            for session in self.sessions:
                session.silent = True

    def heal(self) -> None:
        """Serve new sessions again; the silent ones stay silent."""
        with self.lock:
            self.serving = True

    def close(self) -> None:
        self.stop_listening()
        with self.lock:
            sessions, self.sessions = self.sessions, []
        for session in sessions:
            session.close()

    # -- relaying ------------------------------------------------------------------

    def accepted(self, client: socket.socket) -> None:
        with self.lock:
            serving = self.serving
        server = None
        if serving:
            server = self.connect_target()
            if server is None:
                client.close()
                return
        session = _Session(client, server, silent=not serving)
        with self.lock:
            self.sessions.append(session)
            self.sessions_served += serving
        threading.Thread(target=self._relay, args=(session, client, server), daemon=True).start()
        if server is not None:
            threading.Thread(target=self._relay, args=(session, server, client), daemon=True).start()

    def _relay(self, session: _Session, source: socket.socket, sink: socket.socket | None) -> None:
        while True:
            try:
                data = source.recv(CHUNK)
            except OSError:
                data = b""
            if not data:
                break
            if session.silent or sink is None:
                continue  # read and dropped: the other side never hears of it
            try:
                sink.sendall(data)
            except OSError:
                break
        if not session.silent:  # a close passes through a live session, never a silent one
            session.close()
