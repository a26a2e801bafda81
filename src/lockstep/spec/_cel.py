"""The CEL engine (``common-expression-language``), loaded without its command-line module.

``import cel`` also imports ``cel.cli`` and what it needs, about 0.35 s here, paid by every
lockstep process; the expression engine is the compiled ``cel.cel`` extension alone.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
from pathlib import Path
from types import ModuleType


def _load() -> ModuleType:
    if "cel.cel" in sys.modules:
        return sys.modules["cel.cel"]
    spec = importlib.util.find_spec("cel")  # locates the package without importing it
    if spec is not None and spec.origin is not None:
        for path in Path(spec.origin).parent.glob("cel.*.so"):
            loader = importlib.machinery.ExtensionFileLoader("cel.cel", str(path))
            ext = importlib.util.spec_from_loader("cel.cel", loader)
            if ext is None:
                break
            module = importlib.util.module_from_spec(ext)
            loader.exec_module(module)
            return module
    import cel  # an unexpected layout: the package itself works too, only slower

    return cel


cel = _load()
