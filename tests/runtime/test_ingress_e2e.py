"""The ingress with real replicas: KServe's client, bad input, canary split, tags."""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import numpy as np
import pytest
import pytest_asyncio
from dataplane_testkit import FAST_POOL, host_of, iris_spec, requests_served, wait_until

from autoscaler.runtime.dataplane import DataPlane
from autoscaler.runtime.spec import RevisionKey

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]

A = RevisionKey("default", "iris-00001")
B = RevisionKey("default", "iris-00002")
HOST = host_of("iris")
V2_BODY = json.dumps(
    {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [5.1, 3.5, 1.4, 0.2]}]}
).encode()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def dp(tmp_path_factory: pytest.TempPathFactory, iris_dir: Path) -> AsyncIterator[DataPlane]:
    plane = DataPlane(
        pool_settings=FAST_POOL,
        log_dir=tmp_path_factory.mktemp("logs"),
        max_body_bytes=64 * 1024,
        rng=random.Random(20),
    )
    await plane.start()
    try:
        for key in (A, B):
            plane.ensure_revision(key, iris_spec(iris_dir, key.name))
            plane.set_desired(key, 1)
        plane.set_route(HOST, [(A, 80, "prev"), (B, 20, "latest")])
        await wait_until(
            lambda: all(plane.status(k).ready == 1 for k in (A, B)), what="both revisions ready"
        )
        plane.set_activator_in_path(A, False)  # one revision direct, one through the activator
        yield plane
    finally:
        await plane.close()


async def test_kserve_client_v1_and_v2_through_the_ingress(dp: DataPlane) -> None:
    from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig

    v1 = InferenceRESTClient(RESTConfig(protocol="v1"))
    v2 = InferenceRESTClient(RESTConfig(protocol="v2"))
    try:
        r1 = await v1.infer(
            dp.ingress_url, {"instances": [[6.8, 2.8, 4.8, 1.4]]}, "iris", headers={"Host": HOST}
        )
        assert r1 == {"predictions": [1]}
        inp = InferInput("input-0", [1, 4], "FP32")
        inp.set_data_from_numpy(
            np.array([[5.1, 3.5, 1.4, 0.2]], dtype=np.float32), binary_data=True
        )
        r2 = await v2.infer(
            dp.ingress_url, InferRequest("iris", [inp]), "iris", headers={"Host": HOST}
        )
        assert r2.outputs[0].data == [0]  # type: ignore[union-attr]
        assert await v2.is_server_ready(dp.ingress_url, headers={"Host": HOST})
    finally:
        await v1.close()
        await v2.close()


async def request(
    dp: DataPlane, host: str, path: str, body: bytes, content_type: str = "application/json"
) -> tuple[int, dict[str, object]]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            dp.ingress_url + path, data=body, headers={"Host": host, "Content-Type": content_type}
        ) as resp,
    ):
        assert resp.content_type == "application/json"
        return resp.status, json.loads(await resp.read())


@pytest.mark.parametrize(
    ("host", "path", "body", "status", "error_part"),
    [
        ("nope.default.example.com", "/v1/models/iris:predict", b"{}", 404, "no route for host"),
        (HOST, "/v1/models/other:predict", b"{}", 404, "Model with name other does not exist"),
        (HOST, "/v2/models/other/infer", b"{}", 404, "Model with name other does not exist"),
        # the model server's own answer (the ingress does not answer versioned paths)
        (HOST, "/v2/models/other/versions/1/infer", V2_BODY, 501, "versioning not supported"),
        (HOST, "/v1/models/iris:predict", b"{not json", 400, ""),
        (HOST, "/v1/models/iris:predict", b"[" + b"1," * 40_000 + b"1]", 413, "larger than"),
    ],
    ids=["unknown-host", "unknown-model-v1", "unknown-model-v2", "unknown-model-versioned",
         "malformed-json", "oversize-body"],
)  # fmt: skip
async def test_bad_input_gets_kserve_style_errors(
    dp: DataPlane, host: str, path: str, body: bytes, status: int, error_part: str
) -> None:
    got, payload = await request(dp, host, path, body)
    assert got == status
    assert isinstance(payload.get("error"), str) and error_part in payload["error"]


