"""Real parts for the tests: a metrics exporter, a Prometheus server and an
OpenMeter-compatible ingest sink. Standard library only; nothing here imports
meterworker, so the parts can be used (and tested) on their own.
"""

from .exporter import CounterExporter
from .ports import free_port
from .prometheus import PrometheusServer
from .sink import OpenMeterSink, SinkRequest

__all__ = ["CounterExporter", "OpenMeterSink", "PrometheusServer", "SinkRequest", "free_port"]
