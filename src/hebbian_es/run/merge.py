"""`python -m hebbian_es.merge run=<dir> k=<K> [out=<dir>] [seed=0] [n_init=4] [features=update]`

Evolve, then merge (Pedersen & Risi 2021): cluster a trained run's per-synapse rules (ABCD+η, or
whatever its rule has) from checkpoints/last.pt into K rules and write a new run directory that
evolves only those K rules.  features=update (the default) clusters what the rules do, each
synapse's Δw on a grid of pre/post activities, and keeps each cluster's medoid rule
(hebbian_es/core/merging.py); features=coefficients clusters the raw coefficients and keeps the
centroids (the first version of this command).  k-means: k-means++ starts, seeded, deterministic.

  config.yaml            the run's config with rule.sharing=merged, rule.shared_k=K,
                         rule.assignment=rule_assignment.npy (relative: inside the run dir)
  rule_assignment.npy    every plastic synapse's rule (int64), layer by layer, (out, in) row-major
  checkpoints/last.pt    generation 0 of the new run: the K rules, everything else
                         (modulatory, conv, co-evolved, static weights) copied as trained
  merge.json             source run, K, assignment counts, parameter counts, the command

Continue it with the command merge.json and the console give: the run's own overrides,
plus rule.sharing=merged rule.shared_k=K rule.assignment=rule_assignment.npy
hydra.run.dir=<new dir>; training resumes from its last.pt.  Nothing is written when
an input is refused (one `error:` line, exit 2).  Merging during evolution, every k
generations, is rule.merge.* (docs/plasticity.md).
"""

from __future__ import annotations

import os
import shlex
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import torch

from hebbian_es import cli_args
from hebbian_es.cli_args import key
from hebbian_es.errors import ConfigError

ASSIGNMENT_FILE = "rule_assignment.npy"
MERGE_FILE = "merge.json"
SHARING_KEYS = ("rule.sharing=", "rule.shared_k=", "rule.assignment=", "rule.merge.", "hydra.run.dir=")


@dataclass
class MergeArgs:
    run: Optional[str] = key(None, "the trained run directory (required): its checkpoints/last.pt is merged")
    k: Optional[int] = key(None, "the number of shared rules K (required), 1 <= K <= the plastic synapses")
    out: Optional[str] = key(None, "the new run directory (default: <run>_merged_k<K> beside the run)")
    seed: int = key(0, "seed of k-means++")
    n_init: int = key(4, "k-means runs from different k-means++ starts; the lowest inertia wins")
    features: str = key("update", "what is clustered: update (each rule's Δw on a grid of activities; medoids) | coefficients (raw; centroids)")


def per_synapse_coefficients(task: Any, params: torch.Tensor) -> np.ndarray:
    """(plastic synapses, coefficients per synapse): core.merging.per_synapse_coefficients."""
    from hebbian_es.core.merging import per_synapse_coefficients as coefficients

    return coefficients(task, params)


