"""OpenTelemetry traces, on only when the operator's standard ``OTEL_*`` variables ask for them.

On (``OTEL_TRACES_EXPORTER=otlp``, or ``OTEL_EXPORTER_OTLP_ENDPOINT`` /
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` set): a process builds a tracer provider with a batch
processor and an OTLP/HTTP exporter (which read the rest of the ``OTEL_*`` variables
themselves), and Temporal's ``TracingInterceptor`` goes on the client ``connect()`` makes, so
the workers using that client trace workflows and activities too, and a span crosses processes
in Temporal's headers: trigger fire -> run -> step attempt -> child run, one trace.

Off (the default): nothing of OpenTelemetry's SDK is imported and no interceptor is added; the
step path pays one test of a module global (``ON``).

lockstep's own attributes ride on the spans the interceptor makes: a workflow's span carries
the ids and names of its input (``lockstep.run_id``, ``lockstep.project``, ``lockstep.workflow``,
``lockstep.trigger``), a step attempt's span what :func:`annotate` is given. Never a param's or
a secret's value: only ids and names.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from lockstep.errors import ConfigError

#: True once :func:`start` has turned tracing on in this process
ON = False
_provider: Any = None
_interceptor: Any = None

#: a workflow input's fields that name what it is: field -> span attribute
_INPUT_NAMES = (
    ("run_id", "lockstep.run_id"),
    ("project", "lockstep.project"),
    ("workflow", "lockstep.workflow"),
    ("definition", "lockstep.workflow"),
    ("trigger", "lockstep.trigger"),
)


# The OTEL_* variables are OpenTelemetry's own (its exporter and batch processor read the rest
# of them): they are read here, not in lockstep's Settings, so that they mean what they mean
# everywhere else.
def _exporters(env: Mapping[str, str]) -> list[str]:
    return [e.strip().lower() for e in env.get("OTEL_TRACES_EXPORTER", "").split(",") if e.strip()]


def wanted(env: Mapping[str, str] = os.environ) -> bool:
    """Whether the standard variables ask for traces: ``OTEL_TRACES_EXPORTER`` set, or an
    OTLP endpoint given (``OTEL_SDK_DISABLED=true`` or ``OTEL_TRACES_EXPORTER=none`` say no
    whatever else is set)."""
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporters = _exporters(env)
    if exporters:
        return exporters != ["none"]
    return bool(
        env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


def start(service: str) -> None:
    """Turn tracing on for this process if the environment asks for it (once; ``service`` is
    the service name unless ``OTEL_SERVICE_NAME`` gives one). Raises ConfigError, one line,
    when traces are asked for but the ``otel`` extra is not installed, or in a way lockstep
    does not export (another exporter than OTLP, or OTLP over gRPC)."""
    global ON, _provider, _interceptor
    if ON or not wanted():
        return
    env = os.environ
    exporters = _exporters(env)
    if exporters and exporters != ["otlp"]:
        raise ConfigError(
            f"OTEL_TRACES_EXPORTER={env['OTEL_TRACES_EXPORTER']} is not supported: lockstep "
            "exports traces over OTLP only (set it to otlp, or to none)"
        )
    for var in ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"):
        protocol = env.get(var, "").strip()
        if protocol and protocol != "http/protobuf":
            raise ConfigError(
                f"{var}={protocol} is not supported: lockstep exports traces over OTLP/HTTP "
                "only (unset it, or set it to http/protobuf)"
            )
        if protocol:
            break  # the traces' own variable wins over the general one
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import SERVICE_NAME, Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError as exc:
        raise ConfigError(
            f"traces are turned on by OTEL_* variables but OpenTelemetry is not installed "
            f"({exc.name}): pip install 'lockstep[otel]', or unset them"
        ) from None
    name = env.get("OTEL_SERVICE_NAME") or service
    # not the global provider: a process's tracing stays lockstep's, and can be started again
    # after shutdown() (the tests' in-process control planes)
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: name}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    _provider = provider
    _interceptor = _make_interceptor(provider.get_tracer("lockstep"))
    ON = True


def client_interceptors() -> list[Any]:
    """What ``Client.connect`` is given: the tracing interceptor when tracing is on."""
    return [_interceptor] if ON else []


def annotate(attributes: Mapping[str, str | int]) -> None:
    """Set ``attributes`` on the current span (the step attempt's, in an activity). Call
    only when ``ON``."""
    from opentelemetry import trace

    trace.get_current_span().set_attributes(dict(attributes))


def shutdown() -> None:
    """Send the spans still batched and stop exporting (a server's or worker's stop)."""
    global ON, _provider, _interceptor
    provider, _provider, _interceptor, ON = _provider, None, None, False
    if provider is not None:
        provider.shutdown()  # flushes the batch processor first


def input_attributes(args: Sequence[Any]) -> dict[str, str]:
    """The ids and names a workflow's input carries (its first argument's fields)."""
    first = args[0] if args else None
    found: dict[str, str] = {}
    for field, key in _INPUT_NAMES:
        value = getattr(first, field, None)
        if isinstance(value, str) and value:
            found[key] = value
    return found


def _make_interceptor(tracer: Any) -> Any:
    """Temporal's interceptor, whose workflow span also carries the workflow input's names.
    Workflow spans are made even for a workflow no traced client started (a Schedule's trigger
    fire), so a fire is the parent of the run it makes."""
    import opentelemetry.trace
    from temporalio import workflow
    from temporalio.contrib.opentelemetry import (
        TracingInterceptor,
        TracingWorkflowInboundInterceptor,
    )
    from temporalio.contrib.opentelemetry._interceptor import _CompletedWorkflowSpanParams
    from temporalio.worker import ExecuteWorkflowInput, WorkflowInterceptorClassInput

    class _WorkflowSpans(TracingWorkflowInboundInterceptor):
        async def execute_workflow(self, input: ExecuteWorkflowInput) -> Any:
            # TracingWorkflowInboundInterceptor.execute_workflow, with lockstep's attributes
            info = workflow.info()
            name = f"RunWorkflow:{info.workflow_type}"
            attributes = {
                "temporalWorkflowID": info.workflow_id,
                "temporalRunID": info.run_id,
                **input_attributes(input.args),
            }
            started_here = self._load_workflow_context_carrier() is None
            if started_here and not workflow.unsafe.is_replaying():
                # no traced client started it (a Schedule's fire): its span is the root of a
                # trace and the parent of what it starts (the interceptor would make each of
                # its activities a trace of its own). A replay later (a worker restarted)
                # loses that parent: what it starts after then begins traces of its own.
                self._workflow_context_carrier = self._extern_functions[
                    "__temporal_opentelemetry_completed_span"
                ](
                    _CompletedWorkflowSpanParams(
                        context={},
                        name=name,
                        attributes=attributes,
                        time_ns=workflow.time_ns(),
                        link_context=None,
                        exception=None,
                        kind=opentelemetry.trace.SpanKind.SERVER,
                        parent_missing=True,
                    )
                )
            with self._top_level_workflow_context(success_is_complete=True):
                if not started_here:
                    self._completed_span(
                        name,
                        kind=opentelemetry.trace.SpanKind.SERVER,
                        additional_attributes=attributes,
                    )
                return await self.next.execute_workflow(input)

    class _Interceptor(TracingInterceptor):
        def workflow_interceptor_class(
            self, input: WorkflowInterceptorClassInput
        ) -> type[TracingWorkflowInboundInterceptor]:
            super().workflow_interceptor_class(input)
            return _WorkflowSpans

    return _Interceptor(tracer, always_create_workflow_spans=True)
