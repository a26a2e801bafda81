"""Triggers on instances: what an instance's own ``triggers:`` mean.

An instance (a definition pinned to a ref, with default params and a pool) may carry a
``triggers:`` mapping of the same shape as workflow.yaml's, given when it is created and
replaced as a whole later (an empty mapping removes them).

* **What registers.** An instance registers exactly the ids its own mapping names, no more.
  The file's triggers keep running the *definition* as they always did (``D@N``, the version
  ``$LIVE`` names), once, whatever instances exist: a file trigger is never multiplied per
  instance.
* **Inheriting by id.** When an instance names an id the live version's file also has, its
  entry is laid over the file's: field by field, the instance's winning (``params`` name by
  name). ``{tick: {}}`` runs the file's ``tick`` for this instance too; ``{tick: {every:
  1h}}`` changes only its interval; ``{tick: {enabled: false}}`` registers it disabled (no
  fires for the instance; the file's own ``tick`` still runs the definition). An id the file
  does not have must be a whole trigger on its own. The inherited fields follow ``$LIVE``:
  when it moves the instance's triggers are registered again over the new version's file,
  and a move that would leave one invalid is refused.
* **What a fire runs.** The instance, as ``lockstep instances run`` would: its ref resolved
  at the fire, its default params with the trigger's rendered params over them, its pool.
  The run records the instance; its cause names the trigger by its registered id.
* **Registered ids.** ``<instance>/<trigger id>`` (neither name can hold a '/'), in the same
  ``triggers`` table as the file's, so ``triggers list|pause|resume|fire|history`` and
  ``schedules backfill`` take them as they are, and their fires and Schedules never meet the
  file's. A webhook trigger of an instance answers at
  ``POST /api/v1/hooks/{project}/{definition}/{instance}/{trigger}``; a ``git`` trigger of an
  instance fires for that instance only, when its own ref moves.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from lockstep.errors import InvalidRequest, SpecError
from lockstep.spec.triggers import TriggerSpec

#: between an instance's name and its trigger's id in a registered trigger's id
SEPARATOR = "/"
#: the most triggers one instance may carry
MAX_TRIGGERS = 50


def registered_id(instance: str, trigger: str) -> str:
    return f"{instance}{SEPARATOR}{trigger}"


def merged(
    file: Mapping[str, TriggerSpec], own: Mapping[str, Any], instance: str
) -> dict[str, TriggerSpec]:
    """The instance's triggers as they register: each of ``own`` over the file's trigger of
    its id. Raises ``InvalidRequest``, one line naming the field, for the first problem."""
    if not isinstance(own, Mapping):
        raise InvalidRequest(
            f"triggers of instance '{instance}' must be a mapping of trigger id to trigger"
        )
    if len(own) > MAX_TRIGGERS:
        raise InvalidRequest(
            f"instance '{instance}' has {len(own)} triggers; at most {MAX_TRIGGERS}"
        )
    data: dict[str, Any] = {}
    for tid, entry in own.items():
        if not isinstance(entry, Mapping):
            raise InvalidRequest(
                f"instance '{instance}': triggers.{tid} must be a mapping (e.g. "
                "{every: 1h} or {enabled: false})"
            )
        base = file[tid].model_dump(mode="json", exclude_unset=True) if tid in file else {}
        mixed = {**base, **entry}
        if isinstance(base.get("params"), dict) and isinstance(entry.get("params"), Mapping):
            mixed["params"] = {**base["params"], **entry["params"]}
        data[str(tid)] = mixed
    return _checked(data, instance)


def _checked(data: dict[str, Any], instance: str) -> dict[str, TriggerSpec]:
    """Validate ``data`` exactly as workflow.yaml's ``triggers:`` are (the models, then
    ``check_triggers``): it is checked inside the smallest workflow that can hold it."""
    from lockstep.spec.load import load_spec

    if not data:
        return {}
    probe = {"name": "instance-triggers", "steps": {"x": {"run": "true"}}, "triggers": data}
    try:
        # JSON is YAML; default=str: a start_at read from YAML is a datetime
        loaded = load_spec(json.dumps(probe, default=str), f"instance '{instance}'")
    except SpecError as exc:
        first = exc.diagnostics[0]
        where = ".".join(first.path.strip("/").split("/")) or "triggers"
        raise InvalidRequest(f"instance '{instance}': {where}: {first.message}") from None
    return dict(loaded.spec.triggers)
