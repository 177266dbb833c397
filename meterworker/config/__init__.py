"""The collector config: models (models.py), loading (loading.py: YAML, `${VAR}` expansion, validation),
how problems are reported (errors.py) and the checks of the seed's config (compat.py)."""

from meterworker.config.errors import ConfigError
from meterworker.config.loading import LoadedConfig, load_config, parse_config
from meterworker.config.models import (
    TLS, BasicAuth, Batching, Config, DropOn, HttpClient, Input, Mapping, MappingOverride, NestedOutput, Output,
    Pipeline, PrometheusInput, Query, QueryItem, RedisSentinel, RedisTls, Settings,
)

__all__ = [
    "BasicAuth", "Batching", "Config", "ConfigError", "DropOn", "HttpClient", "Input", "LoadedConfig", "Mapping",
    "MappingOverride", "NestedOutput", "Output", "Pipeline", "PrometheusInput", "Query", "QueryItem", "RedisSentinel",
    "RedisTls", "Settings", "TLS", "load_config", "parse_config",
]
