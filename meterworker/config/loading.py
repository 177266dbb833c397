"""Loading a config: read the file, parse the YAML, expand `${VAR}`, validate; every problem in one ConfigError."""

import collections.abc
import os
from dataclasses import dataclass, field
from typing import Any

import yaml
from pydantic import ValidationError

from meterworker.config.compat import compatibility_problems
from meterworker.config.env import Expansion
from meterworker.config.errors import ConfigError, describe, format_path, problem_from_pydantic
from meterworker.config.models import Config
from meterworker.config.secrets import strip_secrets
from meterworker.config.yaml_loader import TooLarge, load as load_yaml, yaml_problem


@dataclass
class LoadedConfig:
    config: Config
    warnings: list[str] = field(default_factory=list)




def load_config(path: str | os.PathLike, environ: collections.abc.Mapping[str, str] | None = None) -> LoadedConfig:
    """Read, expand and validate a config file; raises ConfigError listing every problem."""
    name = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        raise ConfigError([f"{name}: file not found"]) from None
    except UnicodeDecodeError:
        raise ConfigError([f"{name}: not a UTF-8 text file"]) from None
    except OSError as e:
        raise ConfigError([f"{name}: cannot read the file: {e.strerror or e}"]) from None
    try:
        data = load_yaml(text)
    except yaml.YAMLError as e:
        raise ConfigError([yaml_problem(name, e)]) from None
    except TooLarge as e:
        raise ConfigError([f"{name}: {e}"]) from None
    return _parse(data, environ, origin=name)


def parse_config(data: dict, environ: collections.abc.Mapping[str, str] | None = None) -> LoadedConfig:
    """Expand and validate an already-parsed YAML tree; raises ConfigError listing every problem."""
    return _parse(data, environ, origin="config")


def _parse(data: Any, environ: collections.abc.Mapping[str, str] | None, origin: str) -> LoadedConfig:
    if data is None:
        raise ConfigError([f"{origin}: the config is empty; expected a mapping with input and output sections"])
    if not isinstance(data, dict):
        raise ConfigError([f"{origin}: expected a mapping with input and output sections at the top level, "
                           f"got {describe(data)}"])
    expansion = Expansion(os.environ if environ is None else environ)
    data = expansion.expand(data, ())
    stripped = strip_secrets(data)
    found = compatibility_problems(data)
    try:
        config = Config.model_validate(data)
    except ValidationError as e:
        found = [problem_from_pydantic(Config, err) for err in e.errors()] + found
    # A field whose variable is unset reports only that, not how its empty value then fails.
    unset = {path for path, _ in expansion.problems}
    problems = expansion.problems + [(path, message) for path, message in found if path not in unset]
    if problems:
        raise ConfigError(list(dict.fromkeys(f"{format_path(path)}: {message}" for path, message in problems)))
    return LoadedConfig(config, [f"{format_path(path)}: {message}" for path, message in expansion.warnings + stripped])
