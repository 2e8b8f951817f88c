"""The Prometheus source: a few batched PromQL queries per tick over the HTTP API.

POSTs each query of ``promql.build_queries`` to ``/api/v1/query`` (form-encoded, so a long
selector is no problem) concurrently with aiohttp. Any failure of any query (connection refused,
timeout, an HTTP error, ``status: error`` in the answer, a malformed answer) fails the tick as a
whole with ``MetricsUnavailable`` naming the server, the query and the error: a partial set of
figures would give observations that do not add up.

The query window is the time since the previous tick (``now_s`` is monotonic), clamped to the
settings' bounds; the first tick uses ``default_window_s``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import aiohttp

from autoscaler.metrics.promql import (
    QueryAnswers,
    assemble_observations,
    build_queries,
    parse_vector,
)
from autoscaler.metrics.settings import PrometheusSettings
from autoscaler.metrics.source import MetricsUnavailable, RevisionKey, RevisionRef
from autoscaler.tuner.observation import RevisionObservation

__all__ = ["PrometheusSource"]


class PrometheusSource:
    """A ``MetricSource`` reading request metrics from a Prometheus server."""

    def __init__(
        self,
        settings: PrometheusSettings | None = None,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self._settings = settings or PrometheusSettings()
        self._session = session
        self._own_session = session is None
        self._last_now_s: float | None = None
        self._ready_before: dict[RevisionKey, int] = {}  # ready replicas at the previous tick
        self.last_reasons: dict[RevisionKey, str] = {}

    @property
    def settings(self) -> PrometheusSettings:
        return self._settings

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self._settings.prometheus_timeout_s)
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None and self._own_session:
            await self._session.close()
        self._session = None

    def window_s(self, now_s: float) -> float:
        """The query window for a tick at ``now_s``."""
        s = self._settings
        raw = s.default_window_s if self._last_now_s is None else now_s - self._last_now_s
        return min(s.max_window_s, max(s.min_window_s, raw))

    async def query(self, promql: str) -> Any:
        """One instant query; the decoded JSON answer. Raises ``MetricsUnavailable``."""
        url = f"{self._settings.prometheus_url}/api/v1/query"
        where = f"Prometheus at {self._settings.prometheus_url}"
        try:
            async with self._client().post(url, data={"query": promql}) as resp:
                try:
                    body: Any = await resp.json(content_type=None)
                except ValueError:
                    body = None
                if isinstance(body, dict) and body.get("status") == "error":
                    raise MetricsUnavailable(
                        f"{where} rejected the query ({resp.status} {body.get('errorType', '')}: "
                        f"{body.get('error', '')}): {promql}"
                    )
                if resp.status != 200:
                    raise MetricsUnavailable(
                        f"{where} answered HTTP {resp.status} {resp.reason}: {promql}"
                    )
                return body
        except TimeoutError:
            raise MetricsUnavailable(
                f"{where} did not answer within {self._settings.prometheus_timeout_s:g} s: {promql}"
            ) from None
        except aiohttp.ClientError as exc:
            raise MetricsUnavailable(f"{where} is unreachable ({exc}): {promql}") from exc

    async def _vector(self, promql: str) -> list[tuple[dict[str, str], float]]:
        body = await self.query(promql)
        try:
            return parse_vector(body)
        except ValueError as exc:
            raise MetricsUnavailable(
                f"Prometheus at {self._settings.prometheus_url} gave an unusable answer ({exc}): {promql}"
            ) from None

    # Prometheus samples on its own: nothing to do between ticks.
    sample_period_s = 0.0

    async def sample(self, revisions: Sequence[RevisionRef], now_s: float) -> None:
        return None

    async def observe(
        self, revisions: Sequence[RevisionRef], now_s: float
    ) -> dict[RevisionKey, RevisionObservation | None]:
        if not revisions:
            return {}
        window_s = self.window_s(now_s)
        queries = build_queries(self._settings.names, revisions, window_s)
        vectors = await asyncio.gather(*(self._vector(q) for _, q in queries.items()))
        got = dict(zip((name for name, _ in queries.items()), vectors, strict=True))
        self._last_now_s = now_s
        answers = QueryAnswers(
            requests=got["requests"],
            latency_buckets=got["latency_buckets"],
            latency_sum=got["latency_sum"],
            replicas=got["replicas"],
            in_flight=got.get("in_flight", []),
            concurrency=got.get("concurrency", []),
        )
        results = assemble_observations(
            self._settings.names, revisions, answers, window_s, now_s, self._ready_before
        )
        # the API's ready counts only (pods seen over a window may include ones gone since)
        self._ready_before = {
            ref.key: ref.ready_replicas for ref in revisions if ref.ready_replicas is not None
        }
        self.last_reasons = {k: reason for k, (_, reason) in results.items()}
        return {k: obs for k, (obs, _) in results.items()}
