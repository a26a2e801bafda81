"""Outputs by reference, the one module: a big output is stored and replaced by a marker, a
step's input gets the value back, a marker of another project is data, a terminal shows a
preview. Real store (a directory), no mocks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lockstep.errors import ExecutionError
from lockstep.outputs_by_reference import (
    INLINE_MAX,
    REF,
    externalize,
    internalize,
    load,
    owned_marker,
    preview,
    reserved_key,
)
from lockstep.storage.blobs import DirectoryBlobStore

BIG = list(range(INLINE_MAX // 2))


def _stored(tmp_path: Path) -> tuple[DirectoryBlobStore, dict[str, Any]]:
    blobs = DirectoryBlobStore(tmp_path / "blobs")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    outputs = externalize({"small": "x", "big": BIG}, blobs, "outputs/p1/r1/a", scratch=scratch)
    return blobs, outputs


def test_a_big_output_becomes_a_marker_and_comes_back_in_a_steps_input(tmp_path: Path) -> None:
    blobs, outputs = _stored(tmp_path)
    assert outputs["small"] == "x"
    ref = outputs["big"][REF]
    assert ref["key"] == "outputs/p1/r1/a/1.json"
    assert ref["size"] == len(json.dumps(BIG, separators=(",", ":")))
    assert ref["preview"].startswith("[0,1,2,")
    assert internalize({"in": [outputs["big"]]}, blobs, "p1") == {"in": [BIG]}


def test_a_marker_of_another_project_stays_data_and_is_never_read(tmp_path: Path) -> None:
    blobs, outputs = _stored(tmp_path)
    assert internalize({"in": outputs["big"]}, blobs, "p2") == {"in": outputs["big"]}
    assert owned_marker(outputs["big"], "p2") is None
    with pytest.raises(ExecutionError, match="another project's data"):
        load(blobs, outputs["big"][REF]["key"], "p2")
    forged = {REF: {"key": "outputs/p1/../p2/x.json", "size": 1}}
    assert owned_marker(forged, "p1") is None


def test_the_marker_a_server_streams_names_its_key_and_digest(tmp_path: Path) -> None:
    _, outputs = _stored(tmp_path)
    found = owned_marker(outputs["big"], "p1")
    assert found is not None
    assert found.key == outputs["big"][REF]["key"]
    assert len(found.sha256) == 64


def test_a_terminal_shows_a_markers_size_and_preview_never_the_value(tmp_path: Path) -> None:
    _, outputs = _stored(tmp_path)
    shown = preview(outputs["big"])
    size = outputs["big"][REF]["size"]
    assert shown is not None
    assert shown.startswith(f"<{size:,} bytes, stored by reference> [0,1,2,")
    assert len(shown) < 150
    assert preview({"a": 1}) is None
    # a marker written as data with a size of the wrong type still renders, without a size
    assert preview({REF: {"size": "big", "preview": "p"}}) == "<? bytes, stored by reference> p…"


def test_a_key_reserved_for_markers_is_found_anywhere_in_a_value() -> None:
    assert reserved_key({"a": [{"b": 1}, {"x/y": {REF: {}}}]}) == "/a/1/x~1y"
    assert reserved_key({"a": [1, "x"]}) is None
