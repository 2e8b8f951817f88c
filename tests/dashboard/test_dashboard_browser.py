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

from autoscaler.runtime.testing import RunningOneMachine, running_onemachine

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
