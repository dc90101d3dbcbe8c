"""`python -m hebbian_es.select run=<dir> [top_k=3] [episodes=20] [workers=...]`

Selects a run's checkpoint by validation, by a rule fixed before any test (docs/protocol.md,
"Which checkpoint is tested"):

1. candidates: the centres kept at every validation (checkpoints/validation/gen<g>.pt, written
   while training with validation.keep_checkpoints);
2. the top_k of them by their validation during training (validation.jsonl: a few fresh lifetimes
   each, on the training envs and bodies, as training validates);
3. each of those on `episodes` more lifetimes of the selection stream (env seeds disjoint from
   training, validation and test: no test track or start state is ever seen), on the training
   envs and bodies with the training's episode rule (early stop as trained);
4. selected: the highest mean of step 3 (a tie: the later generation).

Writes <run>/selection.json (every candidate's numbers, so a reader sees how much selection
mattered) and prints the table; `evaluate`, `zoo` and `analyze` then take checkpoint=selected.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, replace
from typing import Any, Optional, Sequence

from hebbian_es import cli_args
from hebbian_es.cli_args import key
from hebbian_es.errors import ConfigError


@dataclass
class SelectArgs:
    run: Optional[str] = key(None, "the run directory (required)")
    top_k: int = key(3, "candidates re-validated: the best k by their validation during training")
    episodes: int = key(20, "fresh selection lifetimes per candidate (and per training env / body)")
    workers: Optional[int] = key(None, "worker processes (default: the run's evaluator.workers)")


def candidates(rd: Any) -> list[tuple[int, float]]:
    """(generation, validation mean during training) of every validated centre that was kept."""
    rows = rd.validation_rows()
    kept = rd.validation_checkpoints()
    where = f"run={str(rd.path)!r}"
    if not rows:
        raise ConfigError(f"{where} has no validation rows ({rd.validation.name}): the selection rule needs validation; test checkpoint=last instead")
    if not kept:
        raise ConfigError(
            f"{where} kept no validated centres (checkpoints/validation/gen<g>.pt, validation.keep_checkpoints=true): "
            "the selection rule cannot be applied; test checkpoint=last instead"
        )
    found = {}
    for r in rows:
        g, mean = int(r["generation"]), float(r.get("val_mean", math.nan))
        if g in kept and math.isfinite(mean):
            found[g] = mean
    if not found:
        raise ConfigError(f"{where}: none of its validation rows has a kept centre with a finite mean; test checkpoint=last instead")
    return sorted(found.items())


def select(args: SelectArgs) -> dict[str, Any]:
    import numpy as np

    from hebbian_es import config as config_schema
    from hebbian_es.config import LocalEvaluatorConfig
    from hebbian_es.core.task import SELECTION, build_task
    from hebbian_es.es.base import ExplicitPopulation
    from hebbian_es.es.evaluators import make_evaluator
    from hebbian_es.files import write_json_atomic
    from hebbian_es.run import protocol
    from hebbian_es.run.checkpoint import check_compatible, load_checkpoint
    from hebbian_es.run.rundir import RunDir
    from hebbian_es.stats import mean_ci

    if not args.run:
        raise ConfigError("run=<run dir> is required")
    if args.top_k < 1:
        raise ConfigError(f"top_k={args.top_k}: must be >= 1")
    if args.episodes < 1:
        raise ConfigError(f"episodes={args.episodes}: must be >= 1")
    rd = RunDir.open(args.run)
    ranked = sorted(candidates(rd), key=lambda gv: (gv[1], gv[0]), reverse=True)
    shortlist = ranked[: args.top_k]
    cfg = config_schema.from_container(rd.read_config())
    cfg = replace(cfg, run_dir=str(rd.path))
    task = build_task(cfg, phase="train")  # validation's envs and bodies, with the training's episode rule
    evaluator_cfg = cfg.evaluator
    if args.workers is not None:
        evaluator_cfg = LocalEvaluatorConfig(args.workers, evaluator_cfg.batch_size, evaluator_cfg.threads_per_worker)
    lifetimes = protocol.episodes_of(cfg.seed, SELECTION, 0, args.episodes, len(task.envs))
    evaluator = make_evaluator(evaluator_cfg, task, phase="train")
    rows = []
    try:
        for k, (generation, val_mean) in enumerate(shortlist):
            path = rd.validation_checkpoint(generation)
            saved = load_checkpoint(path, "move it away and select again")
            check_compatible(saved["task"], task.fingerprint(), path)
            params = saved["params"].detach().float().reshape(-1)
            res = evaluator.evaluate(ExplicitPopulation(params.unsqueeze(0)), [0], lifetimes)
            returns = res.returns[0]
            finite = returns[np.isfinite(returns)]
            rows.append({
                "generation": generation, "checkpoint": str(path.relative_to(rd.path)), "training_validation_mean": val_mean,
                "selection_mean": float(finite.mean()) if len(finite) else math.nan,
                "selection_ci95": list(mean_ci(finite)), "selection_sd": float(finite.std()) if len(finite) else math.nan,
                "selection_returns": [float(x) for x in returns],
            })
            print(f"select: candidate {k + 1}/{len(shortlist)} (generation {generation}): mean {rows[-1]['selection_mean']:.2f} "
                  f"over {len(returns)} selection lifetimes", file=sys.stderr)
    finally:
        evaluator.close()
    best = max(rows, key=lambda r: (r["selection_mean"] if math.isfinite(r["selection_mean"]) else -math.inf, r["generation"]))
    result = {
        "rule": {
            "top_k": args.top_k, "episodes": args.episodes, "envs": [e.name for e in task.envs], "stream": "selection",
            "text": "the top_k kept validation centres by training validation, each re-validated on `episodes` fresh "
                    "selection lifetimes per training env; the highest mean wins (tie: the later generation)",
        },
        "seed": cfg.seed,
        "validated": [{"generation": g, "training_validation_mean": v} for g, v in candidates(rd)],
        "candidates": rows,
        "selected": {"generation": best["generation"], "checkpoint": best["checkpoint"], "selection_mean": best["selection_mean"]},
    }
    write_json_atomic(rd.selection, result)
    print(format_selection(result))
    print(f"wrote {rd.selection}")
    return result


def format_selection(result: dict[str, Any]) -> str:
    from hebbian_es.stats import format_ci

    lines = [f"{'generation':>10} {'training val':>13} {'selection mean':>15} {'95% CI':>20}"]
    chosen = result["selected"]["generation"]
    for r in result["candidates"]:
        mark = "  <- selected" if r["generation"] == chosen else ""
        lines.append(f"{r['generation']:>10} {r['training_validation_mean']:>13.2f} {r['selection_mean']:>15.2f} "
                     f"{format_ci(r['selection_ci95'], 2):>20}{mark}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    cli_args.main(__doc__ or "", SelectArgs, argv, select)


if __name__ == "__main__":
    main()
