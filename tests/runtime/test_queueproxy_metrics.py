"""The queue-proxy with a real replica: Prometheus metrics, Stats to the callback, queue bound."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest
from dataplane_testkit import capacity_spec, host_of, iris_spec, wait_until
from prometheus_client.parser import text_string_to_metric_families

from autoscaler.runtime.dataplane import DataPlane
from autoscaler.runtime.proxy import PROXY_HEADER
from autoscaler.runtime.qpmetrics import DESTINATION_LABELS, RESPONSE_LABELS, REVISION_LABELS
from autoscaler.runtime.spec import RevisionKey
from autoscaler.runtime.stats import ACTIVATOR_FIRST_POD_NAME, ACTIVATOR_POD_NAME, Stat

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]

BODY = {"instances": [[6.8, 2.8, 4.8, 1.4]]}


async def test_metrics_parse_with_knative_names_and_labels_and_stats_reach_the_callback(
    dataplane: DataPlane, iris_dir: Path
) -> None:
    key = RevisionKey("default", "metrics-00001")
    stats: list[tuple[RevisionKey, Stat]] = []
    dataplane.on_stat(lambda k, s: stats.append((k, s)))
    dataplane.ensure_revision(key, iris_spec(iris_dir, key.name), 2, service="metrics")
    dataplane.set_route(host_of("metrics"), [(key, 100, None)])
    dataplane.set_desired(key, 1)
    await wait_until(lambda: dataplane.status(key).ready == 1, what="ready")
    (qp,) = dataplane.pool(key).ready_targets()
    async with aiohttp.ClientSession() as session:
        for in_path in (True, False):
            dataplane.set_activator_in_path(key, in_path)
            for _ in range(3):
                async with session.post(
                    f"{dataplane.ingress_url}/v1/models/iris:predict",
                    json=BODY,
                    headers={"Host": host_of("metrics")},
                ) as resp:
                    assert resp.status == 200
        # The queue-proxy's own port: the activator's header marks a request as proxied.
        async with session.post(
            f"http://127.0.0.1:{qp.port}/v1/models/iris:predict",
            json=BODY,
            headers={PROXY_HEADER: "activator"},
        ) as resp:
            assert resp.status == 200
        await wait_until(
            lambda: (
                sum(s.request_count for k, s in stats if k == key and s.pod_name == qp.name) == 7
            ),
            timeout_s=5,
            what="pod stats counting 7 requests",
        )
        async with session.get(f"http://127.0.0.1:{qp.metrics_port}/metrics") as resp:
            assert resp.status == 200
            text = await resp.text()
    pod_stats = [s for k, s in stats if k == key and s.pod_name == qp.name]
    assert sum(s.proxied_request_count for s in pod_stats) == 4
    # the activator's reports: its periods' and, at once, the first request's
    activator = {ACTIVATOR_POD_NAME, ACTIVATOR_FIRST_POD_NAME}
    act_stats = [s for k, s in stats if k == key and s.pod_name in activator]
    assert sum(s.request_count for s in act_stats) == 3
    assert all(s.process_uptime_s > 0 for s in pod_stats)

    families = {f.name: f for f in text_string_to_metric_families(text)}
    for name in (
        "queue_average_concurrent_requests",
        "queue_requests_per_second",
        "queue_average_proxied_concurrent_requests",
        "queue_proxied_operations_per_second",
        "process_uptime",
    ):
        (sample,) = families[name].samples
        assert tuple(sorted(sample.labels)) == tuple(sorted(DESTINATION_LABELS))
        assert sample.labels["destination_pod"] == qp.name
        assert sample.labels["destination_revision"] == key.name
    for name in ("revision_request_count", "revision_app_request_count"):
        samples = [s for s in families[name].samples if s.name.endswith("_total")]
        assert sum(s.value for s in samples) == 7
        for s in samples:
            assert set(s.labels) == set(RESPONSE_LABELS)
            assert (s.labels["response_code"], s.labels["response_code_class"]) == ("200", "2xx")
            assert s.labels["service_name"] == "metrics"
    for name in ("revision_request_latencies", "revision_app_request_latencies"):
        family = families[name]
        assert family.type == "histogram"
        buckets = {s.labels["le"] for s in family.samples if s.name.endswith("_bucket")}
        assert {"5.0", "100.0", "100000.0", "+Inf"} <= buckets
    (depth,) = families["revision_queue_depth"].samples
    assert set(depth.labels) == set(REVISION_LABELS)
    await dataplane.remove_revision(key)


async def test_queue_depth_is_bounded_past_ten_per_slot(dataplane: DataPlane) -> None:
    key = RevisionKey("default", "bounded-00001")
    dataplane.ensure_revision(key, capacity_spec(key.name, capacity=1, base_latency_ms=300), 1)
    dataplane.set_desired(key, 1)
    await wait_until(lambda: dataplane.status(key).ready == 1, what="ready")
    (qp,) = dataplane.pool(key).ready_targets()

    async def one(session: aiohttp.ClientSession) -> int:
        async with session.post(
            f"http://127.0.0.1:{qp.port}/v1/models/gpu:predict", json=BODY
        ) as resp:
            await resp.read()
            return resp.status

    async with aiohttp.ClientSession() as session:
        statuses = await asyncio.gather(*(one(session) for _ in range(14)))
    # cc=1: one in the model, ten waiting (Knative's 10 × cc), the other three refused.
    assert sorted(statuses) == [200] * 11 + [503] * 3
    await dataplane.remove_revision(key)
