"""The tuner inside one-machine mode takes part in the tuner's leader election: it holds the
Lease ``modelscale controller`` uses, so a controller started against the same API server stands
by instead of tuning beside it."""

from __future__ import annotations

from pathlib import Path

import pytest
from kubernetes import client

from autoscaler.clock import SystemClock
from autoscaler.kube.kubeconfig import own_namespace
from autoscaler.kube.leader import ElectionConfig, LeaderElector
from autoscaler.kube.settings import ControllerSettings
from autoscaler.runtime.testing import running_onemachine

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


def test_a_controller_on_the_embedded_api_stands_by_while_the_embedded_tuner_leads(
    tmp_path: Path,
) -> None:
    with running_onemachine(tmp_path) as om:
        tuner = om.machine.tuner
        assert tuner is not None
        om.wait(tuner.is_leader, 30, "the embedded tuner to lead")
        # As `modelscale controller` builds its election, with its defaults, off-cluster.
        settings = ControllerSettings(namespace=own_namespace(), identity="second-controller")
        election = ElectionConfig(settings.namespace, settings.lease_name, settings.identity)
        second = LeaderElector(om.api_client(), election, SystemClock())

        assert not second.try_acquire_or_renew()
        assert not second.is_leader()
        lease = client.CoordinationV1Api(om.api_client()).read_namespaced_lease(
            election.name, election.namespace
        )
        assert lease.spec.holder_identity == om.machine.settings.tuner_identity
        assert tuner.is_leader()

        # When the embedded tuner stops it gives the Lease up, and the other one leads.
        om.call(tuner.stop())
        assert second.try_acquire_or_renew()
        assert second.is_leader()
