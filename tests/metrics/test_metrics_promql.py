"""The Prometheus source's pure part: the PromQL of a tick, and answers into observations."""

from __future__ import annotations

from typing import Any

import pytest

from autoscaler.metrics import KNATIVE_OPENCENSUS, KNATIVE_OPENTELEMETRY, RevisionKey, RevisionRef
from autoscaler.metrics.names import MetricNames
from autoscaler.metrics.promql import (
    QueryAnswers,
    assemble_observations,
    build_queries,
    format_window,
    parse_vector,
)
from autoscaler.tuner.observation import LATENCY_BUCKETS_MS

IRIS = RevisionRef("models", "iris-00001")
WINE = RevisionRef("shop", "wine-00002")
OC_SEL = 'namespace_name=~"models|shop", revision_name=~"iris\\\\-00001|wine\\\\-00002"'
OT_SEL = 'k8s_namespace_name=~"models|shop", kn_revision_name=~"iris\\\\-00001|wine\\\\-00002"'


@pytest.mark.parametrize(
    ("names", "figure", "expected"),
    [
        pytest.param(
            KNATIVE_OPENCENSUS, "requests",
            'sum by (namespace_name, revision_name) (increase({__name__=~"revision_app_request_count(_total)?", '
            + OC_SEL + "}[30s]))",
            id="opencensus-requests",
        ),
        pytest.param(
            KNATIVE_OPENCENSUS, "latency_buckets",
            "sum by (namespace_name, revision_name, le) (increase(revision_app_request_latencies_bucket{"
            + OC_SEL + "}[30s]))",
            id="opencensus-buckets",
        ),
        pytest.param(
            KNATIVE_OPENCENSUS, "latency_sum",
            "sum by (namespace_name, revision_name) (increase(revision_app_request_latencies_sum{"
            + OC_SEL + "}[30s]))",
            id="opencensus-sum",
        ),
        pytest.param(
            KNATIVE_OPENCENSUS, "replicas",
            "count by (namespace_name, revision_name) (group by (namespace_name, revision_name, pod_name) "
            "(last_over_time(revision_app_request_latencies_count{" + OC_SEL + "}[30s])))",
            id="opencensus-replicas",
        ),
        pytest.param(
            KNATIVE_OPENCENSUS, "in_flight",
            "min by (namespace_name, revision_name) (min_over_time(autoscaler_panic_request_concurrency{" + OC_SEL + "}[30s]) unless changes(autoscaler_panic_request_concurrency{"
            + OC_SEL + "}[30s]) == 0) or min by (namespace_name, revision_name) (min_over_time(autoscaler_panic_request_concurrency{" + OC_SEL + "}[30s]))",
            id="opencensus-in-flight",
        ),
        pytest.param(
            KNATIVE_OPENTELEMETRY, "in_flight",
            "min by (k8s_namespace_name, kn_revision_name) (min_over_time(kn_revision_concurrency_panic{" + OT_SEL + "}[30s]) unless changes(kn_revision_concurrency_panic{"
            + OT_SEL + "}[30s]) == 0) or min by (k8s_namespace_name, kn_revision_name) (min_over_time(kn_revision_concurrency_panic{" + OT_SEL + "}[30s]))",
            id="opentelemetry-in-flight",
        ),
        pytest.param(
            KNATIVE_OPENCENSUS, "concurrency",
            "min by (namespace_name, revision_name) (avg_over_time(autoscaler_panic_request_concurrency{" + OC_SEL + "}[30s]) unless changes(autoscaler_panic_request_concurrency{"
            + OC_SEL + "}[30s]) == 0) or min by (namespace_name, revision_name) (avg_over_time(autoscaler_panic_request_concurrency{" + OC_SEL + "}[30s]))",
            id="opencensus-concurrency",
        ),
        pytest.param(
            KNATIVE_OPENTELEMETRY, "concurrency",
            "min by (k8s_namespace_name, kn_revision_name) (avg_over_time(kn_revision_concurrency_panic{" + OT_SEL + "}[30s]) unless changes(kn_revision_concurrency_panic{"
            + OT_SEL + "}[30s]) == 0) or min by (k8s_namespace_name, kn_revision_name) (avg_over_time(kn_revision_concurrency_panic{" + OT_SEL + "}[30s]))",
            id="opentelemetry-concurrency",
        ),
        pytest.param(
            KNATIVE_OPENTELEMETRY, "requests",
            "sum by (k8s_namespace_name, kn_revision_name) (increase(kn_serving_invocation_duration_seconds_count{"
            + OT_SEL + "}[30s]))",
            id="opentelemetry-requests-from-histogram-count",
        ),
        pytest.param(
            KNATIVE_OPENTELEMETRY, "latency_buckets",
            "sum by (k8s_namespace_name, kn_revision_name, le) (increase(kn_serving_invocation_duration_seconds_bucket{"
            + OT_SEL + "}[30s]))",
            id="opentelemetry-buckets",
        ),
        pytest.param(
            KNATIVE_OPENTELEMETRY, "replicas",
            "count by (k8s_namespace_name, kn_revision_name) (group by (k8s_namespace_name, kn_revision_name, "
            "k8s_pod_name) (last_over_time(kn_serving_invocation_duration_seconds_count{" + OT_SEL + "}[30s])))",
            id="opentelemetry-replicas",
        ),
    ],
)  # fmt: skip
def test_one_query_per_figure_for_all_revisions(
    names: MetricNames, figure: str, expected: str
) -> None:
    queries = build_queries(names, [WINE, IRIS, IRIS], 30.0)
    assert getattr(queries, figure) == expected
    assert len(queries.items()) == 6
    # names without the autoscaler's gauge: four queries
    plain = MetricNames("ns", "rev", "pod", "h", "ms")
    assert len(build_queries(plain, [IRIS], 30.0).items()) == 4


