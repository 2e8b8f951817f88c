"""One-machine mode stopped with undelivered events and started again on the same data
directory: the Broker and Trigger come back from the API, and every event accepted before the
stop reaches its subscriber exactly once (it answered 2xx only after the restart)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from cloudevents.http import CloudEvent

from autoscaler.clock import SystemClock
from autoscaler.runtime.launcher import free_loopback_port
from autoscaler.runtime.testing import running_onemachine
from tests.eventing.fakes import Subscriber
from tests.eventing.test_e2e_eventing_onemachine import get_obj, ready, send

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


def objects(subscriber_url: str) -> str:
    broker = {
        "apiVersion": "eventing.knative.dev/v1",
        "kind": "Broker",
        "metadata": {"name": "default", "namespace": "default"},
    }
    trigger = {
        "apiVersion": "eventing.knative.dev/v1",
        "kind": "Trigger",
        "metadata": {"name": "all", "namespace": "default"},
        "spec": {
            "broker": "default",
            "subscriber": {"uri": subscriber_url},
            # The subscriber is down until the restart: keep retrying meanwhile.
            "delivery": {"retry": 50, "backoffPolicy": "linear", "backoffDelay": "PT0.2S"},
        },
    }
    return yaml.safe_dump_all([broker, trigger])


def test_events_accepted_before_a_restart_are_delivered_once_after_it(tmp_path: Path) -> None:
    port = free_loopback_port()
    subscriber_url = f"http://127.0.0.1:{port}/"
    ids = [f"before-restart-{n}" for n in range(3)]
    with running_onemachine(tmp_path, tuner=False) as om:
        assert om.kubectl("apply", "-f", "-", input=objects(subscriber_url)).returncode == 0
        om.wait(lambda: ready(get_obj(om, "trigger", "all")), 60, "trigger ready")
        broker_url = get_obj(om, "broker", "default")["status"]["address"]["url"]
        for event_id in ids:
            event = CloudEvent({"type": "t", "source": "/tests", "id": event_id}, {"n": 1})
            assert send(broker_url, event) == 202
        counts = om.call(om.machine.eventing.core.delivery_counts())
        assert counts.get("subscriber") == 3, counts
    with running_onemachine(tmp_path, tuner=False) as om:
        sink = om.call(Subscriber(clock=SystemClock(), port=port).start())
        try:
            om.wait(lambda: len(sink.received) >= 3, 60, "the events stored before the restart")
            counts = om.call(om.machine.eventing.core.delivery_counts())
            assert counts.get("subscriber", 0) == 0, counts
            assert sorted(sink.ids()) == ids
            assert json.loads(sink.received[0].event.get_data()) == {"n": 1}
        finally:
            om.call(sink.stop())
