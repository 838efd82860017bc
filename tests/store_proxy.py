"""A TCP proxy between the worker and the store that fails chosen round trips.

The worker connects to the proxy as to any MongoDB server; the proxy relays
the wire protocol both ways and reads each request's command (``insert``,
``update``, ``find``... and its collection). A test arms a ``Fault`` for the
next request that matches, and the proxy then does to it what a network or a
replica set does to a real client:

- ``drop_request``: the connection dies before the request reaches the store;
- ``drop_reply``: the store executes the request, the connection dies before
  the reply comes back (the client cannot know the write happened);
- ``rolled_back``: the request never reaches the store, and the client gets
  the reply of a write acknowledged by a primary whose write concern failed
  (``writeConcernError``), as after a stepdown that later rolls it back;
- ``transient_error``: the request never reaches the store, and each of its
  writes is refused with a transient error code (11602, interrupted by a
  replica set state change), as MongoDB reports them inside a bulk write.

``cut()`` closes every connection at once. Nothing here is mocked: the
worker's real pymongo speaks to a real server through real sockets.
"""

from __future__ import annotations

import socket
import struct
import threading
from dataclasses import dataclass, field

import bson

from tests.tcp_proxy import TcpProxy, close_all

OP_MSG = 2013
HEADER = struct.Struct("<iiii")  # messageLength, requestID, responseTo, opCode
MODES = ("drop_request", "drop_reply", "rolled_back", "transient_error")
WRITE_COMMANDS = ("insert", "update", "delete")


@dataclass
class Fault:
    """What to do to the next request for ``command`` on ``collection``."""

    command: str
    collection: str
    mode: str
    times: int = 1
    hits: int = 0

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"unknown fault mode {self.mode!r}")
        if self.mode in ("rolled_back", "transient_error") and self.command not in WRITE_COMMANDS:
            raise ValueError(f"{self.mode} fits write commands only")


@dataclass
class Request:
    """One OP_MSG request as the proxy reads it."""

    request_id: int
    command: str
    collection: str
    writes: int  # documents of an insert, statements of an update or delete


def read_message(sock: socket.socket) -> bytes | None:
    header = _read_exactly(sock, HEADER.size)
    if header is None:
        return None
    length = HEADER.unpack(header)[0]
    body = _read_exactly(sock, length - HEADER.size)
    return None if body is None else header + body


def _read_exactly(sock: socket.socket, size: int) -> bytes | None:
    chunks, left = [], size
    while left:
        try:
            chunk = sock.recv(left)
        except OSError:
            return None
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def parse_request(message: bytes) -> Request | None:
    """The command of an OP_MSG request, or None for anything else."""
    _length, request_id, _response_to, opcode = HEADER.unpack_from(message)
    if opcode != OP_MSG:
        return None
    position = HEADER.size + 4  # flagBits
    command, collection, writes = "", "", 0
    while position < len(message):
        kind = message[position]
        position += 1
        if kind == 0:
            size = struct.unpack_from("<i", message, position)[0]
            document = bson.decode(message[position:position + size])
            command = next(iter(document), "")
            value = document.get(command)
            collection = value if isinstance(value, str) else ""
            for name in ("documents", "updates", "deletes"):
                writes += len(document.get(name, []))
            position += size
        elif kind == 1:
            size = struct.unpack_from("<i", message, position)[0]
            end = position + size
            cursor = message.index(b"\x00", position + 4) + 1
            while cursor < end:
                doc_size = struct.unpack_from("<i", message, cursor)[0]
                writes += 1
                cursor += doc_size
            position = end
        else:  # a flag we do not expect (checksums are off)
            break
    return Request(request_id, command, collection, writes)


def reply(request: Request, document: dict) -> bytes:
    body = struct.pack("<i", 0) + b"\x00" + bson.encode(document)
    return HEADER.pack(HEADER.size + len(body), 0, request.request_id, OP_MSG) + body


def synthetic_reply(request: Request, mode: str) -> bytes:
    if mode == "rolled_back":
        document = {
            "n": request.writes,
            "writeConcernError": {
                "code": 64,
                "codeName": "WriteConcernFailed",
                "errmsg": "waiting for replication timed out",
                "errInfo": {"wtimeout": True},
            },
            "ok": 1.0,
        }
        if request.command == "update":
            document["nModified"] = request.writes
    else:
        document = {
            "n": 0,
            "writeErrors": [
                {"index": index, "code": 11602, "codeName": "InterruptedDueToReplStateChange",
                 "errmsg": "operation was interrupted"}
                for index in range(request.writes)
            ],
            "ok": 1.0,
        }
        if request.command == "update":
            document["nModified"] = 0
    return reply(request, document)


@dataclass
class _Link:
    client: socket.socket
    server: socket.socket
    doomed_replies: set[int] = field(default_factory=set)
    closed: bool = False

    def close(self) -> None:
        self.closed = True
        close_all((self.client, self.server))


class StoreProxy(TcpProxy):
    """Relays the MongoDB wire protocol to ``target_port``; fails what it is told to."""

    def __init__(self, target_port: int, host: str = "127.0.0.1") -> None:
        super().__init__(target_port, host)
        self.links: list[_Link] = []
        self.faults: list[Fault] = []
        self.fired: list[tuple[str, str, str]] = []  # (command, collection, mode) of each fault
        self.start()

    @property
    def url(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/"

    def arm(self, command: str, collection: str, mode: str, times: int = 1) -> Fault:
        fault = Fault(command, collection, mode, times)
        with self.lock:
            self.faults.append(fault)
        return fault

    def cut(self) -> None:
        """Close every connection, as a network partition or a restart does."""
        with self.lock:
            links, self.links = self.links, []
        for link in links:
            link.close()

    def close(self) -> None:
        self.stop_listening()
        self.cut()

    # -- relaying ------------------------------------------------------------------

    def accepted(self, client: socket.socket) -> None:
        server = self.connect_target()
        if server is None:
            client.close()
            return
        link = _Link(client, server)
        with self.lock:
            self.links.append(link)
        threading.Thread(target=self._requests, args=(link,), daemon=True).start()
        threading.Thread(target=self._replies, args=(link,), daemon=True).start()

    def _take_fault(self, request: Request) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.command == request.command and fault.collection == request.collection:
                    fault.hits += 1
                    if fault.hits >= fault.times:
                        self.faults.remove(fault)
                    self.fired.append((request.command, request.collection, fault.mode))
                    return fault
        return None

    def _requests(self, link: _Link) -> None:
        while not link.closed:
            message = read_message(link.client)
            if message is None:
                break
            request = parse_request(message)
            fault = self._take_fault(request) if request else None
            try:
                if fault is None:
                    link.server.sendall(message)
                elif fault.mode == "drop_request":
                    break
                elif fault.mode == "drop_reply":
                    link.doomed_replies.add(request.request_id)
                    link.server.sendall(message)
                else:
                    link.client.sendall(synthetic_reply(request, fault.mode))
            except OSError:
                break
        link.close()

    def _replies(self, link: _Link) -> None:
        while not link.closed:
            message = read_message(link.server)
            if message is None:
                break
            response_to = HEADER.unpack_from(message)[2]
            if response_to in link.doomed_replies:
                break
            try:
                link.client.sendall(message)
            except OSError:
                break
        link.close()
