"""Temporal's Rust core logs to the console by itself (e.g. one ``WARN
temporalio_client::retry`` line per retry while the engine is away). lockstep says what
happened in its own words instead: the core's records go to the Python logger
``lockstep.temporal_core``, which prints nothing unless an operator attaches a handler."""

from __future__ import annotations

import logging

from temporalio.runtime import (
    LogForwardingConfig,
    LoggingConfig,
    Runtime,
    TelemetryConfig,
    TelemetryFilter,
)

CORE_LOGGER = "lockstep.temporal_core"
_installed = False


def quiet_runtime() -> None:
    """Make the default Temporal runtime forward its logs instead of printing them. Call
    before the first client connects (later calls do nothing)."""
    global _installed
    if _installed:
        return
    logger = logging.getLogger(CORE_LOGGER)
    logger.propagate = False
    logger.addHandler(logging.NullHandler())
    forward = LogForwardingConfig(logger=logger)
    filter_ = TelemetryFilter(core_level="ERROR", other_level="ERROR")
    telemetry = TelemetryConfig(logging=LoggingConfig(filter=filter_, forwarding=forward))
    Runtime.set_default(Runtime(telemetry=telemetry), error_if_already_set=False)
    _installed = True
