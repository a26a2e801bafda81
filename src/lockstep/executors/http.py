"""The ``http`` and ``noop`` executors: steps that call a service or pass their input on.

An http step sends its input as a JSON body (or as query parameters for GET) and its output
is the JSON object the service answers. The call goes through ``net.GuardedClient``: an
address the worker's ``LOCKSTEP_OUTBOUND_ALLOW`` does not allow (loopback, private,
link-local, …), at the URL or at any redirect, fails the step with nothing sent there.
Neither needs a workspace; the attempt lifecycle checks the input contract before anything is
sent and the output contract before anything downstream sees it.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

from lockstep.engine.types import StepTask
from lockstep.errors import ExecutionError
from lockstep.executors.base import Attempt, Outcome
from lockstep.net import GuardedClient, OutboundPolicy

DEFAULT_TIMEOUT_S = 30.0
#: an answer bigger than this is refused rather than held in memory
MAX_RESPONSE_BYTES = 1024 * 1024
_SHOWN = 200


class HttpStepError(ExecutionError):
    pass


def _object(value: Any, step: str, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise HttpStepError(
            f"step {step!r} {what} must be a JSON object, got {type(value).__name__}"
        )
    return value


async def _call(task: StepTask, outbound: OutboundPolicy, log_lines: list[str]) -> dict[str, Any]:
    config = task.config
    method = str(config.get("method", "POST")).upper()
    url = str(config["url"])
    headers = {str(k): str(v) for k, v in (config.get("headers") or {}).items()}
    timeout = float(config.get("timeout") or task.timeout_s or DEFAULT_TIMEOUT_S)
    body = task.input if task.input is not None else {}
    request: dict[str, Any] = {"headers": headers}
    if method in ("GET", "DELETE"):
        request["params"] = {
            k: json.dumps(v) if not isinstance(v, str) else v for k, v in body.items()
        }
    else:
        request["json"] = body
    log_lines.append(f"{method} {url}")

    def redirected(status: int, to: str) -> None:
        log_lines.append(f"HTTP {status}: redirected to {to}")

    try:
        async with (
            asyncio.timeout(timeout),  # the whole call, redirects included
            GuardedClient(outbound, timeout=timeout) as client,
            client.stream(method, url, on_redirect=redirected, **request) as resp,
        ):
            data = bytearray()
            async for chunk in resp.aiter_bytes():
                data += chunk
                if len(data) > MAX_RESPONSE_BYTES:
                    raise HttpStepError(
                        f"{method} {url} answered more than {MAX_RESPONSE_BYTES} bytes"
                    )
    except (httpx.TimeoutException, TimeoutError):
        raise HttpStepError(f"{method} {url} timed out after {timeout:g}s") from None
    except httpx.HTTPError as exc:
        raise HttpStepError(f"{method} {url} failed: {exc}") from None
    text = data.decode("utf-8", "replace")
    log_lines.append(f"HTTP {resp.status_code} ({len(data)} bytes)")
    if not 200 <= resp.status_code < 300:
        raise HttpStepError(
            f"{method} {url} answered HTTP {resp.status_code}: {' '.join(text.split())[:_SHOWN]}"
        )
    try:
        answer = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError:
        raise HttpStepError(
            f"{method} {url} answered something that is not JSON: {text[:_SHOWN]!r}"
        ) from None
    return _object(answer, task.step_id, "HTTP answer")


class HttpExecutor:
    """Calls the service at the step's ``url``: its input is the request, its JSON answer
    the outputs."""

    needs_workspace = False

    async def run(self, attempt: Attempt) -> Outcome:
        lines: list[str] = []
        try:
            outputs = await _call(attempt.task, attempt.tools.outbound, lines)
        finally:
            attempt.log.write_many(("sys", line) for line in lines)
        return Outcome(ok=True, outputs=outputs)


class NoopExecutor:
    """Hands its input on as its outputs."""

    needs_workspace = False

    async def run(self, attempt: Attempt) -> Outcome:
        task = attempt.task
        outputs = _object(task.input if task.input is not None else {}, task.step_id, "input")
        return Outcome(ok=True, outputs=outputs, handed_on=True)
