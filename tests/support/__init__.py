"""Real parts for the tests: a metrics exporter, a Prometheus server and an
OpenMeter-compatible ingest sink (standard library only), a VictoriaMetrics server,
a Redis Sentinel cluster and a TLS Redis (these two use redis-py), and the local
RabbitMQ with a vhost per test. Nothing here imports meterworker, so the parts can
be used (and tested) on their own.
"""

from .exporter import CounterExporter
from .ports import free_port
from .prometheus import PrometheusServer
from .sink import OpenMeterSink, SinkRequest
from .victoria_metrics import VictoriaMetricsServer

__all__ = ["CounterExporter", "OpenMeterSink", "PrometheusServer", "SinkRequest", "VictoriaMetricsServer", "free_port"]