def test_requests_in_flight_all_through_an_interval_with_none_finished() -> None:
    # 3 ready replicas, no request finished in 30 s, the autoscaler's panic-window gauge never
    # under 6 in the window: 2 in flight per replica (the tuner can tell they are held). With
    # requests finished, or no ready replica, the completions' figure stands.
    def answers(requests: float, held: float) -> QueryAnswers:
        return QueryAnswers(
            requests=[(oc("models", "iris-00001"), requests)],
            latency_buckets=[],
            latency_sum=[(oc("models", "iris-00001"), 1500.0 * requests)],
            replicas=[],
            in_flight=[(oc("models", "iris-00001"), held)],
        )

    for ready, requests, held, concurrency, says in (
        (3, 0.0, 6.0, 2.0, "6 in flight at every sample of it with none finished"),
        (3, 10.0, 6.0, 15.0 / 30 / 3, ""),
        (3, 0.0, 0.0, 0.0, ""),
        (0, 0.0, 6.0, 0.0, ""),
    ):
        ref = RevisionRef("models", "iris-00001", ready_replicas=ready, container_concurrency=4)
        got = assemble_observations(KNATIVE_OPENCENSUS, [ref], answers(requests, held), 30.0, 9.0)
        obs, reason = got[ref.key]
        assert obs is not None
        assert obs.container_concurrency == 4  # the revision's, for the tuner
        assert obs.avg_concurrency_per_replica == pytest.approx(concurrency), reason
        assert (says in reason) if says else ("in flight" not in reason), reason


def test_the_autoscalers_gauge_averaged_over_the_window_is_the_concurrency() -> None:
    # 2 ready replicas (and 2 at the previous tick); 4 requests of 20 s finished in a 30 s
    # window (80 s of request time: 1.33 per replica from completions), but the autoscaler's
    # gauge averaged 3 over the window: 1.5 per replica, time-weighted (the tuner then keeps
    # its history and puts longer requests where they lived).
    ref = RevisionRef("models", "iris-00001", ready_replicas=2)
    rev = oc("models", "iris-00001")

    def observe(
        weighted: float | None,
        requests: float = 4.0,
        held: float | None = None,
        before: int | None = 2,
    ) -> tuple[Any, str]:
        a = QueryAnswers(
            requests=[(rev, requests)],
            latency_buckets=[],
            latency_sum=[(rev, 20_000.0 * requests)],
            replicas=[],
            in_flight=[] if held is None else [(rev, held)],
            concurrency=[] if weighted is None else [(rev, weighted)],
        )
        ready_before = {} if before is None else {ref.key: before}
        return assemble_observations(KNATIVE_OPENCENSUS, [ref], a, 30.0, 9.0, ready_before)[ref.key]

    obs, reason = observe(3.0)
    assert obs is not None
    assert obs.avg_concurrency_per_replica == pytest.approx(1.5)
    assert not obs.concurrency_from_completions
    assert "time-weighted from autoscaler_panic_request_concurrency" in reason
    # the request time of the finished ones stands in: without the gauge; for a revision that
    # started from zero in the window (the gauge counts requests waiting at the activator);
    # with the gauge at 0 (a series kept by an autoscaler replica that no longer decides)
    for weighted, before in ((None, 2), (3.0, 0), (3.0, None), (0.0, 2)):
        obs, reason = observe(weighted, before=before)
        assert obs is not None
        assert obs.avg_concurrency_per_replica == pytest.approx(80.0 / 30.0 / 2), (weighted, before)
        assert obs.concurrency_from_completions and "time-weighted" not in reason
    # none finished: in flight all through the window (lowest above 0) reads the average ...
    obs, reason = observe(3.0, requests=0.0, held=1.0)
    assert obs is not None and obs.avg_concurrency_per_replica == pytest.approx(1.5)
    assert "in flight at every sample" in reason
    # ... but with the gauge at 0 at some sample, none was in flight throughout: 0, as when
    # no gauge was read (the tuner's count of how long they have been in flight ends)
    obs, reason = observe(3.0, requests=0.0, held=0.0)
    assert obs is not None and obs.avg_concurrency_per_replica == 0.0 and obs.in_flight_known


