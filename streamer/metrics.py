"""Prometheus metrics of one streamer process, all named ``logprompt_*``.

Each :class:`StreamerMetrics` has its own registry, so tests can run several apps in one
process; ``/metrics`` serves that registry.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
_LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)


class StreamerMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.records_in = Counter(
            "logprompt_records_in", "Input records consumed", ["topic"], registry=r)
        self.decode_errors = Counter(
            "logprompt_decode_errors", "Records sent to the dead-letter topic", ["reason"],
            registry=r)
        self.replayed_records = Counter(
            "logprompt_replayed_records",
            "Records re-read to rebuild open windows (after a restart or a rebalance)",
            registry=r)
        self.windows_closed = Counter(
            "logprompt_windows_closed", "Windows closed, by reason", ["reason"], registry=r)
        self.windows_suppressed = Counter(
            "logprompt_windows_suppressed",
            "Windows rebuilt during a replay whose outcome was already committed", registry=r)
        self.windows_scored = Counter(
            "logprompt_windows_scored", "Windows scored (cache hits included)", registry=r)
        self.cache_hits = Counter(
            "logprompt_score_cache_hits", "Windows whose score came from the LRU cache",
            registry=r)
        self.batch_size = Histogram(
            "logprompt_inference_batch_size", "Prompts per model call (after the cache)",
            buckets=_BATCH_BUCKETS, registry=r)
        self.inference_seconds = Histogram(
            "logprompt_inference_seconds", "Model call latency", buckets=_LATENCY_BUCKETS,
            registry=r)
        self.alerts_out = Counter(
            "logprompt_alerts_out", "Alerts produced (committed with their transaction)",
            registry=r)
        self.transactions = Counter(
            "logprompt_transactions", "Transactions by outcome", ["outcome"], registry=r)
        self.commit_seconds = Histogram(
            "logprompt_commit_seconds", "Time to drain scoring and commit a transaction",
            buckets=_LATENCY_BUCKETS, registry=r)
        self.consumer_lag = Gauge(
            "logprompt_consumer_lag", "High watermark minus position", ["topic", "partition"],
            registry=r)
        self.rebalances = Counter(
            "logprompt_rebalances", "Rebalance callbacks", ["kind"], registry=r)
        self.assigned_partitions = Gauge(
            "logprompt_assigned_partitions", "Partitions assigned to this process", registry=r)
        self.inflight_windows = Gauge(
            "logprompt_inflight_windows", "Windows submitted for scoring, not yet produced",
            registry=r)
        self.paused = Gauge(
            "logprompt_backpressure_paused", "1 while partitions are paused for backpressure",
            registry=r)
        self.open_windows = Gauge(
            "logprompt_open_window_keys", "Source keys with an open window", registry=r)
        self.open_window_events = Gauge(
            "logprompt_open_window_events", "Events held in open windows", registry=r)
        self.score_cache_entries = Gauge(
            "logprompt_score_cache_entries", "Entries in the LRU score cache", registry=r)
        self.model_info = Gauge(
            "logprompt_model_info", "The bundle being served (value 1)",
            ["model_version", "providers"], registry=r)
        self.bundle_reloads = Counter(
            "logprompt_bundle_reloads", "Hot reload attempts", ["outcome"], registry=r)

    def set_model(self, model_version: str, providers: list[str]) -> None:
        self.model_info.clear()
        self.model_info.labels(model_version, ",".join(providers)).set(1)
