"""The one key=value command-line style of evaluate, analyze, report and plots.

A command declares its keys as a dataclass: field name = key, annotation = type,
default = default, `help=` in the field's metadata.  `parse(Args, argv)` accepts only
those keys (one `error:` line naming the allowed keys otherwise), converts the values
with OmegaConf (so `episodes=abc` is an error naming the key and its type; a str key's
value is taken as typed, `null` being None where the key is optional) and returns
an Args instance.  `--help` prints the command's doc and a table of every key with its
type, default and help, generated from the same dataclass.  `main(...)` wraps it all:
a ConfigError is one `error:` line and exit 2.
"""

from __future__ import annotations

import dataclasses
import sys
import typing
from typing import Any, Callable, Sequence, TypeVar

from omegaconf import OmegaConf

from hebbian_es.errors import ConfigError, os_error_line

T = TypeVar("T")


def key(default: Any = None, help: str = "", *, extra: bool = False) -> Any:
    """A key of a command: `episodes: int = key(100, "lifetimes per body")`.

    extra=True marks a Dict[str, str] field that collects NAME=VALUE pairs whose NAME is
    not a declared key (e.g. `plots`'s NAME=RUN_DIR pairs)."""
    if isinstance(default, (list, dict)):
        value = default
        return dataclasses.field(default_factory=lambda: type(value)(value), metadata={"help": help, "extra": extra})
    return dataclasses.field(default=default, metadata={"help": help, "extra": extra})


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    if origin is typing.Union:
        return _type_name(args[0]) if len(args) == 1 else " | ".join(_type_name(a) for a in args)
    if origin in (list, typing.List):
        return f"list[{_type_name(args[0])}]" if args else "list"
    if origin in (dict, typing.Dict):
        return "dict"
    return getattr(tp, "__name__", str(tp))


def _fields(cls: type) -> list[dataclasses.Field]:
    return list(dataclasses.fields(cls))


def help_text(doc: str, cls: type) -> str:
    """The command's doc followed by every key with its type and default."""
    hints = typing.get_type_hints(cls)
    rows = []
    for f in _fields(cls):
        if f.metadata.get("extra"):
            rows.append((f"NAME=VALUE", "str", "-", f.metadata.get("help", "")))
            continue
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else "(required)"  # type: ignore[misc]
        )
        rows.append((f"{f.name}=", _type_name(hints[f.name]), "null" if default is None else str(default), f.metadata.get("help", "")))
    w0, w1, w2 = (max(len(r[i]) for r in rows) for i in range(3))
    table = "\n".join(f"  {a:<{w0}}  {b:<{w1}}  default {c:<{w2}}  {d}".rstrip() for a, b, c, d in rows)
    return f"{doc.strip()}\n\nKeys (type, default):\n{table}\n"


def _is_str(tp: Any) -> bool:
    """str or Optional[str]: a key whose value is taken as typed (`null` is None for Optional[str])."""
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    return tp is str or (typing.get_origin(tp) is typing.Union and args == [str])


def parse(cls: type[T], argv: Sequence[str]) -> T:
    """key=value arguments into a `cls` instance; unknown keys and wrong types are ConfigErrors."""
    fs = _fields(cls)
    names = [f.name for f in fs if not f.metadata.get("extra")]
    extra = next((f.name for f in fs if f.metadata.get("extra")), None)
    hints = typing.get_type_hints(cls)
    dotlist, extras, strings = [], {}, {}
    for arg in argv:
        name, eq, value = arg.partition("=")
        if not eq or (name not in names and extra is None):
            raise ConfigError(f"unknown argument {arg!r}; allowed: {', '.join(k + '=' for k in names)}")
        if name in names and _is_str(hints[name]):  # verbatim: YAML would make `wandb=off` False, `title=a: b` a dict
            strings[name] = None if value == "null" and hints[name] is not str else value
        elif name in names:
            dotlist.append(arg)
        else:
            extras[name] = value
    try:
        merged = OmegaConf.merge(OmegaConf.structured(cls), OmegaConf.from_dotlist(dotlist))
    except Exception as exc:  # a value of the wrong type: OmegaConf names the key
        first = str(exc).splitlines()[0]
        raise ConfigError(first) from None
    values = OmegaConf.to_container(merged)
    assert isinstance(values, dict)
    values.update(strings)
    if extra is not None:
        values[extra] = extras
    return cls(**values)


def main(doc: str, cls: type[T], argv: Sequence[str] | None, command: Callable[[T], Any], *, needs_args: bool = True) -> None:
    """`--help` prints the key table; no arguments where some are needed prints it and exits 2;
    a ConfigError or an OSError (read-only or full disk) is one `error:` line and exit 2."""
    args = sys.argv[1:] if argv is None else list(argv)
    if any(a in ("-h", "--help") for a in args) or (needs_args and not args):
        print(help_text(doc, cls))
        if not args:
            sys.exit(2)
        return
    try:
        command(parse(cls, args))
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except OSError as exc:  # a read-only or full run directory, a file gone: the system's reason, no traceback
        print(f"error: {os_error_line(exc)}", file=sys.stderr)
        sys.exit(2)
