"""The dashboard in headless Chromium against one-machine mode with traffic: the overview lists
the model, its page shows a non-empty chart and the tuner's last reason, and the page follows the
replicas as traffic scales them up, without a reload. Screenshots go to ``$MODELSCALE_ARTIFACTS``
(default ``<repo>/.artifacts/``).

The tuner ticks every second (``tick_period_s`` in its ConfigMap, applied before the model), and
Knative's windows are shortened with Knative's own annotations.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from autoscaler.dashboard import TickSample, World, make_dashboard_app
from autoscaler.runtime.testing import RunningOneMachine, running_onemachine
from tests.dashboard.dashkit import T0, StaticSource, isvc, revision

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
MODEL = "gpu"
HOST = f"{MODEL}.default.example.com"

TUNER_CONFIG = {
    "apiVersion": "v1",
    "kind": "ConfigMap",
    "metadata": {"name": "modelscale-tuner", "namespace": "default"},
    "data": {"tick_period_s": "1", "stale_after_s": "10"},
}
ISVC = {
    "apiVersion": "serving.kserve.io/v1beta1",
    "kind": "InferenceService",
    "metadata": {
        "name": MODEL,
        "namespace": "default",
        "annotations": {
            "autoscaling.knative.dev/window": "6s",
            "autoscaling.knative.dev/target": "1",
            "autoscaling.knative.dev/target-utilization-percentage": "100",
        },
    },
    "spec": {
        "predictor": {
            "minReplicas": 1,
            "maxReplicas": 3,
            "containers": [{
                "name": "kserve-container",
                "env": [
                    {"name": "MODEL_CLASS",
                     "value": "autoscaler.examples.capacity:CapacityLimitedModel"},
                    {"name": "MODEL_BASE_LATENCY_MS", "value": "400"},
                ],
            }],
        }
    },
}  # fmt: skip
SCALER = {
    "apiVersion": "modelscale.dev/v1alpha1",
    "kind": "ModelScaler",
    "metadata": {"name": MODEL, "namespace": "default"},
    "spec": {
        "targetRef": {"name": MODEL},
        "objective": {"percentile": 95, "latencyMs": 1000},
        "updateMode": "Recommend",
    },
}


def artifacts_dir() -> Path:
    path = Path(os.environ.get("MODELSCALE_ARTIFACTS") or REPO / ".artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def om(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningOneMachine]:
    tmp = tmp_path_factory.mktemp("dashboard")
    with running_onemachine(tmp, autoscaler_config={"scale-to-zero-grace-period": "6s"}) as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
        pytest.skip("chromium and chromedriver are not installed (scripts/setup.sh installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1400,1900"):  # fmt: skip
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def apply(om: RunningOneMachine, obj: dict[str, Any]) -> None:
    out = om.kubectl("apply", "-f", "-", input=json.dumps(obj))
    assert out.returncode == 0, out.stderr


def drive(om: RunningOneMachine, clients: int, seconds: float) -> threading.Thread:
    """Closed-loop traffic: ``clients`` threads, each one request after another, in background."""

    def one() -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            req = urllib.request.Request(
                om.ingress_url + f"/v1/models/{MODEL}:predict",
                data=json.dumps({"instances": [[1.0]]}).encode(),
                headers={"Host": HOST, "Content-Type": "application/json"},
            )
            try:
                with urllib.request.urlopen(req, timeout=60) as resp:
                    resp.read()
            except OSError:
                time.sleep(0.1)  # the model is starting: the activator may refuse; try again

    def all_clients() -> None:
        threads = [threading.Thread(target=one, daemon=True) for _ in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    runner = threading.Thread(target=all_clients, daemon=True)
    runner.start()
    return runner


def wait_js(driver: Any, script: str, timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = driver.execute_script(script)
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(0.2)


def test_dashboard_overview_model_page_and_live_updates(
    om: RunningOneMachine, browser: Any
) -> None:
    apply(om, TUNER_CONFIG)
    apply(om, ISVC)
    apply(om, SCALER)
    url = om.machine.dashboard_url
    assert url.startswith("http://127.0.0.1:") and url.endswith("/dashboard/")
    browser.get(url + "?poll=500")
    row = wait_js(
        browser,
        f"const r = document.querySelector('tr[data-model=\"default/{MODEL}\"]');"
        "return r && r.textContent;",
        60,
        "the overview to list the model",
    )
    assert MODEL in row

    browser.get(url + f"?poll=500#/models/default/{MODEL}")
    reason = wait_js(
        browser,
        "const li = document.querySelector('#last-reason li:not(.muted)');"
        "return li && li.textContent;",
        120,
        "the tuner's last reason on the model page",
    )
    assert reason.strip()
    wait_js(
        browser,
        "return document.querySelectorAll('#chart-replicas svg path.series').length > 0;",
        60,
        "a replicas chart with a line",
    )
    # the page must update in place: a marker set now survives only if nothing reloads
    browser.execute_script("window.__noReload = true;")
    before = browser.execute_script("return document.getElementById('m-replicas').textContent;")
    traffic = drive(om, clients=3, seconds=40)
    after = wait_js(
        browser,
        "const t = document.getElementById('m-replicas').textContent;"
        "return Number(t.split('/')[0]) >= 2 && t;",
        90,
        "the page to show the replicas scaled up",
    )
    assert after != before
    assert browser.execute_script("return window.__noReload === true;"), "the page reloaded"
    wait_js(
        browser,
        "return document.querySelectorAll('#chart-latency svg circle').length >= 8;",
        60,
        "eight ticks of observed latency on the chart",
    )
    shot = artifacts_dir() / "dashboard-model.png"
    browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000
    browser.get(url)
    wait_js(browser, "return document.querySelector('tr[data-model]') !== null;", 30, "overview")
    browser.save_screenshot(str(artifacts_dir() / "dashboard-overview.png"))
    traffic.join(60)


# --- the page's drawing, over a fixed source ----------------------------------------------------
class Switchable(StaticSource):
    """A static source whose reads can be made to fail (the API server unreachable)."""

    failing = False

    async def world(self) -> World:
        if self.failing:
            raise ConnectionRefusedError(111, "Connection refused")
        return self.snapshot()


def drawn_source() -> Switchable:
    """Model ``m``: objective p99.9, one observed tick, idle bins in [0,10), [600,720) and
    [7200,8100), and a capacity point beyond the last latency bucket."""
    src = Switchable()
    src.isvcs.append(isvc("m", [("m-00001", 100)]))
    src.revisions.append(revision("m", "m-00001", 1, 1))
    src.scalers.append({
        "metadata": {"name": "m", "namespace": "default"},
        "spec": {"targetRef": {"name": "m"}, "objective": {"percentile": 99.9, "latencyMs": 200}},
        "status": {
            "mode": "Auto", "target": 4.0, "keepAlive": "36s",
            "recommendation": {"revision": "m-00001", "target": 4.0, "keepAliveSeconds": 36,
                               "reasons": ["why"]},
            "revisions": [{"name": "m-00001",
                           "points": [[1.0, 20.0, 100.0], [2.0, 40.0, 100.0], [8.0, 1e6, 50.0]],
                           "idleHistogram": {"samples": 12, "bins": [[0.0, 0.5], [600.0, 0.25],
                                                                     [7200.0, 0.25]]}}],
        },
    })  # fmt: skip
    src.now_s = T0 + 60
    src.recorder.record_replicas(("default", "m"), T0, 1, 1)
    src.recorder.record_tick(
        ("default", "m"), TickSample(T0 + 30, "m-00001", 2.5, 4.0, 10.0, 40.0, 200.0)
    )
    return src


@pytest.fixture
def drawn() -> Iterator[tuple[Switchable, str]]:
    """The real dashboard app over ``drawn_source()`` on 127.0.0.1, on a loop in a thread."""
    import asyncio

    from aiohttp import web

    source = drawn_source()
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    runner = web.AppRunner(make_dashboard_app(source))

    async def start() -> int:
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        return int(runner.addresses[0][1])

    port = asyncio.run_coroutine_threadsafe(start(), loop).result(10)
    try:
        yield source, f"http://127.0.0.1:{port}/"
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def test_model_page_draws_what_the_api_says(drawn: tuple[Switchable, str], browser: Any) -> None:
    source, url = drawn
    browser.get(url + "?poll=300#/models/default/m")
    wait_js(browser, "return Number(document.body.dataset.updates || 0) >= 1;", 30, "a page")
    legend = browser.execute_script(
        "return [...document.querySelectorAll('#chart-latency .legend span, "
        "#chart-capacity .legend span')].map((s) => s.textContent);"
    )
    assert legend == ["p99.9 latency (ms)", "p99.9 latency (ms)"]
    # one observation is still drawn (a dot)
    assert (
        browser.execute_script(
            "return document.querySelectorAll('#chart-concurrency svg circle').length;"
        )
        >= 1
    )
    # each idle bar spans its bin: widths in the ratio of the bins' widths (10, 120, 900 s)
    widths = browser.execute_script(
        "return [...document.querySelectorAll('#chart-idle rect')]"
        ".map((r) => Number(r.getAttribute('width')) + 1);"
    )
    assert len(widths) == 3
    assert widths[2] / widths[1] == pytest.approx(900 / 120, rel=0.02)
    # the overload point beyond the last bucket is pinned to the top, marked
    assert browser.execute_script(
        "return [...document.querySelectorAll('#chart-capacity text')]"
        ".some((t) => t.textContent === '> 100 s') && "
        "document.querySelectorAll('#chart-capacity circle.top').length === 1;"
    )
    assert browser.execute_script(
        "return document.getElementById('m-cold-label').textContent;"
    ) == ("Scale-ups from zero (1 h)")
    assert browser.execute_script("return document.getElementById('standby').hidden;")
    source.leading = False
    wait_js(browser, "return !document.getElementById('standby').hidden;", 10, "stand-by")
    source.failing = True
    shown = wait_js(
        browser,
        "const t = document.getElementById('updated').textContent;"
        "return t.startsWith('error') && t;",
        10,
        "the error on the page",
    )
    assert shown == "error: reading the objects: [Errno 111] Connection refused"