def test_no_sample_of_the_gauge_with_none_finished_is_in_flight_unknown() -> None:
    # The gauge's series has no sample in the window (the autoscaler scraped too seldom): how
    # many are in flight is unknown, not 0. With a sample, or with requests finished, or with
    # names that have no such gauge, it is known.
    ref = RevisionRef("models", "iris-00001", ready_replicas=2)

    def observe(names: MetricNames, requests: float, held: list[Any]) -> tuple[Any, str]:
        a = QueryAnswers(
            requests=[(oc("models", "iris-00001"), requests)],  # series, with 0 or more
            latency_buckets=[],
            latency_sum=[],
            replicas=[],
            in_flight=held,
        )
        return assemble_observations(names, [ref], a, 30.0, 9.0)[ref.key]

    obs, reason = observe(KNATIVE_OPENCENSUS, 0.0, [])
    assert obs is not None and not obs.in_flight_known
    assert obs.avg_concurrency_per_replica == 0.0
    assert "no sample of autoscaler_panic_request_concurrency" in reason
    for names, requests, held in (
        (KNATIVE_OPENCENSUS, 0.0, [(oc("models", "iris-00001"), 0.0)]),
        (KNATIVE_OPENCENSUS, 4.0, []),
        (MetricNames("namespace_name", "revision_name", "pod_name", "h", "ms"), 0.0, []),
    ):
        obs, reason = observe(names, requests, held)
        assert obs is not None and obs.in_flight_known, reason


def test_names_with_quotes_and_backslashes_are_escaped() -> None:
    odd = RevisionRef('we"ird', "a\\b")
    q = build_queries(KNATIVE_OPENCENSUS, [odd], 5).latency_sum
    assert 'namespace_name=~"we\\"ird"' in q
    assert 'revision_name=~"a\\\\\\\\b"' in q  # regex-escaped, then string-escaped


@pytest.mark.parametrize(
    ("window_s", "expected"),
    [
        pytest.param(30.0, "30s", id="whole-seconds"),
        pytest.param(1.5, "1500ms", id="fraction"),
        pytest.param(29.9996, "30s", id="rounded-to-ms"),
        pytest.param(0.0001, "1ms", id="at-least-1ms"),
    ],
)
def test_format_window(window_s: float, expected: str) -> None:
    assert format_window(window_s) == expected


