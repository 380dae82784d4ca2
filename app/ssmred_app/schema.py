"""Strict configuration schemas with every problem reported at once.

A schema is a :class:`Section` subclass (a frozen pydantic model with strict types that rejects
unknown keys). Value checks are ``Annotated[type, value_rule(ok, message)]`` on a field, or a
``model_validator`` that calls :func:`invalid_combination` for a rule tying fields together.
:func:`validate_mapping` runs pydantic and turns its errors into ``location: message`` lines: unknown
keys name the valid keys, type errors name the expected type, and the problems of every field and
section are collected in one pass.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Any, Literal, NoReturn, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError
from pydantic_core import PydanticCustomError

__all__ = ["Section", "invalid_combination", "invalid_value", "validate_mapping", "value_rule"]

_VALUE, _RULE = "ssmred_value", "ssmred_rule"  # a field's value / a rule tying fields of a section together


def _fail(kind: str, problems: Sequence[str]) -> NoReturn:
    raise PydanticCustomError(kind, "; ".join(problems), {"problems": list(problems)})


def invalid_value(*problems: str) -> NoReturn:
    """Reject a field's value (inside a field validator) with one or more messages.

    Parameters
    ----------
    *problems
        What is wrong, e.g. ``"must be >= 1, got 0"``; :func:`validate_mapping` prefixes the field.

    Returns
    -------
    typing.NoReturn
        Never returns: it always raises.

    Raises
    ------
    pydantic_core.PydanticCustomError
        Always, carrying ``problems``; pydantic gathers it into the ``ValidationError`` that
        :func:`validate_mapping` turns into one ``field: problem`` line per message.
    """
    _fail(_VALUE, problems)


def invalid_combination(*problems: str) -> NoReturn:
    """Reject a combination of fields (inside a ``model_validator``) with one or more messages.

    Parameters
    ----------
    *problems
        ``key: what`` relative to the section, e.g. ``"d_state: 3 sizes given for 2 layers"``;
        :func:`validate_mapping` prefixes the section.

    Returns
    -------
    typing.NoReturn
        Never returns: it always raises.

    Raises
    ------
    pydantic_core.PydanticCustomError
        Always, carrying ``problems``; pydantic gathers it into the ``ValidationError`` that
        :func:`validate_mapping` turns into one ``section.key: what`` line per message.
    """
    _fail(_RULE, problems)


def shared_rule(check: Callable[[Any], Any]) -> AfterValidator:
    """A field check by a validator shared with the libraries (e.g. ``ssmred.selection.Tolerance``).

    Parameters
    ----------
    check
        Called with the (type-checked) value; a ``ValueError`` it raises becomes the field's problem.

    Returns
    -------
    pydantic.AfterValidator
        The check.
    """

    def run(value: Any) -> Any:
        try:
            check(value)
        except ValueError as exc:
            _fail(_VALUE, [str(exc)])
        return value

    return AfterValidator(run)


def value_rule(ok: Callable[[Any], bool], message: str) -> AfterValidator:
    """A check of one field's value, for ``Annotated[type, value_rule(...)]``.

    Parameters
    ----------
    ok
        Whether a (type-checked) value is acceptable.
    message
        The problem when it is not, formatted with the value as ``v`` (e.g. ``"must be >= 1, got {v}"``).

    Returns
    -------
    pydantic.AfterValidator
        The check; its failures are collected with all other problems by :func:`validate_mapping`.
    """

    def check(value: Any) -> Any:
        if not ok(value):
            _fail(_VALUE, [message.format(v=value)])
        return value

    return AfterValidator(check)


class Section(BaseModel):
    """Base of the schema sections: strict types, unknown keys rejected, floats finite, frozen."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, allow_inf_nan=False)


_ModelT = TypeVar("_ModelT", bound=BaseModel)


def _type_name(tp: Any) -> str:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is Annotated:
        return _type_name(args[0])
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in args)
    if origin is list:
        return f"a list of {_type_name(args[0])}"
    if tp is type(None):
        return "null"
    return getattr(tp, "__name__", str(tp))


def _is_section(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def validate_mapping(cls: type[_ModelT], raw: Any, *, where: str = "") -> tuple[_ModelT | None, list[str]]:
    r"""Validate ``raw`` against a schema class; return the instance (or ``None``) and the problems.

    Parameters
    ----------
    cls
        A schema class (:class:`RunConfig`, a section, or another ``extra="forbid"`` pydantic model).
    raw
        The parsed YAML mapping (``None`` is read as an empty mapping).
    where
        Location prefix of the messages (e.g. ``experiment``).

    Returns
    -------
    instance : pydantic.BaseModel or None
        The validated configuration, ``None`` when there were problems.
    problems : list of str
        One ``location: message`` line per problem (unknown keys name the valid keys).

    Examples
    --------
    >>> class Optim(Section):
    ...     epochs: Annotated[int, value_rule(lambda v: v >= 1, "must be >= 1, got {v}")] = 30
    ...     lr: float = 0.01
    >>> validate_mapping(Optim, {"epochs": 2, "lr": 1})
    (Optim(epochs=2, lr=1.0), [])
    >>> cfg, problems = validate_mapping(Optim, {"epochs": 0, "lr": "fast", "lf": 1}, where="optim")
    >>> cfg is None
    True
    >>> print("\n".join(problems))
    optim.epochs: must be >= 1, got 0
    optim.lr: expected float, got 'fast'
    optim.lf: unknown key (valid keys: epochs, lr)
    """
    try:
        return cls.model_validate({} if raw is None else raw), []
    except ValidationError as exc:
        errors = exc.errors()
    problems: list[str] = []
    typed: set[str] = set()  # a union reports one error per member: say it once
    for err in errors:
        model, node, path, field = cls, raw, [where] if where else [], None
        for key in err["loc"]:
            path.append(str(key))
            node = node.get(key) if isinstance(node, Mapping) else None
            field = model.model_fields.get(key) if isinstance(key, str) else None
            if field is None or not _is_section(field.annotation):
                break
            model = field.annotation
        at = ".".join(path)
        kind = err["type"]
        if kind == _VALUE:
            problems += [f"{at}: {p}" for p in err["ctx"]["problems"]]
        elif kind == _RULE:
            problems += [f"{at}.{p}" if at else p for p in err["ctx"]["problems"]]
        elif kind in ("extra_forbidden", "invalid_key"):
            problems.append(f"{at}: unknown key (valid keys: {', '.join(model.model_fields)})")
        elif kind == "finite_number":
            problems.append(f"{at}: expected a finite number, got {node!r}")
        elif kind in ("model_type", "model_attributes_type", "dict_type"):
            problems.append(f"{at or 'config'}: expected a mapping, got {type(node).__name__}")
        elif at not in typed:
            typed.add(at)
            expected = _type_name(field.annotation) if field is not None else err["msg"]
            problems.append(f"{at}: expected {expected}, got {node!r}")
    return None, problems
