"""The write path: a conflicting writer (409) is retried from a fresh read; a deposed leader
writes nothing."""

from __future__ import annotations

import pytest

from autoscaler.kube import cli, settings
from autoscaler.kube.apply import NotLeader, Writer
from autoscaler.kube.retry import Backoff
from tests.kube.kit import MIN_SCALE, REV, TARGET, Cluster

FAST = Backoff(base_s=0.01, cap_s=0.05, attempts=4)


def test_a_conflict_is_retried_from_a_fresh_read(cluster: Cluster) -> None:
    rev = cluster.deploy("m1")
    checks = []

    def is_leader() -> bool:
        # Someone else writes between our read and our write, once: our write gets 409.
        if not checks:
            cluster.patch(REV, rev, {"metadata": {"annotations": {"team": "ml"}}})
        checks.append(True)
        return True

    writer = Writer(cluster.api_client, is_leader, backoff=FAST)
    written = writer.write("revision", "default", "m1", rev, {TARGET: "25", MIN_SCALE: "0"})
    assert len(checks) == 2, "the first write conflicted and was tried again"
    assert dict(written.new) == {TARGET: "25"}
    got = cluster.get(REV, rev)["metadata"]["annotations"]
    assert (got[TARGET], got["team"]) == ("25", "ml"), "both writes kept"


def test_a_deposed_leader_writes_nothing(cluster: Cluster) -> None:
    rev = cluster.deploy("m1")
    before = cluster.get(REV, rev)["metadata"]["resourceVersion"]
    writer = Writer(cluster.api_client, lambda: False, backoff=FAST)
    with pytest.raises(NotLeader):
        writer.write("revision", "default", "m1", rev, {TARGET: "25"})
    assert cluster.get(REV, rev)["metadata"]["resourceVersion"] == before


def test_cli_defaults_match_the_settings() -> None:
    assert cli.DEFAULT_CONFIG_MAP == settings.DEFAULT_CONFIG_MAP
    assert cli.DEFAULT_METRICS_BIND == settings.DEFAULT_METRICS_BIND
