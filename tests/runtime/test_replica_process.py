"""Replica processes: sklearn and custom predictors, loopback only, V1 and V2, bad specs."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import numpy as np
import psutil
import pytest
import pytest_asyncio
from dataplane_testkit import capacity_spec, iris_spec, wait_until

from autoscaler.runtime.launcher import (
    ExecLauncher,
    ReplicaProcess,
    ReplicaStartError,
    ZygoteLauncher,
)
from autoscaler.runtime.spec import PredictorKind, ReplicaSpec

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]

SAMPLE = [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def zygote(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ZygoteLauncher]:
    launcher = ZygoteLauncher(log_path=str(tmp_path_factory.mktemp("zlog") / "zygote.log"))
    await launcher.start()
    try:
        yield launcher
    finally:
        await launcher.close()


async def wait_ready(proc: ReplicaProcess, timeout_s: float = 30) -> None:
    url = f"http://127.0.0.1:{proc.port}/v2/health/ready"
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    async with aiohttp.ClientSession() as session:
        while loop.time() < deadline:
            try:
                async with session.get(url) as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.01)
    raise AssertionError(f"replica on {proc.port} not ready in {timeout_s}s")


def listening_addresses(pid: int) -> set[str]:
    conns = psutil.Process(pid).connections(kind="inet")
    return {c.laddr.ip for c in conns if c.status == psutil.CONN_LISTEN}


async def stop(proc: ReplicaProcess) -> int:
    proc.send_signal(signal.SIGTERM)
    return await asyncio.wait_for(proc.exited, 10)


async def infer_both_protocols(port: int, model: str) -> tuple[object, object]:
    from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig

    base = f"http://127.0.0.1:{port}"
    v1 = InferenceRESTClient(RESTConfig(protocol="v1"))
    v2 = InferenceRESTClient(RESTConfig(protocol="v2"))
    try:
        r1 = await v1.infer(base, {"instances": SAMPLE}, model_name=model)
        inp = InferInput("input-0", [2, 4], "FP32")
        inp.set_data_from_numpy(np.array(SAMPLE, dtype=np.float32), binary_data=False)
        r2 = await v2.infer(base, InferRequest(model, [inp]), model_name=model)
    finally:
        await v1.close()
        await v2.close()
    return r1, r2


@pytest.mark.parametrize("uri_form", ["file", "path"], ids=["file-uri-dir", "plain-joblib-path"])
async def test_sklearn_replica_binds_loopback_and_answers_v1_v2(
    zygote: ZygoteLauncher, iris_dir: Path, uri_form: str
) -> None:
    proc = await zygote.launch(iris_spec(iris_dir, "iris-00001", uri_form))
    try:
        await wait_ready(proc)
        assert listening_addresses(proc.pid) == {"127.0.0.1"}
        r1, r2 = await infer_both_protocols(proc.port, "iris")
        assert r1 == {"predictions": [1, 1]}
        assert r2.outputs[0].data == [1, 1]  # type: ignore[attr-defined]
        # input the estimator refuses: 500 and its own message, as KServe's sklearnserver
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                f"http://127.0.0.1:{proc.port}/v1/models/iris:predict",
                json={"instances": [[1.0, 2.0]]},
            ) as resp,
        ):
            assert resp.status == 500
            error = (await resp.json())["error"]
            assert error.startswith("X has 2 features, but") and "expecting 4 features" in error
    finally:
        assert await stop(proc) in (0, -signal.SIGTERM)


async def test_custom_replica_gets_its_args_and_env(zygote: ZygoteLauncher) -> None:
    proc = await zygote.launch(capacity_spec("gpu-00001", capacity=2, base_latency_ms=30))
    try:
        await wait_ready(proc)
        assert listening_addresses(proc.pid) == {"127.0.0.1"}
        r1, r2 = await infer_both_protocols(proc.port, "gpu")
        (latency_ms,) = set(r1["predictions"])  # type: ignore[index]
        assert 29 <= latency_ms < 200  # MODEL_BASE_LATENCY_MS=30 from env reached the model
        assert len(r2.outputs[0].data) == 2  # type: ignore[attr-defined]
    finally:
        await stop(proc)


@pytest.mark.parametrize(
    "term_timeout_s", [5.0, 0.05], ids=["forked-within-the-grace", "forked-after-it"]
)
async def test_a_launch_given_up_before_the_fork_leaves_no_replica_running(
    zygote: ZygoteLauncher, iris_dir: Path, term_timeout_s: float
) -> None:
    """Cancelled before the zygote forked (here: it is stopped), a launch still stops the child
    the zygote forks later: waited for and stopped within the grace, or killed when it comes."""
    assert zygote.pid is not None
    parent = psutil.Process(zygote.pid)
    parent.suspend()
    try:
        launch = asyncio.ensure_future(
            zygote.launch(iris_spec(iris_dir, "iris-00001"), term_timeout_s=term_timeout_s)
        )
        await wait_until(lambda: bool(zygote._pending), what="the fork asked for")
        launch.cancel()
        if term_timeout_s < 1:
            with pytest.raises(asyncio.CancelledError):
                await asyncio.wait_for(launch, 5)  # it gave up waiting for the fork
    finally:
        parent.resume()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(launch, 10)
    # The zygote forks in order: once this one is bound, the earlier fork has happened.
    other = await zygote.launch(iris_spec(iris_dir, "iris-00001"))
    try:
        await wait_until(
            lambda: [c.pid for c in parent.children()] == [other.pid], 10, "the first fork gone"
        )
    finally:
        await stop(other)


async def test_an_exec_launch_given_up_stops_its_process(iris_dir: Path) -> None:
    launcher = ExecLauncher()
    try:
        launch = asyncio.ensure_future(
            launcher.launch(iris_spec(iris_dir, "iris-00001"), term_timeout_s=5)
        )
        await wait_until(lambda: bool(launcher._procs), what="the replica process loading")
        (child,) = (psutil.Process(p.pid) for p in launcher._procs)
        launch.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(launch, 10)
        assert not child.is_running()
    finally:
        await launcher.close()


async def test_exec_launcher_replica_binds_loopback(iris_dir: Path) -> None:
    launcher = ExecLauncher()
    try:
        proc = await launcher.launch(iris_spec(iris_dir, "iris-00001"))
        await wait_ready(proc)
        assert listening_addresses(proc.pid) == {"127.0.0.1"}
        await stop(proc)
    finally:
        await launcher.close()


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            ReplicaSpec("default", "bad-1", "m", PredictorKind.SKLEARN, storage_uri="/nonexistent"),
            "no such file or directory",
        ),
        (
            ReplicaSpec(
                "default", "bad-2", "m", PredictorKind.CUSTOM, model_class="json:JSONDecoder"
            ),
            "not a kserve.Model subclass",
        ),
    ],
    ids=["missing-model-file", "not-a-model-class"],
)
async def test_bad_spec_fails_with_the_reason(
    zygote: ZygoteLauncher, spec: ReplicaSpec, message: str
) -> None:
    with pytest.raises(ReplicaStartError, match=message):
        await zygote.launch(spec)


async def test_spec_validation_names_the_field() -> None:
    with pytest.raises(ValueError, match="storage_uri"):
        ReplicaSpec("default", "r", "m", PredictorKind.SKLEARN)
    with pytest.raises(ValueError, match="model_class"):
        ReplicaSpec("default", "r", "m", PredictorKind.CUSTOM, model_class="nocolon")
    spec = capacity_spec("gpu-1")
    assert ReplicaSpec.from_json(spec.to_json()) == spec


async def test_a_model_that_fails_to_load_leaves_its_traceback_in_the_log(
    zygote: ZygoteLauncher, tmp_path: Path
) -> None:
    log = tmp_path / "replica.log"
    spec = ReplicaSpec("default", "bad-3", "m", PredictorKind.SKLEARN, storage_uri="/nonexistent")
    with pytest.raises(ReplicaStartError, match="no such file or directory"):
        await zygote.launch(spec, str(log))
    text = log.read_text()
    assert "Traceback (most recent call last):" in text
    assert "/nonexistent" in text and "predictors.py" in text
