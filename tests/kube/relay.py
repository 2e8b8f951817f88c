"""A TCP relay in front of the embedded API server that can go silent: what a dropped
connection looks like to a client (open, nothing passes either way). Its fixtures (``relay``,
``relayed``) are in ``conftest.py``."""

from __future__ import annotations

import contextlib
import socket
import threading


class Relay:
    """A TCP relay from 127.0.0.1 to ``target``, both ways. ``freeze()`` stops every connection
    open at that moment forwarding, both ways, and keeps it open; connections opened later
    forward normally, unless ``freeze(later=True)`` froze them from the start too."""

    def __init__(self, target: tuple[str, int]) -> None:
        self._target = target
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)  # the accept loop sees close() within this
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._links: list[_Link] = []
        self._freeze_later = False
        self._closed = threading.Event()
        self.accepted = 0  # connections opened by clients
        self.dropped = 0  # bytes from clients that a frozen connection kept back
        self._threads = [threading.Thread(target=self._accept, name="relay", daemon=True)]
        self._threads[0].start()

    def freeze(self, *, later: bool = False) -> None:
        with self._lock:
            for link in self._links:
                link.frozen = True
            self._freeze_later = later

    def close(self) -> None:
        self._closed.set()
        with self._lock:
            links, self._links = self._links, []
        for link in links:
            link.close()
        for t in self._threads:
            t.join(5.0)
        self._listener.close()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(None)
            try:
                upstream = socket.create_connection(self._target)
            except OSError:
                conn.close()
                continue
            link = _Link(self, conn, upstream)
            with self._lock:
                if self._closed.is_set():
                    link.close()
                    return
                link.frozen = self._freeze_later
                self._links.append(link)
                self.accepted += 1
                for src, dst in ((conn, upstream), (upstream, conn)):
                    t = threading.Thread(target=link.pump, args=(src, dst), daemon=True)
                    self._threads.append(t)
                    t.start()

    def _count_dropped(self, n: int) -> None:
        with self._lock:
            self.dropped += n


class _Link:
    """A client's connection and the relay's to the server for it."""

    def __init__(self, relay: Relay, conn: socket.socket, upstream: socket.socket) -> None:
        self._relay = relay
        self.conn, self.upstream = conn, upstream
        self.frozen = False

    def pump(self, src: socket.socket, dst: socket.socket) -> None:
        while True:
            try:
                data = src.recv(65536)
            except OSError:
                data = b""
            if not data:
                # the client gave up, or the server closed a link that forwards: both sides go;
                # a frozen link stays open to its client whatever the server does
                if src is self.conn or not self.frozen:
                    self.close()
                return
            if self.frozen:
                if src is self.conn:
                    self._relay._count_dropped(len(data))
                continue
            try:
                dst.sendall(data)
            except OSError:
                self.close()
                return

    def close(self) -> None:
        for s in (self.conn, self.upstream):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                s.close()
