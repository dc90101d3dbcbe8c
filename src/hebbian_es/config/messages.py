"""One line for a config the schema refused: the `error:` line of `python -m hebbian_es`."""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

from omegaconf.errors import (
    ConfigAttributeError,
    ConfigKeyError,
    MissingMandatoryValue,
    OmegaConfBaseException,
    ValidationError,
)

_TYPE_NAMES = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}


def error_line(exc: BaseException) -> str | None:
    """One line for a config the schema refused (a wrong type, an unknown key, a null where
    none is allowed), found anywhere in exc's cause chain; None for any other error.

        optimizer.popsiz: unknown key (allowed: name, popsize, sigma, ...)
        optimizer.popsize=abc: must be an integer
    """
    override = None
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        choice = _unknown_choice(cur)
        if choice is not None:
            return choice
        override = override or _override_of(str(cur))
        if isinstance(cur, (ConfigKeyError, ConfigAttributeError)) and not isinstance(cur, MissingMandatoryValue):
            return _unknown_key(cur, override)
        if isinstance(cur, ValidationError) and cur.key is not None:
            return _bad_value(cur, override)
        cur = cur.__cause__ or cur.__context__
    return None


# What else a group accepts besides its configs (the env group's gymnasium source).
GROUP_HINTS = {"env": "nor a registered gymnasium id (e.g. CartPole-v1)"}


def _unknown_choice(exc: BaseException) -> str | None:
    """`rule=nope`: Hydra's MissingConfigException (a group option with no config) in one line."""
    missing = getattr(exc, "missing_cfg_file", None)
    options = getattr(exc, "options", None)
    if not missing or options is None or "/" not in str(missing):
        return None
    group, _, value = str(missing).rpartition("/")
    allowed = ", ".join(sorted(options))
    hint = GROUP_HINTS.get(group)
    if hint:
        return f"{group}={value}: neither a config of the {group} group (allowed: {allowed}) {hint}"
    return f"{group}={value}: no such {group} config (allowed: {allowed})"


def _override_of(message: str) -> str | None:
    """The override named by Hydra's message, e.g. 'optimizer.popsize=abc'."""
    first = message.splitlines()[0] if message else ""
    for prefix in ("Error merging override ", "Could not override '", "Could not append to config. "):
        if first.startswith(prefix):
            return first[len(prefix) :].strip("'. ") or None
    return None


def _unknown_key(exc: OmegaConfBaseException, override: str | None) -> str:
    full_key = str(exc.full_key or exc.key or "")
    allowed = fields_of(exc.object_type)
    where = f" (allowed: {', '.join(allowed)})" if allowed else ""
    if override and override.split("=")[0] != full_key:  # a key inside a list or mapping value
        return f"{override}: {full_key}: unknown key{where}"
    return f"{full_key}: unknown key{where}"


def fields_of(object_type: Any) -> list[str] | None:
    """The field names of a schema class, or None for anything else."""
    if isinstance(object_type, type) and dataclasses.is_dataclass(object_type):
        return [f.name for f in dataclasses.fields(object_type)]
    return None


def _field_type(object_type: Any, key: Any) -> Any:
    """The declared type of field `key` of dataclass `object_type`, Optional unwrapped."""
    if not (isinstance(object_type, type) and dataclasses.is_dataclass(object_type)):
        return None
    try:
        hint = typing.get_type_hints(object_type).get(str(key))
    except Exception:  # pragma: no cover - an unresolvable annotation
        return None
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) is typing.Union and len(args) == 1:
        hint = args[0]
    return hint


def _bad_value(exc: ValidationError, override: str | None) -> str:
    full_key = str(exc.full_key or exc.key)
    if override and "=" in override:
        what = override
        if override.split("=")[0] != full_key:  # a key inside a list or mapping value
            what = f"{override}: {full_key}"
    else:
        what = f"{full_key}={exc.value}" if exc.value is not None else full_key
    msg = str(exc.msg or exc).splitlines()[0]
    if "is not Optional" in msg:
        return f"{what}: must not be null"
    hint = _field_type(exc.object_type, exc.key)
    origin = typing.get_origin(hint)
    if hint in _TYPE_NAMES:
        return f"{what}: must be {_TYPE_NAMES[hint]}"
    if origin in (list, tuple):
        return f"{what}: must be a list"
    if origin is dict:
        return f"{what}: must be a mapping"
    fields = fields_of(hint)
    if fields:
        return f"{what}: must be a mapping of {', '.join(fields)}"
    return f"{what}: {msg}"
