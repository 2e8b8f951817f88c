"""The informer's requests time out on a connection gone silent, on the embedded API server.

A watch or list whose TCP connection is dropped without a word (a NAT or load balancer
forgetting it, the server's node gone) gets no end and no error: without a client-side timeout
the informer would wait on it for ever, its cache behind. Between the informer and the server
here is a relay (``tests/kube/relay.py``) that can freeze the connections open at a moment: they stay open and pass
nothing either way, as a half-open connection looks to the client.
"""

from __future__ import annotations

import logging
import socket
from typing import Any

import pytest
import urllib3
from kubernetes import client

from autoscaler.apiserver.testing import RunningAPIServer
from autoscaler.kube.informer import PODS, Informer, timed_out
from autoscaler.kube.retry import Backoff
from tests.kube.kit import wait_for
from tests.kube.relay import Relay
from tests.kube.test_pod_endpoints import pod

NS = "default"
FAST = Backoff(base_s=0.01, cap_s=0.05, attempts=1_000_000)
INFORMER_LOG = "autoscaler.kube.informer"


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
