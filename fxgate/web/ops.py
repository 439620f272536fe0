"""Operational endpoints: ``/health``, ``/ready`` and ``/metrics`` (Prometheus)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import ujson
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector
from tornado.web import RequestHandler

from fxgate.node import Node


class _NodeHandler(RequestHandler):
    def initialize(self, node: Node) -> None:
        self.node = node

    def write_json(self, status: int, body: Any) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")
        self.finish(ujson.dumps(body))


def health_body(node: Node) -> dict[str, Any]:
    report = node.health.report
    return {
        **report.to_payload(),
        "ready": node.health.ready,
        "version": node.version,
        "uptime": round(time.time() - node.started_at, 3),
        "connections": len(node.sessions),
    }


class HealthHandler(_NodeHandler):
    """200 when serving and no component is down; 503 otherwise (a load balancer's view)."""

    def get(self) -> None:
        serving = self.node.health.ready and not self.node.stopping
        ok = serving and self.node.health.report.status != "UNHEALTHY"
        self.write_json(200 if ok else 503, health_body(self.node))


class ReadyHandler(_NodeHandler):
    def get(self) -> None:
        ready = self.node.health.ready and not self.node.stopping
        self.write_json(200 if ready else 503, {"ready": ready})


class NodeCollector(Collector):
    """Reads the node's counters at scrape time, so the hot path pays nothing."""

    def __init__(self, node: Node) -> None:
        self.node = node

    def collect(self) -> Iterator[Any]:
        node = self.node
        yield GaugeMetricFamily(
            "fxgate_connections", "Open WebSocket sessions", value=len(node.sessions)
        )
        hub = node.hub
        yield CounterMetricFamily(
            "fxgate_events_published", "Events fanned out by the hub", value=hub.published
        )
        yield CounterMetricFamily(
            "fxgate_messages_delivered",
            "Messages queued to connections",
            value=hub.delivered,
        )
        dropped = CounterMetricFamily(
            "fxgate_events_dropped",
            "Events for channels that are not registered (their plugin disabled)",
            labels=["channel"],
        )
        for name, count in sorted(hub.dropped.items()):
            dropped.add_metric([name], count)
        yield dropped
        subs = GaugeMetricFamily(
            "fxgate_subscribers", "Connections subscribed, by channel", labels=["channel"]
        )
        for name in hub.channels:
            subs.add_metric([name], hub.subscriber_count(name))
        yield subs
        yield CounterMetricFamily("fxgate_ticks", "Quotes produced", value=node.market.ticks)
        local = getattr(node.bus, "local_deliveries", None)
        if local is not None:  # the Redis bus
            yield CounterMetricFamily(
                "fxgate_bus_local_deliveries",
                "Events Redis could not take, delivered to this node's clients only",
                value=local,
            )
        hop = getattr(node.bus, "hop", None)
        if hop is not None:  # the Redis bus
            yield HistogramMetricFamily(
                "fxgate_bus_hop_seconds",
                "Publish to this node's read of it back from Redis, per event of this node",
                buckets=hop.cumulative(),
                sum_value=hop.sum,
            )
        up = GaugeMetricFamily(
            "fxgate_component_up", "1 when a component is healthy", labels=["component"]
        )
        for name, status in node.health.report.components.items():
            up.add_metric([name], 1.0 if status == "HEALTHY" else 0.0)
        yield up


def metrics_registry(node: Node) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(NodeCollector(node))
    return registry


class MetricsHandler(RequestHandler):
    def initialize(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def get(self) -> None:
        self.set_header("Content-Type", CONTENT_TYPE_LATEST)
        self.finish(generate_latest(self.registry))
