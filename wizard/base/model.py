"""The base of every answers model."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator
from pydantic_core import PydanticCustomError

from wizard.base.fields import control_character
from wizard.base.problems import Loc


class Model(BaseModel):
    """Unknown keys are errors and assignments are validated, so an edit can't go wrong.

    No string anywhere in a model holds a control character (a line break, a tab, ...):
    values are written into line-oriented files (dnsmasq's config, boot scripts, kickstarts,
    preseeds), where one would start a new directive. The rule covers every field, list
    item, mapping key and free-form value (barclamp attributes), so a new field gets it
    too; the error points at the very item (``ctx["at"]`` below the field).
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    @field_validator("*")
    @classmethod
    def _one_line_strings(cls, value: Any) -> Any:
        found = _control_in(value, ())
        if found is not None:
            at, problem = found
            raise PydanticCustomError("control_character", problem, {"at": at})
        return value


def _control_in(value: Any, at: Loc) -> tuple[Loc, str] | None:
    """The first string inside ``value`` (nested models aside) that holds a control character."""
    if isinstance(value, str):
        problem = control_character(value)
        return None if problem is None else (at, problem)
    if isinstance(value, dict):
        for key, item in value.items():
            problem = control_character(key) if isinstance(key, str) else None
            if problem:
                return at, f"a key {problem}"
            found = _control_in(item, (*at, str(key)))
            if found:
                return found
    elif isinstance(value, list | tuple | set | frozenset):
        for index, item in enumerate(value):
            found = _control_in(item, (*at, index))
            if found:
                return found
    return None
