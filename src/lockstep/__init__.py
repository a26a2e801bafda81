"""lockstep: a Git-native, durable workflow service on Temporal."""

from __future__ import annotations

from lockstep.errors import LockstepError

__all__ = ["LockstepError", "__version__"]

__version__ = "0.1.0"
