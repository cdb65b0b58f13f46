"""Wire-model helpers: case-insensitive property names, enums by name or number, and
pydantic errors rendered as the reference's validation messages (api.md §1.2, §1.6.2)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from enum import Enum
from typing import Annotated, Any, ClassVar, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)
from pydantic_core import PydanticCustomError

from correspondence.kit.errors import FieldError, ValidationProblem
from correspondence.kit.numbers import parse_int

_LIMITS: dict[str, tuple[int, int]] = {}
NUL_MESSAGE = "The value cannot contain the NUL character (\\u0000)."


def Text(alias: str, min_len: int = 0, max_len: int = 0) -> Any:
    """A string field with the reference's length limits; remembered for error messages."""
    if max_len:
        _LIMITS[alias] = (min_len, max_len)
    return Field(
        ... if min_len > 0 else None,
        alias=alias,
        min_length=min_len or None,
        max_length=max_len or None,
    )


class WireModel(BaseModel):
    """Accepts property names in any case (real clients send `Correspondence`, `SendReminder`)."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore", str_strip_whitespace=False)
    _ci_aliases: ClassVar[dict[str, str]] = {}
    _exact_aliases: ClassVar[frozenset[str]] = frozenset()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        cls._ci_aliases = {
            (f.alias or name).lower(): (f.alias or name) for name, f in cls.model_fields.items()
        }
        cls._exact_aliases = frozenset(cls._ci_aliases.values())

    def nul_checked_elsewhere(self) -> frozenset[str]:
        """Fields whose U+0000 the use case answers itself, with the reference's own error (a file
        name's forbidden characters are 2012, api.md §8.2), so the generic NUL check skips them."""
        return frozenset()

    @model_validator(mode="before")
    @classmethod
    def _case_insensitive(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        exact = cls._exact_aliases
        if all(key in exact for key in data):
            return data  # the common case: names already as documented
        aliases = cls._ci_aliases
        out: dict[str, Any] = {}
        for key, value in data.items():
            if key in exact:
                out[key] = value  # an exact-case key wins over a differently-cased duplicate
                continue
            canonical = aliases.get(key.lower(), key) if isinstance(key, str) else key
            if canonical not in out:
                out[canonical] = value
        return out


M = TypeVar("M", bound=BaseModel)


def parse_json(model: type[M], raw: bytes) -> M:
    """A JSON body as `model`; invalid input is the reference's validation problem (400)."""
    try:
        body = model.model_validate_json(raw)
    except ValidationError as exc:
        raise to_validation_problem(exc) from None
    if b"\\u0000" in raw:  # JSON can carry U+0000 only escaped, so the common path skips the walk
        reject_nul(body)
    return body


def reject_nul(model: BaseModel) -> None:
    problems = nul_problems(model)
    if problems:
        raise ValidationProblem(problems)


def nul_problems(model: BaseModel, root: tuple[str | int, ...] = ()) -> list[FieldError]:
    """Fields holding U+0000, which PostgreSQL text cannot store: a validation error, not a 500 at
    insert. Checked after validation, and only when the raw input can contain one, so the common
    path pays nothing."""
    found: list[FieldError] = []
    skip = model.nul_checked_elsewhere() if isinstance(model, WireModel) else frozenset()
    for name, field in type(model).model_fields.items():
        if name in skip:
            continue
        _walk(getattr(model, name), (*root, field.alias or name), found)
    return found


def _walk(value: Any, loc: tuple[str | int, ...], found: list[FieldError]) -> None:
    if isinstance(value, str):
        if "\x00" in value:
            found.append(FieldError(_key(loc), NUL_MESSAGE))
    elif isinstance(value, BaseModel):
        found.extend(nul_problems(value, loc))
    elif isinstance(value, list):
        if all(isinstance(item, str) for item in value):
            if any("\x00" in item for item in value):
                found.append(FieldError(_key(loc), NUL_MESSAGE))
        else:
            for i, item in enumerate(value):
                _walk(item, (*loc, i), found)
    elif isinstance(value, dict) and any(
        isinstance(text, str) and "\x00" in text for pair in value.items() for text in pair
    ):
        found.append(FieldError(_key(loc), NUL_MESSAGE))


E = TypeVar("E", bound=Enum)


def enum_parser(enum_cls: type[E], numbers: dict[int, str] | None = None) -> Callable[[Any], Any]:
    """Read an enum as a name (any case) or an integer; write it as its name (enum_name)."""
    names = {member.name.lower(): member for member in enum_cls}
    by_number = numbers or {i: m.name for i, m in enumerate(enum_cls)}

    def parse(value: Any) -> Any:
        if isinstance(value, enum_cls):
            return value
        if isinstance(value, bool):
            raise PydanticCustomError("enum_value", "The value '{v}' is not valid.", {"v": value})
        if isinstance(value, int) and value in by_number:
            return enum_cls[by_number[value]]
        if isinstance(value, str):
            key = value.strip().lower()
            if key in names:
                return names[key]
            number = parse_int(key)
            if number is not None and number in by_number:
                return enum_cls[by_number[number]]
        raise PydanticCustomError("enum_value", "The value '{v}' is not valid.", {"v": value})

    return parse


def enum_name(member: Enum) -> str:
    return member.name


def _as_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00+01:00: the UTC instant is before year 1
        raise PydanticCustomError("datetime_range", "The date-time is out of range") from None


UtcDateTime = Annotated[datetime, AfterValidator(_as_utc)]


def _csharp(segment: str | int) -> str:
    if isinstance(segment, int):
        return f"[{segment}]"
    return segment[:1].upper() + segment[1:]


def _key(loc: tuple[str | int, ...]) -> str:
    out = ""
    for part in loc:
        piece = _csharp(part)
        out += piece if piece.startswith("[") or not out else "." + piece
    return out


def _message(err: Any, loc: tuple[str | int, ...]) -> str:
    kind = err["type"]
    last = next((p for p in reversed(loc) if isinstance(p, str)), "")
    prop = _csharp(last) if last else "request"
    if kind == "missing":
        return f"The {prop} field is required."
    if kind in ("string_too_short", "string_too_long"):
        low, high = _LIMITS.get(last, (err.get("ctx", {}).get("min_length", 0), 0))
        if not high:
            high = err.get("ctx", {}).get("max_length", 0)
        if low > 0:
            return (
                f"The field {prop} must be a string with a minimum length of {low} "
                f"and a maximum length of {high}."
            )
        return f"The field {prop} must be a string with a maximum length of {high}."
    if kind == "custom" or (kind == "value_error" and "ctx" in err and "error" in err["ctx"]):
        return str(err["ctx"]["error"]) if kind == "value_error" else str(err["msg"])
    if kind in ("enum_value",):
        return str(err["msg"])
    if kind == "json_invalid":
        return "The JSON value is not valid: " + str(err.get("ctx", {}).get("error", ""))
    value = err.get("input")
    if isinstance(value, (str, int, float, bool)):
        return f"The value '{value}' is not valid for {prop}."
    return f"The JSON value could not be converted for {prop}."


# Segments pydantic adds to a location for unions and containers; they are not properties.
_TYPE_TAGS = frozenset({"int", "str", "float", "bool", "none", "dict[str,str]", "list[str]", "uuid"})


def to_validation_problem(exc: ValidationError, root: tuple[str, ...] = ()) -> ValidationProblem:
    problem = ValidationProblem()
    for err in exc.errors(include_url=False):
        loc = root + tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        # discriminator / before-validator segments are not properties
        loc = tuple(p for p in loc if p not in _TYPE_TAGS)
        if err["type"] == "json_invalid":
            problem.errors.append(FieldError("$", _message(err, loc)))
            continue
        problem.errors.append(FieldError(_key(loc) or "$", _message(err, loc)))
    return problem
