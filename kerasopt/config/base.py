"""Shared pieces of the schema: a strict base model, field applicability and discriminated sections.

A section whose ``type`` (or ``source``) picks its keys is a family of ``Choice`` classes: one
common base that holds the shared keys and one subclass per option with only its own keys.
:func:`choice_union` turns a family into the pydantic discriminated union the parent section
declares, so a dump (``--print-config``, the run's ``config.yaml``) shows the chosen option's keys only.
"""

from __future__ import annotations

import typing
from typing import Annotated, Any, ClassVar, Optional, Union

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_serializer


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
    """Reject keys that were set but do nothing for the chosen ``type``/``algorithm``.

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


class Choice(Strict):
    """One option of a section picked by a selector key (``type`` or ``source``).

    The family's common base sets ``SELECTOR`` and ``DEFAULT`` and declares ``OPTIONS = {}``;
    each option subclass declares the selector as a one-value ``Literal`` and registers itself.
    Calling the family base builds the chosen option, so ``ModelConfig(type="mlp")`` is an
    ``MLPModel`` and ``ModelConfig()`` the default option.

    Example:
        >>> from kerasopt.config.model_schema import ModelConfig
        >>> type(ModelConfig(type="mlp", hidden_units=[8])).__name__
        'MLPModel'
    """

    SELECTOR: ClassVar[str] = "type"
    DEFAULT: ClassVar[str] = ""
    OPTIONS: ClassVar[dict[str, type[Choice]]]
    UNUSED: ClassVar[dict[str, str]] = {}  # shared keys the option ignores -> why (see model_schema)

    def __new__(cls, *args: Any, **kwargs: Any) -> Choice:
        if "OPTIONS" in cls.__dict__:  # the family base: build the chosen option instead
            option = cls.OPTIONS.get(kwargs.get(cls.SELECTOR, cls.DEFAULT))
            if option is None:
                family_adapter(cls).validate_python(kwargs)  # raises pydantic's error naming the choices
            return super().__new__(option)
        return super().__new__(cls)

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        tag = option_tag(cls)
        if tag is not None:
            family(cls).OPTIONS[tag] = cls

    @classmethod
    def model_validate(cls, obj: Any, **kwargs: Any) -> Choice:  # type: ignore[override]
        if "OPTIONS" in cls.__dict__:
            return family_adapter(cls).validate_python(_with_default(cls, obj), **kwargs)
        return super().model_validate(obj, **kwargs)

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: Any, handler: Any) -> dict[str, Any]:
        schema = handler.resolve_ref_schema(handler(core_schema))
        # The default option may leave the selector out; every other option must name itself, so
        # an editor's oneOf matches exactly one option.
        if option_tag(cls) not in (None, family(cls).DEFAULT):
            schema["required"] = sorted({*schema.get("required", []), cls.SELECTOR})
        return schema

    @model_serializer(mode="wrap")
    def _option_keys_first(self, handler: Any) -> Any:
        """Dump the selector, then the option's own keys, then the shared ones (a person reads them so)."""
        out = handler(self)
        if not isinstance(out, dict):
            return out
        shared = family(type(self)).model_fields
        order = [self.SELECTOR, *(k for k in out if k not in shared), *(k for k in out if k in shared)]
        return {k: out[k] for k in dict.fromkeys(order) if k in out}

    @classmethod
    def option_keys(cls) -> frozenset[str]:
        """The keys of this option (or of every option, on the family base)."""
        if "OPTIONS" in cls.__dict__:
            return frozenset(k for o in cls.OPTIONS.values() for k in o.model_fields)
        return frozenset(cls.model_fields)


def family(cls: type) -> type[Choice]:
    """The family base of an option class (the nearest class that declares ``OPTIONS``)."""
    for base in cls.__mro__:
        if "OPTIONS" in base.__dict__:
            return base
    raise TypeError(f"{cls.__name__} is not a Choice option")


def option_tag(cls: type) -> Optional[str]:
    """The selector value of an option class, None for a family base."""
    field = cls.model_fields.get(cls.SELECTOR)  # type: ignore[attr-defined]
    args = typing.get_args(field.annotation) if field is not None else ()
    if field is None or typing.get_origin(field.annotation) is not typing.Literal or len(args) != 1:
        return None
    return args[0]


def _with_default(base: type[Choice], value: Any) -> Any:
    """Leaving the selector out picks the family's default option.

    A mapping that holds every key of every option is a run's ``config.yaml`` written before the
    sections became unions (it dumped all keys); the keys the chosen option lacks are dropped.
    """
    if not isinstance(value, dict):
        return value
    if base.SELECTOR not in value:
        value = {base.SELECTOR: base.DEFAULT, **value}
    option = base.OPTIONS.get(value[base.SELECTOR]) if isinstance(value[base.SELECTOR], str) else None
    if option is not None and set(value) >= base.option_keys():
        value = {k: v for k, v in value.items() if k in option.model_fields}
    return value


_ADAPTERS: dict[type, Any] = {}


def family_adapter(base: type[Choice]) -> Any:
    """A ``TypeAdapter`` of the family's union (built once)."""
    if base not in _ADAPTERS:
        from pydantic import TypeAdapter

        _ADAPTERS[base] = TypeAdapter(choice_union(base))
    return _ADAPTERS[base]


def choice_union(base: type[Choice]) -> Any:
    """The discriminated union of a family's options, for a parent section's annotation.

    A missing selector picks ``base.DEFAULT``. Example::

        model: choice_union(ModelConfig) = Field(default_factory=CNNModel)
    """
    options = tuple(base.OPTIONS.values())
    return Annotated[
        Union[options],  # type: ignore[valid-type]
        Field(discriminator=base.SELECTOR),
        BeforeValidator(lambda v: _with_default(base, v)),
    ]


def union_family(annotation: Any) -> Optional[type[Choice]]:
    """The family base when ``annotation`` is a union of one family's options, else None."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) is not Union or not args:
        return None
    if not all(isinstance(a, type) and issubclass(a, Choice) and option_tag(a) for a in args):
        return None
    bases = {family(a) for a in args}
    return bases.pop() if len(bases) == 1 else None
