"""The direct source: scrape every replica's queue-proxy and fold the scrapes into observations.

All replicas of all revisions are read concurrently with aiohttp, each with a short timeout; a
replica that fails (refused, timed out, not 200, not Prometheus text) counts as not answering
and does not affect the others. The interval arithmetic is ``ScrapeLedger``'s. Between ticks
the controller calls ``sample`` every ``concurrency_sample_period_s`` with the revisions it last
observed and their replicas as listed then: one more scrape of each replica's gauge URLs, for
the concurrency gauges. This source never fails as a whole: each revision gets its observation
or None with a reason, kept in ``last_reasons`` for the controller's condition message.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import aiohttp

from autoscaler.metrics.exposition import ReplicaSample, parse_replica_text
from autoscaler.metrics.ledger import ScrapeLedger
from autoscaler.metrics.names import KNATIVE_OPENCENSUS, MetricNames
from autoscaler.metrics.settings import ScrapeSettings
from autoscaler.metrics.source import ReplicaEndpoint, RevisionKey, RevisionRef
from autoscaler.tuner.observation import RevisionObservation

__all__ = ["DirectScrapeSource"]

log = logging.getLogger(__name__)


class DirectScrapeSource:
    """A ``MetricSource`` reading each replica's Prometheus text (Knative ≤ 1.18 names)."""

    def __init__(
        self,
        settings: ScrapeSettings | None = None,
        names: MetricNames = KNATIVE_OPENCENSUS,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self._settings = settings or ScrapeSettings()
        self._names = names
        self._session = session
        self._own_session = session is None
        self._ledger = ScrapeLedger()
        self.last_reasons: dict[RevisionKey, str] = {}

    @property
    def sample_period_s(self) -> float:
        return self._settings.concurrency_sample_period_s

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self._settings.scrape_timeout_s)
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None and self._own_session:
            await self._session.close()
        self._session = None

    async def _fetch(self, url: str) -> str:
        async with self._client().get(url) as resp:
            if resp.status != 200:
                raise aiohttp.ClientResponseError(
                    resp.request_info, (), status=resp.status, message=resp.reason or ""
                )
            return await resp.text()

    async def _scrape(
        self, ref: RevisionRef, replica: ReplicaEndpoint, gauges_only: bool = False
    ) -> ReplicaSample | None:
        urls = (replica.gauge_urls or replica.urls) if gauges_only else replica.urls
        try:
            texts = await asyncio.gather(*(self._fetch(u) for u in urls))
            return parse_replica_text(texts, self._names, ref.namespace, ref.revision)
        except (aiohttp.ClientError, TimeoutError, ValueError, UnicodeDecodeError) as exc:
            log.info(
                "scrape of %s/%s pod %s failed: %r", ref.namespace, ref.revision, replica.pod, exc
            )
            return None

    async def _scrape_all(
        self, revisions: Sequence[RevisionRef], gauges_only: bool = False
    ) -> dict[RevisionKey, dict[str, ReplicaSample | None]]:
        jobs = [(ref, r) for ref in revisions for r in ref.replicas]
        results = await asyncio.gather(*(self._scrape(ref, r, gauges_only) for ref, r in jobs))
        by_revision: dict[RevisionKey, dict[str, ReplicaSample | None]] = {
            ref.key: {} for ref in revisions
        }
        for (ref, replica), sample in zip(jobs, results, strict=True):
            by_revision[ref.key][replica.pod] = sample
        return by_revision

    async def sample(self, revisions: Sequence[RevisionRef], now_s: float) -> None:
        """One round of concurrency samples of ``revisions``' replicas as listed now (a pod
        started since the last tick included) at ``now_s`` (the clock ``observe`` is given)."""
        by_revision = await self._scrape_all(revisions, gauges_only=True)
        for key, samples in by_revision.items():
            self._ledger.sample(key, samples, now_s)

    async def observe(
        self, revisions: Sequence[RevisionRef], now_s: float
    ) -> dict[RevisionKey, RevisionObservation | None]:
        by_revision = await self._scrape_all(revisions)
        self._ledger.retain(by_revision)
        out: dict[RevisionKey, RevisionObservation | None] = {}
        self.last_reasons = {}
        for ref in revisions:
            result = self._ledger.record(ref, by_revision[ref.key], now_s)
            out[ref.key] = result.observation
            self.last_reasons[ref.key] = result.reason
        return out
