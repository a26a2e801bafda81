"""How the engine's values cross Temporal: its JSON payloads, with dataclasses decoded by
field types read once per class.

Temporal's converter reads a dataclass's type hints again for every value it decodes
(``typing.get_type_hints``, which evaluates each annotation's text); a step's task and result
cross it several times per attempt, so that was a good part of each activity's and workflow
task's CPU. The values and their JSON are exactly the default converter's.
"""

from __future__ import annotations

import dataclasses
import functools
import typing
from typing import Any

from temporalio.converter import (
    CompositePayloadConverter,
    DataConverter,
    DefaultPayloadConverter,
    JSONPlainPayloadConverter,
    JSONTypeConverter,
    value_to_type,
)


@functools.cache
def _fields(cls: type) -> tuple[tuple[str, Any], ...] | None:
    """(name, type) of each field a dataclass is made with; None when one is not (then the
    default conversion, which also fills such fields, decodes it)."""
    fields = dataclasses.fields(cls)
    if any(not field.init for field in fields):
        return None
    hints = typing.get_type_hints(cls)
    return tuple((field.name, hints[field.name]) for field in fields)


class _Dataclasses(JSONTypeConverter):
    """Decodes a JSON object into a dataclass as Temporal's ``value_to_type`` does (unknown
    keys ignored, missing ones left to their defaults), with the field types cached."""

    def to_typed_value(self, hint: type, value: Any) -> Any:
        if not (isinstance(hint, type) and dataclasses.is_dataclass(hint)):
            return JSONTypeConverter.Unhandled
        fields = _fields(hint)
        if fields is None or not isinstance(value, dict):
            return JSONTypeConverter.Unhandled
        mine = [self]
        return hint(
            **{
                name: value_to_type(kind, value[name], mine)
                for name, kind in fields
                if name in value
            }
        )


class PayloadConverter(CompositePayloadConverter):
    """Temporal's default payload converters, its JSON one decoding dataclasses faster."""

    def __init__(self) -> None:
        json = JSONPlainPayloadConverter(custom_type_converters=[_Dataclasses()])
        super().__init__(
            *(
                json if isinstance(each, JSONPlainPayloadConverter) else each
                for each in DefaultPayloadConverter.default_encoding_payload_converters
            )
        )


#: what every lockstep client of Temporal (and so every worker) encodes and decodes with
DATA_CONVERTER = dataclasses.replace(
    DataConverter.default, payload_converter_class=PayloadConverter
)
