"""Shared pieces of the schema: a strict base model and field applicability."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    """Base of every config section: unknown keys are errors, assignment is validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=())


class FieldError(ValueError):
    """A validator error about one key of the section (so the message names ``section.key``)."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(message)


def check_applicable(
    section: Strict, selector: str, value: str, owners: dict[str, tuple[str, ...]]
) -> None:
    """Reject keys that were set but do nothing for the chosen ``type``/``source``.

    ``owners`` maps a field name to the selector values that use it. A key set in
    YAML that the chosen option ignores is an error, never silently dropped.
    """
    fields = type(section).model_fields
    for field in sorted(section.model_fields_set):
        users = owners.get(field)
        # A key equal to its default is harmless (a dumped, fully resolved config has them all).
        if users is not None and value not in users and getattr(section, field) != fields[field].get_default(
            call_default_factory=True
        ):
            raise FieldError(
                field,
                f"does not apply to {selector} '{value}' (it is used by: {', '.join(users)})",
            )
