"""The informer's requests time out on a connection gone silent, on the embedded API server.

A watch or list whose TCP connection is dropped without a word (a NAT or load balancer
forgetting it, the server's node gone) gets no end and no error: without a client-side timeout
the informer would wait on it for ever, its cache behind. Between the informer and the server
here is a relay that can freeze the connections open at a moment: they stay open and pass
nothing either way, as a half-open connection looks to the client.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import socket
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlparse

import pytest
import urllib3
from kubernetes import client

from autoscaler.apiserver.testing import RunningAPIServer
from autoscaler.kube.informer import PODS, Informer, timed_out
from autoscaler.kube.retry import Backoff
from tests.kube.kit import wait_for
from tests.kube.test_pod_endpoints import pod

NS = "default"
FAST = Backoff(base_s=0.01, cap_s=0.05, attempts=1_000_000)
INFORMER_LOG = "autoscaler.kube.informer"


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


@pytest.fixture
def relay(server: RunningAPIServer) -> Iterator[Relay]:
    url = urlparse(server.url)
    r = Relay((url.hostname or "127.0.0.1", url.port or 443))
    yield r
    r.close()


@pytest.fixture
def relayed(server: RunningAPIServer, relay: Relay) -> Iterator[Any]:
    """An ``ApiClient`` of the server that connects through the relay."""
    configuration = copy.deepcopy(server.api_client().configuration)
    configuration.host = f"https://127.0.0.1:{relay.port}"
    # the kubeconfig's refresh hook would set the server's own address again at each request
    configuration.refresh_api_key_hook = None
    api = client.ApiClient(configuration)
    yield api
    api.close()


@pytest.fixture
def core(server: RunningAPIServer) -> client.CoreV1Api:
    return client.CoreV1Api(server.api_client())


def informer_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == INFORMER_LOG]


def test_a_watch_gone_silent_times_out_and_the_cache_follows_again(
    relay: Relay, relayed: Any, core: client.CoreV1Api, caplog: pytest.LogCaptureFixture
) -> None:
    """The watch's connection freezes: the read timeout (the server's end of the watch plus a
    grace) ends it, and the next watch, on a new connection, brings the Pod created since."""
    caplog.set_level(logging.INFO, logger=INFORMER_LOG)
    informer = Informer(
        relayed, PODS, namespace=NS, watch_timeout_s=2, read_grace_s=1, backoff=FAST
    )
    informer.start()
    try:
        assert informer.wait_synced(10.0)
        pod(core, "before", "r1")
        wait_for(lambda: informer.get(NS, "before"), 10.0, "the watch to deliver a pod")
        opened = relay.accepted
        relay.freeze()
        pod(core, "after", "r1")
        wait_for(lambda: informer.get(NS, "after"), 15.0, "the pod created while frozen")
        assert relay.accepted > opened  # it came on a new connection
        assert informer.relists == 1  # watched again from the last event, not listed again
        # the silent watch is a warning at once: the cache was behind while it lasted
        assert all(
            r.levelno == logging.WARNING and "no answer in time" in r.getMessage()
            for r in informer_records(caplog)
        )
    finally:
        informer.stop()


def test_a_watch_the_server_ends_is_not_cut_by_the_read_timeout(
    server: RunningAPIServer, caplog: pytest.LogCaptureFixture
) -> None:
    """A live watch with no events: the server ends it at ``watch_timeout_s``, within the read
    timeout, so the watches that follow go on without a failure."""
    caplog.set_level(logging.INFO, logger=INFORMER_LOG)
    informer = Informer(
        server.api_client(), PODS, namespace=NS, watch_timeout_s=2, read_grace_s=5, backoff=FAST
    )
    informer.start()
    try:
        assert informer.wait_synced(10.0)
        first = informer.watches
        wait_for(lambda: informer.watches >= first + 2, 10.0, "the server to end two watches")
        assert informer.is_current() and informer.relists == 1
        assert informer_records(caplog) == []
    finally:
        informer.stop()


def test_stop_returns_while_a_list_hangs(relay: Relay, relayed: Any) -> None:
    """The first list goes into a frozen connection, and the HTTP library's retries of it into
    new frozen ones (each waiting out the connect timeout in its TLS handshake): the list times
    out, so the informer's thread ends within stop()'s join."""
    client.CoreV1Api(relayed).list_namespace()  # a pooled connection, which the list reuses
    relay.freeze(later=True)
    informer = Informer(relayed, PODS, namespace=NS, list_timeout_s=0.5, connect_timeout_s=0.2)
    informer.start()
    try:
        wait_for(lambda: relay.dropped > 0, 10.0, "the list's request into the frozen relay")
    finally:
        informer.stop(timeout_s=2.0)
    thread = informer._thread
    assert thread is not None
    wait_for(lambda: not thread.is_alive(), 1.0, "the informer's thread to end")
    assert not informer.has_synced()


def test_a_refused_connection_is_no_timeout(relay: Relay) -> None:
    """A closed port or an unknown name fails at once: logged as any failure, not as a
    connection gone silent (the HTTP library files both under connect timeouts)."""
    closed = socket.create_server(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    http = urllib3.PoolManager(retries=urllib3.Retry(0, raise_on_redirect=False))
    with pytest.raises(urllib3.exceptions.MaxRetryError) as refused:
        http.request("GET", f"http://127.0.0.1:{port}/", timeout=2.0)
    assert not timed_out(refused.value)
    relay.freeze(later=True)  # accepted, then silent: a read timeout
    with pytest.raises(urllib3.exceptions.MaxRetryError) as silent:
        http.request("GET", f"http://127.0.0.1:{relay.port}/", timeout=0.3)
    assert timed_out(silent.value)
