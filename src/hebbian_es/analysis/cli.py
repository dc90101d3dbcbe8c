"""`python -m hebbian_es.analyze analysis=<name> run=<dir> [key=value ...]`: the paper's analyses.

Every analysis loads the run's checkpoint (checkpoint=last|best) on its test-phase task
through the test protocol, runs lifetimes through the one rollout loop with the
perturbation as a hook, and writes a PNG, its raw data (CSV/NPZ) and a JSON summary
into <run>/analysis/ (out=<dir> to change); with the run's logger.wandb set, also to
W&B.  Envs with bodies (env=ant) are analysed per test body (bodies=...).

Lifetime i of every analysis is lifetime i of `python -m hebbian_es.evaluate`'s
default 100-lifetime test protocol (same env seed, same initial weights).
docs/analyses.md explains each plot; `analysis=<name> --help` lists one analysis's keys.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
import time
import typing
from pathlib import Path
from types import ModuleType
from typing import Sequence

import torch

from hebbian_es import cli_args
from hebbian_es.analysis import freeze, pca, progress, rules, saturation, static_vs_hebbian, video, weights, zeroing
from hebbian_es.analysis.args import CommonArgs, parse
from hebbian_es.analysis.loaded import LoadedRun
from hebbian_es.analysis.outputs import Outputs, log_to_wandb
from hebbian_es.errors import ConfigError, os_error_line, run_command
from hebbian_es.files import probe_writable, write_json

# analysis= name -> its module: SUMMARY (one line), Args (its keys), analyse(run, args, out)
MODULES: dict[str, ModuleType] = {
    "freeze": freeze,
    "actuator_saturation": saturation,
    "weight_zeroing": zeroing,
    "pca": pca,
    "weights": weights,
    "video": video,
    "static_vs_hebbian": static_vs_hebbian,
    "rules": rules,
}
ANALYSES = tuple(MODULES)


def usage() -> str:
    """The command's doc and the list of analyses."""
    width = max(len(name) for name in ANALYSES)
    listing = "\n".join(f"  {name:<{width}}  {m.SUMMARY}" for name, m in MODULES.items())
    return f"{(__doc__ or '').strip()}\n\nanalysis=\n{listing}"


def parse_args(argv: Sequence[str]) -> CommonArgs:
    """key=value arguments; the analysis decides which keys exist.  Bad input: ConfigError."""
    pairs: dict[str, str] = {}
    for arg in argv:
        if "=" not in arg:
            raise ConfigError(f"argument {arg!r} is not key=value; usage: analysis=<{'|'.join(ANALYSES)}> run=<run dir> [key=value ...]")
        key, value = arg.split("=", 1)
        pairs[key] = value
    name = pairs.get("analysis")
    if not name:
        raise ConfigError(f"analysis=<name> is required; allowed: {', '.join(ANALYSES)}")
    if name not in MODULES:
        raise ConfigError(f"analysis={name!r} is not an analysis; allowed: {', '.join(ANALYSES)}")
    return parse(MODULES[name].Args, pairs)


def help_text(argv: Sequence[str]) -> str:
    """With analysis=<name>: that analysis's keys; else the common keys and each analysis's own."""
    name = next((a.split("=", 1)[1] for a in argv if a.startswith("analysis=")), None)
    if name in MODULES:
        return cli_args.help_text(f"{usage()}\n\nanalysis={name}: {MODULES[name].SUMMARY}", MODULES[name].Args)
    sections = [cli_args.help_text(usage(), CommonArgs)]
    for name, module in MODULES.items():
        sections.append(cli_args.help_text(f"analysis={name}: {module.SUMMARY}", _own_keys(module.Args)))
    return "\n".join(sections)


def _own_keys(cls: type) -> type:
    """A dataclass of the keys `cls` adds to CommonArgs (for the help table)."""
    common = {f.name for f in dataclasses.fields(CommonArgs)}
    hints = typing.get_type_hints(cls)
    own = [
        (f.name, hints[f.name], dataclasses.field(default=f.default, default_factory=f.default_factory, metadata=f.metadata))
        for f in dataclasses.fields(cls)
        if f.name not in common
    ]
    return dataclasses.make_dataclass(f"{cls.__module__.rsplit('.', 1)[-1]}_keys", own)


def analyze(a: CommonArgs) -> Outputs:
    """Run one analysis; returns what it wrote (also <out>/<analysis>.json)."""
    assert a.analysis is not None and a.run is not None
    run = LoadedRun(a.run, a.checkpoint, a.seed, a.early_stop, a.bodies, a.batch_size)
    torch.set_num_threads(int(run.setting("torch_threads", default=1)))
    out_dir = Path(a.out).resolve() if a.out else run.rundir.analysis
    try:  # before any lifetime runs: a read-only run directory fails now, not after the work
        probe_writable(out_dir)
    except OSError as exc:
        run.close()
        raise ConfigError(f"out={str(out_dir)!r} cannot be written ({os_error_line(exc)}); or choose another folder with out=<dir>") from None
    out = Outputs(out_dir)
    t0 = time.perf_counter()
    try:
        tracked = progress.Progress(a.analysis, progress.planned_lifetimes(a.analysis, run, a)) if a.progress else None
        with progress.shown_on_stderr() if a.progress else contextlib.nullcontext(), progress.tracking(tracked):
            MODULES[a.analysis].analyse(run, a, out)
    finally:
        run.close()
    arguments = dataclasses.asdict(a)
    summary = {
        "analysis": a.analysis,
        "arguments": arguments,
        **run.describe(),
        "bodies": [e.name for e in run.envs],
        "episode_length": dict(run.horizons),  # steps each body's episode can last (where an analysis needed it)
        "wall_time_s": time.perf_counter() - t0,
        "results": out.summary,
    }
    write_json(out.path(f"{a.analysis}.json"), summary)
    for p in out.files:
        print(f"wrote {p}")
    if run.setting("logger", "wandb"):
        log_to_wandb(run, a.analysis, out, arguments)
    return out


def main(argv: Sequence[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else list(argv)
    run_command(help_text(args), args, lambda given: analyze(parse_args(given)), needs_args=True)


if __name__ == "__main__":
    main()
