"""Containers a dead worker left behind: found by the labels every step container carries
(host and worker pid) and removed when that worker process is gone."""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import partial
from typing import Any

from lockstep.executors.container_runtime import MANAGED_LABEL, ContainerRuntime, remove_container


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


async def reap_leftovers(
    runtime: ContainerRuntime, *, host: str, alive: Callable[[int], bool] = pid_alive
) -> list[str]:
    """Remove every managed container of ``host`` whose worker process is dead; their ids."""

    def _list(api: Any) -> list[dict[str, Any]]:
        filters = {"label": [f"{MANAGED_LABEL}=1", f"lockstep.host={host}"]}
        found: list[dict[str, Any]] = api.containers(all=True, filters=filters)
        return found

    removed = []
    for container in await runtime.call("listing containers", _list):
        pid = (container.get("Labels") or {}).get("lockstep.pid", "")
        if pid.isdigit() and not alive(int(pid)):
            cid = str(container["Id"])
            await runtime.call("removing a leftover container", partial(remove_container, cid=cid))
            removed.append(cid)
    return removed
