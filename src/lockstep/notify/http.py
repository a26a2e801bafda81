"""The one POST the HTTP channels make: through ``net.GuardedClient`` (the server's
``OutboundPolicy`` after DNS resolution and on every redirect), answered 2xx or failed."""

from __future__ import annotations

import httpx

from lockstep.net import GuardedClient, OutboundPolicy, OutboundRefused
from lockstep.notify.base import DeliveryFailed

TIMEOUT_S = 15.0
#: a receiver's answer is read this far, for the delivery log's error line only
_ANSWER_CHARS = 200


async def post(url: str, body: bytes, headers: dict[str, str], policy: OutboundPolicy) -> None:
    try:
        async with (
            GuardedClient(policy, timeout=TIMEOUT_S) as client,
            client.stream("POST", url, headers=headers, content=body) as response,
        ):
            if 200 <= response.status_code < 300:
                return
            said = (await response.aread())[:_ANSWER_CHARS].decode("utf-8", "replace")
    except OutboundRefused as exc:
        # the address will not change its kind by waiting: no retries, the log says why
        raise DeliveryFailed(f"refused: {exc.reason}", retry=False) from None
    except httpx.HTTPError as exc:
        said = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        raise DeliveryFailed(said) from None
    detail = " ".join(said.split())
    raise DeliveryFailed(f"HTTP {response.status_code}" + (f": {detail}" if detail else ""))
