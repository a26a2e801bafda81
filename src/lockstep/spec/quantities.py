"""Container quantities as users write them: memory (``64Mi``, ``4Gi``, ``512M``, bytes) and
CPUs (``2``, ``0.5``, ``500m``), and image references checked before any runtime sees them."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BeforeValidator, WithJsonSchema

_MEMORY = re.compile(r"(\d+(?:\.\d+)?)\s*(Ki|Mi|Gi|Ti|K|M|G|T|k)?")
_FACTORS = {
    None: 1,
    "k": 1000,
    "K": 1000,
    "M": 1000**2,
    "G": 1000**3,
    "T": 1000**4,
    "Ki": 1024,
    "Mi": 1024**2,
    "Gi": 1024**3,
    "Ti": 1024**4,
}
#: below this a container cannot even start; above it the number is surely a typo
MIN_MEMORY = 6 * 1024**2
MAX_MEMORY = 4 * 1024**4
MAX_CPU = 1024.0
# The one grammar of image references, distribution/reference's (ASCII only):
# [domain[:port]/]path[:tag][@digest], or an image id. The YAML format, its JSON Schema and the
# container executor all check with it.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_LABEL = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?"
_DOMAIN = rf"{_LABEL}(?:\.{_LABEL})*(?::[0-9]+)?/"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
IMAGE_PATTERN = (
    rf"^(?:(?:{_DOMAIN})?{_COMPONENT}(?:/{_COMPONENT})*"
    rf"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}})?(?:@{_DIGEST})?|(?:sha256:)?[0-9a-f]{{64}})$"
)
_IMAGE = re.compile(IMAGE_PATTERN)
MAX_IMAGE = 255


def parse_memory(value: Any) -> int:
    """Bytes for ``value``; raise ``ValueError`` with a user-facing message."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError("memory must be bytes or a string like '64Mi', '4Gi'")
    if isinstance(value, int | float):
        amount = float(value)
    else:
        match = _MEMORY.fullmatch(value.strip())
        if match is None:
            raise ValueError(f"'{value}' is not a memory size; write e.g. '64Mi', '4Gi', '512M'")
        amount = float(match.group(1)) * _FACTORS[match.group(2)]
    if not MIN_MEMORY <= amount <= MAX_MEMORY:
        raise ValueError(f"memory {value!r} is out of range (6Mi to 4Ti)")
    return int(amount)


def parse_cpu(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError("cpu must be a number of CPUs such as 2 or 0.5, or millicores '500m'")
    if isinstance(value, str):
        text = value.strip()
        try:
            cpus = int(text[:-1]) / 1000 if text.endswith("m") else float(text)
        except ValueError:
            raise ValueError(
                f"'{value}' is not a CPU amount; write e.g. 2, 0.5 or '500m'"
            ) from None
    else:
        cpus = float(value)
    if not 0.01 <= cpus <= MAX_CPU:
        raise ValueError(f"cpu {value!r} is out of range (0.01 to {MAX_CPU:g})")
    return cpus


def image_problem(image: str) -> str | None:
    """Why ``image`` is not ``[registry/]name[:tag][@digest]`` or an image id; None if it is."""
    if not image:
        return "it is empty"
    if len(image) > MAX_IMAGE:
        return f"it is longer than {MAX_IMAGE} characters"
    if any(ch.isspace() or not ch.isprintable() for ch in image):
        return "it contains whitespace or control characters"
    if image.startswith("-"):
        return "it starts with '-'"
    if not _IMAGE.fullmatch(image):
        return "expected [registry/]name[:tag][@digest] with a lowercase name"
    return None


def check_image(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("image must be a string such as 'registry.example.org/sim:1.4'")
    if len(value) > MAX_IMAGE:
        raise ValueError(f"image reference is longer than {MAX_IMAGE} characters")
    if image_problem(value) is not None:
        shown = "".join(c if c.isprintable() else "?" for c in value)[:80]
        raise ValueError(
            f"'{shown}' is not a valid image reference; write e.g. 'registry.example.org/sim:1.4'"
            " (lowercase name, optional :tag and @sha256:digest)"
        )
    return value


Memory = Annotated[
    int,
    BeforeValidator(parse_memory),
    WithJsonSchema(
        {
            "anyOf": [{"type": "integer", "minimum": MIN_MEMORY}, {"type": "string"}],
            "description": "bytes, or a string like '64Mi', '4Gi', '512M'",
        }
    ),
]
Cpu = Annotated[
    float,
    BeforeValidator(parse_cpu),
    WithJsonSchema(
        {
            "anyOf": [{"type": "number", "exclusiveMinimum": 0}, {"type": "string"}],
            "description": "CPUs, e.g. 2 or 0.5, or millicores '500m'",
        }
    ),
]
Image = Annotated[
    str,
    BeforeValidator(check_image),
    WithJsonSchema({"type": "string", "maxLength": MAX_IMAGE, "pattern": IMAGE_PATTERN}),
]
