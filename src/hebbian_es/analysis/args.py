"""The keys of `python -m hebbian_es.analyze`: the ones every analysis shares and how values are checked.

Every analysis declares its keys as a dataclass deriving from `CommonArgs`, each with
`key(default, help, low=, high=, choices=)`: `hebbian_es.cli_args.key` (so `--help`
lists it with its type and default) plus the range or the choices it must meet.
`parse` checks key=value pairs against such a class: unknown keys, types (from the
annotations) and ranges are one-line ConfigErrors naming the key; integers given as
1.0 and a single number for a list are accepted, lists of steps are sorted and
deduplicated.  Checks that need the run (windows against the episode length) come later.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, List, Mapping, Optional, Sequence, TypeVar

from omegaconf import OmegaConf

from hebbian_es import cli_args
from hebbian_es.errors import ConfigError
from hebbian_es.run.rundir import CHECKPOINTS

T = TypeVar("T", bound="CommonArgs")


def key(
    default: Any = None, help: str = "", *, low: float | None = None, high: float | None = None,
    choices: Sequence[str] | None = None,
) -> Any:
    """A key of an analysis: cli_args.key plus the range [low, high] or the choices its value must meet
    (added to its help)."""
    if choices:
        help = f"{help} ({'|'.join(choices)})"
    elif low is not None:
        help = f"{help} ({f'>= {low}' if high is None else f'in [{low}, {high}]'})"
    f = cli_args.key(default, help)
    f.metadata = MappingProxyType({**f.metadata, "low": low, "high": high, "choices": tuple(choices or ())})
    return f


@dataclass
class CommonArgs:
    """The keys of every analysis."""

    analysis: Optional[str] = key(None, "the analysis (required; listed above)")
    run: Optional[str] = key(None, "the run directory (required)")
    checkpoint: str = key("last", "the checkpoint analysed", choices=CHECKPOINTS)
    seed: Optional[int] = key(None, "seed of the test lifetimes; null: the run's seed", low=0)
    bodies: Any = key(None, "test bodies: a name, [a,b] or all; null: the named test bodies, not the random damages")
    early_stop: bool = key(False, "the env's early stop on (the test protocol has it off)")
    batch_size: Optional[int] = key(None, "lifetimes per rollout batch; null: the run's evaluator.batch_size", low=1)
    out: Optional[str] = key(None, "output folder; null: <run>/analysis")
    progress: bool = key(True, "a line on stderr per batch of lifetimes: lifetimes done/total and ETA")

    def check(self) -> None:
        """Checks across keys, once every value has its type and range (an analysis may add some)."""


def parse(cls: type[T], pairs: Mapping[str, str]) -> T:
    """key=value pairs (as given) into a checked `cls` instance."""
    names = [f.name for f in dataclasses.fields(cls)]
    for name in pairs:
        if name not in names:
            raise ConfigError(f"unknown key {name!r} for analysis={pairs.get('analysis')}; allowed: {', '.join(k + '=' for k in names)}")
    try:
        given = OmegaConf.to_container(OmegaConf.from_dotlist([f"{k}={v}" for k, v in pairs.items()]))
    except Exception as exc:  # not a value YAML can read: OmegaConf names it
        raise ConfigError(str(exc).splitlines()[0]) from None
    assert isinstance(given, dict)
    if not given.get("run"):
        raise ConfigError("run=<run dir> is required")
    hints, defaults = typing.get_type_hints(cls), cls()
    values = {}
    for f in dataclasses.fields(cls):
        value = given[f.name] if f.name in given else getattr(defaults, f.name)
        values[f.name] = _typed(f.name, value, hints[f.name], f.metadata)
    args = cls(**values)
    args.check()
    return args


def _typed(name: str, value: Any, tp: Any, meta: Mapping[str, Any]) -> Any:
    """`value` as the annotation `tp` says, in range; a ConfigError naming the key otherwise."""
    args = typing.get_args(tp)
    if typing.get_origin(tp) is typing.Union:
        if value is None and type(None) in args:
            return None
        tp = next(a for a in args if a is not type(None))
    if meta.get("choices"):
        if value not in meta["choices"]:
            raise ConfigError(f"{name}={value!r}; allowed: {', '.join(meta['choices'])}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{name}={value!r}: must be true or false")
        return value
    if tp in (int, float):
        return _number(name, value, tp, meta.get("low"), meta.get("high"))
    if typing.get_origin(tp) in (list, List):
        return _int_list(name, value)
    if tp is str:
        if isinstance(value, (list, dict)):
            raise ConfigError(f"{name}={value!r}: must be a single value")
        return str(value)
    return value


def _number(name: str, v: Any, kind: type, low: float | None, high: float | None) -> int | float:
    ok = isinstance(v, (int, float)) and not isinstance(v, bool) and (kind is float or float(v).is_integer())
    if ok:
        v = kind(v)
    if not ok or (low is not None and v < low) or (high is not None and v > high):
        what = "an integer" if kind is int else "a number"
        lo = "" if low is None else (f" >= {low}" if high is None else f" in [{low}, {high}]")
        raise ConfigError(f"{name}={v!r}: must be {what}{lo}")
    return v


def _int_list(name: str, v: Any) -> list[int]:
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        v = [v]
    if not isinstance(v, list) or not v or not all(isinstance(x, int) and not isinstance(x, bool) for x in v):
        raise ConfigError(f"{name}={v!r}: must be a non-empty list of integers, e.g. {name}=[0,10,50]")
    return sorted(set(v))