def vector(*samples: tuple[dict[str, str], float]) -> dict[str, Any]:
    return {
        "status": "success",
        "data": {
            "resultType": "vector",
            "result": [{"metric": m, "value": [1700000000.0, str(v)]} for m, v in samples],
        },
    }


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        pytest.param({"status": "error", "error": "boom"}, "not a successful", id="error-status"),
        pytest.param({"status": "success", "data": {"resultType": "matrix"}}, "expected a vector", id="matrix"),
        pytest.param(
            {"status": "success", "data": {"resultType": "vector", "result": [{"metric": {}}]}},
            "malformed vector sample", id="no-value",
        ),
        pytest.param("<html>", "not a successful", id="not-json-object"),
    ],
)  # fmt: skip
def test_parse_vector_rejects(payload: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_vector(payload)


def test_parse_vector_reads_nan_as_zero() -> None:
    assert parse_vector(vector(({"a": "b"}, float("nan")))) == [({"a": "b"}, 0.0)]


def oc(ns: str, rev: str, **extra: str) -> dict[str, str]:
    return {"namespace_name": ns, "revision_name": rev, **extra}


def test_assemble_from_answers() -> None:
    # iris: 2 pods seen; 40 requests in 20 s, 10 of them <= 5 ms, 30 in (400, 450];
    # request time 20 s -> 20 / 20 / 2 = 0.5 per replica. wine: no series, API says 0 ready.
    # orphan: no series and no API count -> no data.
    orphan = RevisionRef("models", "orphan-00001")
    answers = QueryAnswers(
        requests=[(oc("models", "iris-00001"), 40.0)],
        latency_buckets=[
            (oc("models", "iris-00001", le="5"), 10.0),
            (oc("models", "iris-00001", le="400"), 10.0),
            (oc("models", "iris-00001", le="450"), 40.0),
            (oc("models", "iris-00001", le="+Inf"), 40.0),
        ],
        latency_sum=[(oc("models", "iris-00001"), 20_000.0)],
        replicas=[(oc("models", "iris-00001"), 2.0)],
    )
    wine = RevisionRef("shop", "wine-00002", ready_replicas=0, applied_target=7.0)
    got = assemble_observations(KNATIVE_OPENCENSUS, [IRIS, wine, orphan], answers, 20.0, 100.0)
    iris_obs, reason = got[RevisionKey("models", "iris-00001")]
    assert iris_obs is not None, reason
    assert (iris_obs.t_s, iris_obs.interval_s, iris_obs.ready_replicas) == (100.0, 20.0, 2)
    assert iris_obs.avg_concurrency_per_replica == pytest.approx(0.5)
    assert iris_obs.request_count == 40
    assert iris_obs.latency_counts[0] == 10.0
    assert iris_obs.latency_counts[LATENCY_BUCKETS_MS.index(450)] == 30.0
    assert sum(iris_obs.latency_counts) == 40.0
    assert iris_obs.latency_sum_ms == pytest.approx(20_000.0)
    assert iris_obs.concurrency_from_completions  # busy time is the latency histogram's _sum
    # increase() extrapolates _sum and each _bucket on its own: the sum bounds no percentile
    assert not iris_obs.sum_matches_counts
    wine_obs, _ = got[RevisionKey("shop", "wine-00002")]
    assert wine_obs is not None
    assert (wine_obs.ready_replicas, wine_obs.request_count, wine_obs.applied_target) == (0, 0, 7.0)
    assert wine_obs.avg_concurrency_per_replica == 0.0
    orphan_obs, why = got[RevisionKey("models", "orphan-00001")]
    assert orphan_obs is None
    assert "no revision_app_request_latencies series" in why


def test_assemble_seconds_histogram_and_api_replica_count() -> None:
    # OpenTelemetry: sum in seconds; 3 ready pods from the API overrule the 1 pod with series.
    ot = {"k8s_namespace_name": "models", "kn_revision_name": "iris-00001"}
    answers = QueryAnswers(
        requests=[(ot, 6.0)],
        latency_buckets=[({**ot, "le": "0.1"}, 6.0), ({**ot, "le": "+Inf"}, 6.0)],
        latency_sum=[(ot, 0.6)],
        replicas=[(ot, 1.0)],
    )
    ref = RevisionRef("models", "iris-00001", ready_replicas=3)
    obs, _ = assemble_observations(KNATIVE_OPENTELEMETRY, [ref], answers, 2.0, 10.0)[ref.key]
    assert obs is not None
    assert obs.ready_replicas == 3
    assert obs.avg_concurrency_per_replica == pytest.approx(0.6 / 2.0 / 3)
    assert obs.latency_sum_ms == pytest.approx(600.0)  # seconds read as ms
    assert sum(obs.latency_counts[: LATENCY_BUCKETS_MS.index(100) + 1]) == pytest.approx(6.0)


def test_ready_replicas_and_no_series_at_all_is_no_data() -> None:
    # series whose increase is zero: no traffic; no series at all with replicas ready: no data
    # (only the autoscaler's gauge is not the revision's request metrics)
    idle, dark = (
        RevisionRef("models", "iris-00001", ready_replicas=2),
        RevisionRef("models", "wine-00001", ready_replicas=2),
    )
    for present in ("requests", "latency_buckets", "latency_sum", "replicas"):
        figures: dict[str, Any] = {
            "requests": [], "latency_buckets": [], "latency_sum": [], "replicas": [],
        }  # fmt: skip
        labels = oc("models", "iris-00001", le="+Inf")
        figures[present] = [(labels, 0.0 if present != "replicas" else 1.0)]
        answers = QueryAnswers(**figures, in_flight=[(oc("models", "wine-00001"), 0.0)])
        got = assemble_observations(KNATIVE_OPENCENSUS, [idle, dark], answers, 30.0, 9.0)
        obs, reason = got[idle.key]
        assert obs is not None and obs.request_count == 0, (present, reason)
        obs, reason = got[dark.key]
        assert obs is None
        assert reason.startswith(
            "no revision_app_request_latencies series nor revision_app_request_count "
            "for models/wine-00001 in Prometheus (namespace_name, revision_name) over the last 30s"
        ), reason
