"""One entry point for every workflow format: ``workflow.yaml``, the JSON state machine, and
``kind: pipeline`` (published and versioned like the others, deployed instead of run)."""

from __future__ import annotations

import os
from typing import Any

from lockstep.errors import InvalidRequest, LockstepError
from lockstep.spec.blueprint_files import BlueprintFiles, PublishedBlueprints, working_copy
from lockstep.spec.load import LoadedSpec, load_spec, read_workflow_file
from lockstep.spec.machine import LoadedMachine, is_machine, load_machine
from lockstep.spec.pipeline_checks import LoadedPipeline, is_pipeline, load_pipeline
from lockstep.spec.yamlsafe import MAX_BYTES, parse_text

Loaded = LoadedSpec | LoadedMachine | LoadedPipeline
#: what a run can be made of
Runnable = LoadedSpec | LoadedMachine


def _looks_like_machine(data: str | bytes, file: str, max_bytes: int) -> bool:
    marker = b"workflowName" if isinstance(data, bytes) else "workflowName"
    if marker not in data:  # type: ignore[operator]
        return False
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    if len(text) > max_bytes:
        return False  # load_spec reports the size
    try:
        return is_machine(parse_text(text, file).data)
    except LockstepError:
        return False  # not parseable: load_spec says why


def _looks_like_pipeline(data: str | bytes, max_bytes: int) -> bool:
    marker = b"kind" if isinstance(data, bytes) else "kind"
    if marker not in data:  # type: ignore[operator]
        return False
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    if len(text) > max_bytes:
        return False  # load_spec reports the size
    try:
        return is_pipeline(parse_text(text, "<probe>").data)
    except LockstepError:
        return False  # not parseable: load_spec says why


def load_workflow(
    data: str | bytes,
    file: str = "workflow.yaml",
    *,
    max_bytes: int = MAX_BYTES,
    files: BlueprintFiles | None = None,
    path: str | None = None,
    published: PublishedBlueprints | None = None,
    owner: str | None = None,
    published_later: bool = False,
) -> Loaded:
    """Parse and validate either format; raise ``SpecError`` listing every problem found.
    ``files`` and ``path`` place it in its repository, to expand the blueprints it uses;
    ``published`` resolves the published ones (``load_spec``)."""
    if _looks_like_machine(data, file, max_bytes):
        return load_machine(data, file, max_bytes=max_bytes)
    if _looks_like_pipeline(data, max_bytes):
        return load_pipeline(data, file, max_bytes=max_bytes, files=files, path=path)
    return load_spec(
        data,
        file,
        max_bytes=max_bytes,
        files=files,
        path=path,
        published=published,
        owner=owner,
        published_later=published_later,
    )


def load_workflow_file(path: str | os.PathLike[str], *, max_bytes: int = MAX_BYTES) -> Loaded:
    """Either format from a file, or from a directory's ``workflow.yaml`` (or ``.json``); a
    workflow's blueprint files are read from the working copy around it, its published
    blueprints (``DEF@SELECTOR``) are left for the server to expand when it is sent."""
    raw, name = read_workflow_file(path, max_bytes=max_bytes)
    files, where = working_copy(name, max_bytes=max_bytes)
    return load_workflow(
        raw, name, max_bytes=max_bytes, files=files, path=where, published_later=True
    )


def runnable(loaded: Loaded) -> Runnable:
    """``loaded`` when a run can be made of it; a pipeline is refused with what to do."""
    if isinstance(loaded, LoadedPipeline):
        raise InvalidRequest(
            f"'{loaded.name}' is a pipeline (kind: pipeline): it is deployed, not run; "
            "publish it, then `lockstep plan DEPLOYMENT --version DEF@N` and `lockstep deploy`"
        )
    return loaded


def step_count(loaded: Loaded) -> int:
    """Steps of a workflow or a state machine; nodes of a pipeline."""
    if isinstance(loaded, LoadedPipeline):
        return len(loaded.spec.nodes)
    return len(loaded.steps) if isinstance(loaded, LoadedMachine) else len(loaded.spec.all_steps())


def unit_noun(loaded: Loaded) -> str:
    return "nodes" if isinstance(loaded, LoadedPipeline) else "steps"


def params_schema(loaded: Loaded) -> dict[str, Any] | None:
    """What a run's params must satisfy: ``params``, or a state machine's first input."""
    loaded = runnable(loaded)
    if isinstance(loaded, LoadedMachine):
        return loaded.steps[loaded.start].input_schema
    return loaded.spec.params


def spec_name(loaded: Loaded) -> str:
    return loaded.name if isinstance(loaded, LoadedMachine | LoadedPipeline) else loaded.spec.name


def plain_data(loaded: Loaded) -> dict[str, Any]:
    """The document as plain data, for diffs."""
    if isinstance(loaded, LoadedMachine):
        return loaded.data
    return loaded.spec.model_dump(by_alias=True, exclude_defaults=True, mode="json")
