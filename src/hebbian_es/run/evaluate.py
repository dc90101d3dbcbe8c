"""`python -m hebbian_es.evaluate run=<dir> [episodes=100] [checkpoint=last|best] ...`

The paper's test protocol (run/protocol.py) on a finished or interrupted run: N
lifetimes of the saved centre per test env (every test body for envs with
morphologies), each from fresh random initial weights, on env seeds disjoint from
training and validation, no early stop unless asked.  Prints the table (Table 1 for
the quadruped) and writes <run>/evaluations/<checkpoint>_gen<G>_n<episodes>_seed<S>.json
(never over the training's own test_<checkpoint>.json).  Builds no optimiser.

env=<name> tests on another env config (conf/env/<name>.yaml, as shipped) with the same
observations and actions: the transfer check of an agent trained on env=carracing_fast
on the real CarRacing-v3 is `python -m hebbian_es.evaluate run=<dir> env=carracing`
(written as ..._env-carracing.json).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence

from hebbian_es import cli_args
from hebbian_es.cli_args import key
from hebbian_es.config import LocalEvaluatorConfig
from hebbian_es.errors import ConfigError


@dataclass
class EvaluateArgs:
    run: Optional[str] = key(None, "the run directory (required)")
    episodes: int = key(100, "test lifetimes per env / body")
    checkpoint: str = key("last", "last (the centre after the last generation) | best (best centre return in training)")
    early_stop: bool = key(False, "apply the env's early-stop rule (the protocol runs whole lifetimes)")
    seed: Optional[int] = key(None, "seed of the test lifetimes (default: the run's seed)")
    workers: Optional[int] = key(None, "worker processes (default: the run's evaluator.workers)")
    env: Optional[str] = key(None, "test on this env config instead of the run's own (e.g. env=carracing for a carracing_fast agent)")


def evaluate(args: EvaluateArgs) -> dict[str, Any]:
    from hebbian_es.files import write_json
    from hebbian_es.run import protocol

    if not args.run:
        raise ConfigError("run=<run dir> is required")
    if args.episodes < 1:
        raise ConfigError(f"episodes={args.episodes}: must be >= 1")
    agent = protocol.load_agent(args.run, args.checkpoint, seed=args.seed, early_stop=args.early_stop, env=args.env)
    out = agent.run.evaluation(args.checkpoint, agent.generation, args.episodes, agent.seed, args.early_stop, args.env)
    _check_writable(out.parent)  # before the lifetimes run, not after: a refusal costs nothing
    evaluator = agent.cfg.evaluator
    if args.workers is not None:  # this command runs on one machine, whatever the run used
        evaluator = LocalEvaluatorConfig(args.workers, evaluator.batch_size, evaluator.threads_per_worker)
    results = protocol.run_protocol(evaluator, agent.task, agent.params, args.episodes, agent.seed, args.early_stop)
    results.update({"checkpoint": str(agent.checkpoint), "checkpoint_generation": agent.generation})
    write_json(out, results)
    print(protocol.format_table(results))
    print(f"wrote {out}")
    return results


def _check_writable(folder: Any) -> None:
    from hebbian_es.files import probe_writable

    try:
        probe_writable(folder)
    except OSError as exc:
        raise ConfigError(f"cannot write the evaluation into {folder}: {exc.strerror}; make the run directory writable") from None


def main(argv: Sequence[str] | None = None) -> None:
    cli_args.main(__doc__ or "", EvaluateArgs, argv, evaluate, needs_args=False)


if __name__ == "__main__":
    main()
