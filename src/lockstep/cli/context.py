"""Settings for this invocation: the environment, plus global command-line options."""

from __future__ import annotations

from typing import Any

from lockstep.settings import Settings, load_settings

_overrides: dict[str, Any] = {}


def override(**values: Any) -> None:
    _overrides.update({k: v for k, v in values.items() if v is not None})


def settings() -> Settings:
    return load_settings(**_overrides)
