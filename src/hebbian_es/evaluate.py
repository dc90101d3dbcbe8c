"""`python -m hebbian_es.evaluate run=<dir> [episodes=100] [checkpoint=best|last] ...`

The paper's test protocol on a finished or interrupted run: N lifetimes of the
saved centre, each from fresh random initial weights, on env seeds disjoint
from training and validation, no early stop unless asked.  Prints a table and
writes <run>/test_<checkpoint>.json.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Optional, Sequence

from omegaconf import OmegaConf

from hebbian_es.errors import ConfigError, run_command


@dataclass
class EvaluateArgs:
    run: Optional[str] = None
    episodes: int = 100
    checkpoint: str = "last"  # last | best
    early_stop: bool = False
    seed: Optional[int] = None  # default: the run's seed
    workers: Optional[int] = None  # default: the run's evaluator.workers


def parse_args(argv: Sequence[str]) -> EvaluateArgs:
    allowed = [f.name for f in fields(EvaluateArgs)]
    for arg in argv:
        key = arg.split("=", 1)[0]
        if "=" not in arg or key not in allowed:
            raise ConfigError(f"unknown argument {arg!r}; allowed: {', '.join(k + '=' for k in allowed)}")
    try:
        merged = OmegaConf.merge(OmegaConf.structured(EvaluateArgs), OmegaConf.from_dotlist(list(argv)))
    except Exception as exc:  # a value of the wrong type
        raise ConfigError(str(exc).splitlines()[0]) from None
    args = EvaluateArgs(**OmegaConf.to_container(merged))  # type: ignore[arg-type]
    if not args.run:
        raise ConfigError("run=<run dir> is required")
    if args.episodes < 1:
        raise ConfigError(f"episodes={args.episodes}: must be >= 1")
    return args


def evaluate(args: EvaluateArgs) -> dict[str, Any]:
    from hebbian_es.app import run_test
    from hebbian_es.checkpoint import open_run
    from hebbian_es.training import ESRun

    run_dir, cfg, _ = open_run(args.run, args.checkpoint)
    if args.seed is not None:
        cfg["seed"] = args.seed
    if args.workers is not None:
        cfg["evaluator"]["workers"] = args.workers
        cfg["evaluator"]["distributed"] = False  # this command runs on one machine
    run = ESRun(cfg, run_dir)
    return run_test(run, cfg, args.checkpoint, args.episodes, early_stop=args.early_stop)


def main(argv: Sequence[str] | None = None) -> None:
    run_command(__doc__, argv, lambda args: evaluate(parse_args(args)))


if __name__ == "__main__":
    main()
