"""The direct source: scrape every replica's queue-proxy and fold the scrapes into observations.

All replicas of all revisions are read concurrently with aiohttp, each with a short timeout; a
replica that fails (refused, timed out, not 200, not Prometheus text, a request count NaN,
infinite or below zero) counts as not answering and does not affect the others. Each URL of a
replica is read and decoded on its own, by the answer's Content-Type: the autoscaler ``Stat``
in protobuf (what port 9090 of a Knative ≥ 1.6 queue-proxy serves; asked for with ``Accept:
application/protobuf``, Prometheus text as the fallback) or Prometheus text (older
queue-proxies, port 9091, one-machine mode). A URL that only carries gauges
(``ReplicaEndpoint.gauge_urls``) failing or serving garbage means no gauges for that replica,
not a replica down: its request metrics still count. A URL's failure is logged when it starts
(and at DEBUG while it lasts), not at every sampling round. The interval arithmetic is
``ScrapeLedger``'s; a revision whose figures it cannot make an observation of (counts that add
up past a float) has none this tick, its baselines kept. Between ticks the controller calls
``sample`` every ``concurrency_sample_period_s`` with the revisions it last observed and their
replicas as listed then: one more scrape of each replica's gauge URLs, for the concurrency
gauges. This source never fails as a whole: each revision gets its observation or None with a
reason, kept in ``last_reasons`` for the controller's condition message.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import aiohttp

from autoscaler.metrics.exposition import (
    ReplicaSample,
    merge_samples,
    parse_replica_text,
    parse_stat_protobuf,
)
from autoscaler.metrics.ledger import ScrapeLedger
from autoscaler.metrics.names import KNATIVE_OPENCENSUS, MetricNames
from autoscaler.metrics.settings import ScrapeSettings
from autoscaler.metrics.source import ReplicaEndpoint, RevisionKey, RevisionRef
from autoscaler.tuner.observation import RevisionObservation

__all__ = ["DirectScrapeSource"]

log = logging.getLogger(__name__)

# The Content-Types of a protobuf ``Stat`` (Knative sets the first).
PROTOBUF_CONTENT_TYPES = frozenset({"application/protobuf", "application/x-protobuf"})
# What a gauge URL is asked for: the Stat where the queue-proxy negotiates, else text.
GAUGE_ACCEPT = "application/protobuf, text/plain;version=0.0.4;q=0.5, */*;q=0.1"
TEXT_ACCEPT = "text/plain;version=0.0.4, */*;q=0.1"
_FAILURES = (aiohttp.ClientError, TimeoutError, ValueError, LookupError)


class DirectScrapeSource:
    """A ``MetricSource`` reading each replica's queue-proxy: Prometheus text and the protobuf
    ``Stat`` (Knative ≤ 1.18 names by default)."""

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
        self._failing: dict[str, str] = {}  # URL -> its failure, logged when it started

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

    async def _fetch(self, url: str, accept: str) -> tuple[str, bytes, str]:
        """The answer's Content-Type, body and charset; raises on anything but 200."""
        async with self._client().get(url, headers={"Accept": accept}) as resp:
            if resp.status != 200:
                raise aiohttp.ClientResponseError(
                    resp.request_info, (), status=resp.status, message=resp.reason or ""
                )
            return resp.content_type, await resp.read(), resp.charset or "utf-8"

    async def _read(
        self, ref: RevisionRef, replica: ReplicaEndpoint, url: str, gauges: bool
    ) -> ReplicaSample | None:
        """One URL of a replica decoded, or None (its failure logged when it starts)."""
        try:
            content_type, body, charset = await self._fetch(
                url, GAUGE_ACCEPT if gauges else TEXT_ACCEPT
            )
            if content_type in PROTOBUF_CONTENT_TYPES:
                return ReplicaSample(gauges=parse_stat_protobuf(body))
            return parse_replica_text(
                [body.decode(charset)], self._names, ref.namespace, ref.revision
            )
        except _FAILURES as exc:  # UnicodeDecodeError is a ValueError
            if url in self._failing:
                log.debug("scrape of %s failed again: %r", url, exc)
            else:
                # unreadable content is the queue-proxy's (or our) fault, not a pod going away
                unreadable = isinstance(exc, ValueError | LookupError)
                log.log(
                    logging.WARNING if unreadable else logging.INFO,
                    "scrape of %s/%s pod %s (%s at %s) failed: %r%s; said again only after it "
                    "has answered",
                    ref.namespace, ref.revision, replica.pod, "gauges" if gauges else "metrics",
                    url, exc, ", its gauges left out" if gauges else "",
                )  # fmt: skip
            self._failing[url] = repr(exc)
            return None

    async def _scrape(
        self, ref: RevisionRef, replica: ReplicaEndpoint, gauges_only: bool = False
    ) -> ReplicaSample | None:
        """The replica's sample, or None when it did not answer: a URL with request metrics
        failed, or every URL did. A failing URL that only has gauges leaves them out."""
        urls = (replica.gauge_urls or replica.urls) if gauges_only else replica.urls
        gauge_only = set(replica.gauge_urls)
        parts = await asyncio.gather(*(self._read(ref, replica, u, u in gauge_only) for u in urls))
        answered = [p for p in parts if p is not None]
        for url, part in zip(urls, parts, strict=True):
            if part is not None and self._failing.pop(url, None) is not None:
                log.debug("scrape of %s answers again", url)
        if not answered or any(
            p is None and u not in gauge_only for u, p in zip(urls, parts, strict=True)
        ):
            return None
        return merge_samples(answered)

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
        listed = {u for ref in revisions for r in ref.replicas for u in r.urls}
        self._failing = {u: e for u, e in self._failing.items() if u in listed}
        out: dict[RevisionKey, RevisionObservation | None] = {}
        self.last_reasons = {}
        for ref in revisions:
            try:
                result = self._ledger.record(ref, by_revision[ref.key], now_s)
            except (ArithmeticError, ValueError) as exc:
                # figures no observation can hold: this revision has no data this tick (its
                # baselines kept, so the next tick counts the interval), the others theirs
                log.warning("figures of %s unusable at this tick: %r", ref.key, exc)
                out[ref.key] = None
                self.last_reasons[ref.key] = f"figures unusable: {exc}"
                continue
            out[ref.key] = result.observation
            self.last_reasons[ref.key] = result.reason
        return out
