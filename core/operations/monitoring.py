"""Scrape-time Prometheus gauges read from Redis: discussions by status, queue depth, live
workers."""

from __future__ import annotations

from collections.abc import Iterator

import redis
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from core.storage.heartbeats import STEP_QUEUE, discussions_by_status, live_workers, queue_stats


class OpsCollector(Collector):
    """Scrape-time gauges read from Redis: discussions by status, queue depth, live workers."""

    def __init__(self, r: redis.Redis, broker: redis.Redis, heartbeat_ttl_s: float) -> None:
        self.r = r
        self.broker = broker
        self.ttl = heartbeat_ttl_s

    def collect(self) -> Iterator[GaugeMetricFamily]:
        by_status = GaugeMetricFamily("orchestrator_discussions", "Discussions by status",
                                      labels=["status"])
        for status, n in sorted(discussions_by_status(self.r).items()):
            by_status.add_metric([status], n)
        yield by_status
        depth, oldest = queue_stats(self.broker)
        q = GaugeMetricFamily("orchestrator_queue_depth", "Steps waiting in the broker",
                              labels=["queue"])
        q.add_metric([STEP_QUEUE], depth)
        yield q
        age = GaugeMetricFamily("orchestrator_queue_oldest_age_seconds",
                                "Age of the oldest queued step (0 when empty)", labels=["queue"])
        age.add_metric([STEP_QUEUE], oldest or 0.0)
        yield age
        yield GaugeMetricFamily("orchestrator_workers_live", "Workers with a fresh heartbeat",
                                value=len(live_workers(self.r, self.ttl)))