async def test_the_model_servers_other_endpoints_answer_through_the_ingress(dp: DataPlane) -> None:
    """Knative's ingress routes every path of a host: ``/metrics``, ``GET /v1/models``, ..."""
    async with aiohttp.ClientSession() as session:
        for tag in ("latest", "prev"):  # B through the activator, A direct
            host = f"{tag}-{HOST}"
            async with session.get(dp.ingress_url + "/v1/models", headers={"Host": host}) as r:
                assert (r.status, await r.json()) == (200, {"models": ["iris"]})
            async with session.get(dp.ingress_url + "/metrics", headers={"Host": host}) as r:
                assert r.status == 200
                assert "python_gc_objects_collected_total" in await r.text()
            async with session.get(
                dp.ingress_url + "/v2/models/iris/versions/1", headers={"Host": host}
            ) as r:  # the model server's own answer
                assert (r.status, await r.json()) == (
                    501,
                    {"error": "Model versioning not supported yet."},
                )


async def test_the_ingress_answers_another_model_as_the_model_server_would(
    dp: DataPlane,
) -> None:
    """Byte for byte: the ingress's own 404 for a model the revision does not serve, and the
    model server's answer to the same request."""
    (qp,) = dp.pool(A).ready_targets()
    async with aiohttp.ClientSession() as session:
        for method, path in [
            ("GET", "/v1/models/nope:predict"),  # the model-ready route, for "nope:predict"
            ("POST", "/v1/models/nope:predict"),
            ("GET", "/v2/models/nope/ready"),
            ("POST", "/v2/models/nope/infer"),
        ]:
            answers = []
            for url, host in [(dp.ingress_url, f"prev-{HOST}"), (qp.upstream, "127.0.0.1")]:
                async with session.request(
                    method, url + path, data=b"{}", headers={"Host": host}
                ) as r:
                    answers.append((r.status, r.content_type, await r.read()))
            assert answers[0] == answers[1], (method, path)
            assert answers[0][0] == 404


@pytest.mark.parametrize("tag", ["prev", "latest"])  # direct, through the activator
async def test_a_redirect_is_passed_back_with_the_clients_host(dp: DataPlane, tag: str) -> None:
    """The model server redirects a path with a trailing slash; the data plane does not follow
    it, and the replica saw the Host the client called."""
    host = f"{tag}-{HOST}"
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            dp.ingress_url + "/v1/models/iris:predict/",
            json={"instances": [[5.1, 3.5, 1.4, 0.2]]},
            headers={"Host": host},
            allow_redirects=False,
        ) as r,
    ):
        assert r.status == 307
        assert r.headers["Location"] == f"http://{host}/v1/models/iris:predict"


async def test_canary_split_is_within_five_percent_over_1000_requests(dp: DataPlane) -> None:
    def served(key: RevisionKey) -> float:
        return sum(
            requests_served(qp.metrics.render().decode()) for qp in dp.pool(key).ready_targets()
        )

    before = {key: served(key) for key in (A, B)}
    body = json.dumps({"instances": [[6.8, 2.8, 4.8, 1.4]]}).encode()
    async with aiohttp.ClientSession() as session:
        for _ in range(1000):
            async with session.post(
                dp.ingress_url + "/v1/models/iris:predict",
                data=body,
                headers={"Host": HOST, "Content-Type": "application/json"},
            ) as resp:
                assert resp.status == 200
                await resp.read()
    a, b = served(A) - before[A], served(B) - before[B]
    assert a + b == 1000
    assert abs(b / 1000 - 0.20) <= 0.05


@pytest.mark.parametrize(("tag", "key"), [("latest", B), ("prev", A)])
async def test_tag_hosts_reach_their_revision(dp: DataPlane, tag: str, key: RevisionKey) -> None:
    (qp,) = dp.pool(key).ready_targets()
    before = requests_served(qp.metrics.render().decode())
    status, _ = await request(
        dp, f"{tag}-{HOST}", "/v1/models/iris:predict", b'{"instances": [[1,2,3,4]]}'
    )
    assert status == 200
    assert requests_served(qp.metrics.render().decode()) == before + 1
