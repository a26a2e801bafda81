"""The patterns of the names a ``workflow.yaml`` holds, and its limits, without the models.

The API validates paths and queries against them; it imports this module rather than
``spec.models``, so that reading records never builds the spec's pydantic models.
"""

from __future__ import annotations

NAME_PATTERN = r"^[a-z0-9][a-z0-9-]*$"
STEP_ID_PATTERN = r"^[A-Za-z_][A-Za-z0-9_-]*$"
#: a step as recorded: its id, or ``id[i]`` for item i of a for_each step
RECORDED_STEP_PATTERN = r"^[A-Za-z_][A-Za-z0-9_-]{0,62}(\[[0-9]{1,5}\])?$"
ENV_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
SECRET_NAME_PATTERN = r"^[A-Z_][A-Z0-9_]*$"  # noqa: S105 - a name pattern, not a secret
#: the most items one for_each may expand to
MAX_ITEMS = 50_000
#: the most replicas one placement group of a pipeline may have (a typo such as 1000 is refused)
MAX_REPLICAS = 100
