"""How deep ``workflow:`` steps may nest child runs: 10 unless ``LOCKSTEP_CHILD_MAX_DEPTH``
says otherwise (the limit itself is shown by tests/integration/test_child_runs.py, set to 2)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from lockstep.settings import Settings


def test_children_nest_ten_runs_deep_unless_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().child_max_depth == 10
    monkeypatch.setenv("LOCKSTEP_CHILD_MAX_DEPTH", "2")
    assert Settings().child_max_depth == 2
    monkeypatch.setenv("LOCKSTEP_CHILD_MAX_DEPTH", "0")  # a limit below one is refused
    with pytest.raises(ValidationError, match="child_max_depth"):
        Settings()
