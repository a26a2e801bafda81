"""Project secrets: encryption at rest (``crypto``) and masking of logs and outputs (``masking``).

Values are stored encrypted, are never returned by the API, never travel through the engine
(a worker resolves them when a step starts) and are replaced with ``***`` wherever a step's
logs or outputs are stored.
"""

from __future__ import annotations

from lockstep.secrets.crypto import SecretBox, SecretError
from lockstep.secrets.masking import MASK, Masker, MaskingLogWriter

__all__ = ["MASK", "Masker", "MaskingLogWriter", "SecretBox", "SecretError"]