def merge(args: MergeArgs) -> Path:
    from hebbian_es import config as config_schema
    from hebbian_es.core.merging import FEATURES, apply_saved_merges, distinct_rules, merge_rules
    from hebbian_es.core.rules import RULES, get_rule
    from hebbian_es.core.task import build_task
    from hebbian_es.run.checkpoint import check_compatible, load_checkpoint
    from hebbian_es.run.rundir import RunDir

    if not args.run or args.k is None:
        raise ConfigError("run=<run dir> and k=<number of rules> are required")
    src = RunDir.open(args.run)
    if not src.last.exists():
        raise ConfigError(f"run={args.run!r} has no checkpoints/{src.last.name}: nothing to merge; train it first")
    data = src.read_config()
    cfg = replace(config_schema.from_container(data), run_dir=str(src.path))
    if not get_rule(cfg.rule.name, cfg.rule.use_eta).plastic:
        plastic = sorted(n for n, r in RULES.items() if r.plastic)
        raise ConfigError(f"run={args.run!r} has rule.name={cfg.rule.name!r}: no plasticity rules to merge; allowed: a run of {plastic}")
    if args.features not in FEATURES:
        raise ConfigError(f"features={args.features!r}; allowed: {', '.join(FEATURES)}")
    task = build_task(cfg)
    saved = load_checkpoint(src.last, "merge another run, or restore the checkpoint")
    task = apply_saved_merges(task, saved)  # a run that merged during evolution: its current rules
    check_compatible(saved["task"], task.fingerprint(), src.last)
    params = saved["params"].detach().to(torch.float32).reshape(-1)
    n, k = task.counts()["plastic_synapses"], int(args.k)
    if not 1 <= k <= n:
        raise ConfigError(f"k={k}: must be in 1..{n:,} (the plastic synapses of run={args.run!r})")
    distinct = distinct_rules(task, params, args.features)
    if k > distinct:
        what = "distinct per-synapse rules" + (" (by their Δw on the activity grid)" if args.features == "update" else "")
        raise ConfigError(f"k={k}: run={args.run!r} has only {distinct:,} {what}; allowed: k in 1..{distinct:,}")
    if args.n_init < 1:
        raise ConfigError(f"n_init={args.n_init}: must be >= 1")
    out = Path(args.out).resolve() if args.out else src.path.parent / f"{src.path.name}_merged_k{k}"
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ConfigError(f"out={str(out)!r} exists and is not empty; choose another out=")

    result = merge_rules(task, params, k, seed=args.seed, features=args.features, n_init=args.n_init)
    new = _merged_config(data, k, out)
    # Everything is written into a hidden sibling, then renamed: a failure leaves no half run dir.
    staging = out.parent / f".{out.name}.merging-{os.getpid()}"
    staging.mkdir(parents=True)
    try:
        info = _write_run(staging, new, task, params, result, k, cfg.seed)
        info.update(source_run=str(src.path), source_generation=int(saved["generation"]), k=k, seed=args.seed,
                    n_init=args.n_init, features=args.features, inertia=result.inertia, iterations=result.iterations,
                    converged=result.converged, command=_command(src, k, out, merging=cfg.rule.merge.every > 0))
        from hebbian_es.files import write_json

        write_json(staging / MERGE_FILE, info)
        if out.exists():
            out.rmdir()  # empty (checked above)
        os.rename(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    print(f"merged {info['counts']['source']['plastic_synapses']:,} synapses of {src.path} into {k} rules: {info['summary']}")
    print(f"wrote {out} (generation 0: config.yaml, {ASSIGNMENT_FILE}, checkpoints/last.pt, {MERGE_FILE})")
    print(f"continue with: {info['command']}")
    return out


def _merged_config(data: dict[str, Any], k: int, out: Path) -> dict[str, Any]:
    rule = {**data["rule"], "sharing": "merged", "shared_k": k, "assignment": ASSIGNMENT_FILE}
    if isinstance(rule.get("merge"), dict):  # the merged run evolves its K rules; it does not merge again
        rule["merge"] = {**rule["merge"], "every": 0, "start": None, "k": []}
    new = {**data, "rule": rule}
    new["run_dir"] = str(out)
    return new


def _write_run(staging: Path, new: dict[str, Any], task: Any, params: torch.Tensor, result: Any, k: int, seed: int) -> dict[str, Any]:
    """The new run's files in `staging`; returns merge.json's counts."""
    from omegaconf import OmegaConf

    from hebbian_es import config as config_schema
    from hebbian_es.core.task import build_task
    from hebbian_es.files import atomic_save, write_text_atomic
    from hebbian_es.run.checkpoint import FORMAT
    from hebbian_es.run.rundir import RunDir
    from hebbian_es.run.train import build_run

    from hebbian_es.core.merging import merged_params

    np.save(staging / ASSIGNMENT_FILE, result.labels.astype(np.int64))
    conf = replace(config_schema.from_container(new), run_dir=str(staging))
    merged = build_task(conf)  # the new run's task, rebuilt from the file just written
    # (C, K): the K rules, one column each; modulatory, conv, co-evolved and static weights as trained
    center = merged_params(task, merged, params, result.rules)
    rundir = RunDir(staging)
    rundir.checkpoints.mkdir()
    run = build_run(conf, rundir)
    run.state = run.optimizer.init(center, seed)
    atomic_save({"format": FORMAT, **run.state_dict(), "params": center.clone()}, rundir.last)
    write_text_atomic(rundir.config, OmegaConf.to_yaml(OmegaConf.create(new)))
    return {
        "assignment_file": ASSIGNMENT_FILE,
        "assignment_counts": np.bincount(result.labels, minlength=k).tolist(),
        "counts": {"source": task.counts(), "merged": merged.counts()},
        "summary": merged.plasticity_summary(),
    }


def _command(src: Any, k: int, out: Path, merging: bool = False) -> str:
    """The training command that continues the merged run: the source run's overrides
    (status.json) with the shared-rule keys and the new run dir (merging: the source merged during
    evolution; the merged run does not)."""
    status = src.read_status() or {}
    overrides = status.get("overrides") if isinstance(status.get("overrides"), list) else None
    words = [o for o in map(str, overrides or []) if not o.startswith(SHARING_KEYS)]
    if overrides is None:
        words = ["<the source run's overrides>"]
    words += ["rule.sharing=merged", f"rule.shared_k={k}", f"rule.assignment={ASSIGNMENT_FILE}"]
    words += ["rule.merge.every=0", "rule.merge.start=null", "rule.merge.k=[]"] if merging else []
    words += [f"hydra.run.dir={out}"]
    return "python -m hebbian_es " + " ".join(shlex.quote(w) if not w.startswith("<") else w for w in words)


def main(argv: Sequence[str] | None = None) -> None:
    cli_args.main(__doc__ or "", MergeArgs, argv, merge)


if __name__ == "__main__":
    main()
