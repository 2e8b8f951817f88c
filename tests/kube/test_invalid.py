"""Invalid ModelScalers: rejected by the CRD schema, or marked Invalid by the controller."""

from __future__ import annotations

from typing import Any

import pytest

from tests.kube.kit import MSC, REV, TICK_S, Cluster, sees

BAD_BY_SCHEMA = {
    "negative-latency": ("objective: {latencyMs: -5}", "latencyMs"),
    "unknown-mode": ("objective: {latencyMs: 100}\n  updateMode: Sometimes", "updateMode"),
    "missing-target": ("objective: {latencyMs: 100}\n  targetRef: {}", "name"),
}


@pytest.mark.parametrize("case", list(BAD_BY_SCHEMA), ids=list(BAD_BY_SCHEMA))
def test_schema_rejects(cluster: Cluster, case: str) -> None:
    spec, field = BAD_BY_SCHEMA[case]
    if "targetRef" not in spec:
        spec = "targetRef: {name: m1}\n  " + spec
    manifest = f"apiVersion: modelscale.dev/v1alpha1\nkind: ModelScaler\nmetadata: {{name: bad}}\nspec:\n  {spec}\n"
    result = cluster.server.kubectl("apply", "-f", "-", input=manifest)
    assert result.returncode != 0
    assert field in result.stderr


async def test_cross_field_problems_are_marked_invalid(
    cluster: Cluster, make_controller: Any, clock: Any
) -> None:
    ctl = make_controller()
    rev = cluster.deploy("m1")
    cluster.scaler("m1", target={"min": 10, "max": 5})
    await sees(ctl, MSC, "m1")
    await sees(ctl, REV, rev)
    before = cluster.get(REV, rev)["metadata"]["resourceVersion"]

    clock.advance(TICK_S)
    await ctl.tick()

    status = cluster.get(MSC, "m1")["status"]
    assert status["mode"] == "Invalid"
    invalid = next(c for c in status["conditions"] if c["type"] == "Invalid")
    assert invalid["status"] == "True"
    assert "spec.target.min (10) must be <= spec.target.max (5)" in invalid["message"]
    assert cluster.get(REV, rev)["metadata"]["resourceVersion"] == before, "nothing applied"
    row = cluster.server.kubectl("get", "msc", "m1").stdout.splitlines()[1]
    assert "Invalid" in row.split(), "the MODE printer column"

    # A second tick with nothing new writes nothing (status unchanged).
    clock.advance(TICK_S)
    report = await ctl.tick()
    assert report.models[("default", "m1")].status_written is False
