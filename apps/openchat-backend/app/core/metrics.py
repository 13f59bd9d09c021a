"""Prometheus metrics, served as text at GET /metrics."""

from collections.abc import Iterator

from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import REGISTRY, Collector

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


class QueueCollector(Collector):
    """Reads each loaded local model's queue at scrape time."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from app.llm.registry import local_engines

        waiting = GaugeMetricFamily(
            "openchat_queue_length", "Requests waiting for a busy local model", labels=["model"]
        )
        for engine in local_engines():
            waiting.add_metric([engine.path.stem], engine.queue_length)
        yield waiting


REGISTRY.register(QueueCollector())
