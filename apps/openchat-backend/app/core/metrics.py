"""Prometheus metrics, served as text at GET /metrics."""

from collections.abc import Iterable, Iterator
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

HTTP_REQUESTS = Counter("openchat_http_requests_total", "HTTP requests answered", ["method", "handler", "status"])
CHAT_REPLIES = Counter("openchat_chat_replies_total", "Chat replies by how they ended", ["model", "finish_reason"])
TIME_TO_FIRST_TOKEN = Histogram(
    "openchat_time_to_first_token_seconds",
    "From request received to first token sent",
    ["model"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64),
)
TOKENS_PER_SECOND = Histogram(
    "openchat_tokens_per_second",
    "Generation speed of each reply",
    ["model"],
    buckets=(1, 2, 5, 10, 15, 20, 30, 50, 75, 100, 200),
)


class EngineView(Protocol):
    @property
    def model_id(self) -> str: ...

    @property
    def state(self) -> str: ...

    @property
    def slots(self) -> int: ...

    @property
    def restarts(self) -> int: ...

    @property
    def generating(self) -> int: ...

    @property
    def queue_length(self) -> int: ...


def engine_metrics(engines: Iterable[EngineView]) -> bytes:
    """Gauges of one app's local engines, read at scrape time (they live and die with the app)."""
    families: dict[str, GaugeMetricFamily | CounterMetricFamily] = {
        "up": GaugeMetricFamily("openchat_engine_up", "1 when the local engine can generate", labels=["model"]),
        "slots": GaugeMetricFamily("openchat_engine_slots", "Replies the engine generates at once", labels=["model"]),
        "generating": GaugeMetricFamily("openchat_engine_generating", "Replies generating now", labels=["model"]),
        "waiting": GaugeMetricFamily("openchat_queue_length", "Requests waiting for a free slot", labels=["model"]),
        "restarts": CounterMetricFamily(
            "openchat_engine_restarts", "Times the engine died or hung and was restarted", labels=["model"]
        ),
    }
    for engine in engines:
        label = [engine.model_id]
        families["up"].add_metric(label, 1.0 if engine.state == "ready" else 0.0)
        families["slots"].add_metric(label, engine.slots)
        families["generating"].add_metric(label, engine.generating)
        families["waiting"].add_metric(label, engine.queue_length)
        families["restarts"].add_metric(label, engine.restarts)

    class Snapshot(Collector):
        def collect(self) -> Iterator[Metric]:
            yield from families.values()

    registry = CollectorRegistry(auto_describe=False)
    registry.register(Snapshot())
    return generate_latest(registry)
