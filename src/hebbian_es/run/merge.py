"""`python -m hebbian_es.merge run=<dir> k=<K> [out=<dir>] [seed=0] [n_init=4]`

Evolve, then merge (Pedersen & Risi 2021): cluster a trained run's per-synapse rule
coefficients (ABCD+η, or whatever its rule has) from checkpoints/last.pt into K rules
with k-means (k-means++ starts, seeded, deterministic) and write a new run directory
that evolves only those K rules:

  config.yaml            the run's config with rule.sharing=merged, rule.shared_k=K,
                         rule.assignment=rule_assignment.npy (relative: inside the run dir)
  rule_assignment.npy    every plastic synapse's rule (int64), layer by layer, (out, in) row-major
  checkpoints/last.pt    generation 0 of the new run: the K centroids, everything else
                         (modulatory, conv, co-evolved, static weights) copied as trained
  merge.json             source run, K, assignment counts, parameter counts, the command

Continue it with the command merge.json and the console give: the run's own overrides,
plus rule.sharing=merged rule.shared_k=K rule.assignment=rule_assignment.npy
hydra.run.dir=<new dir>; training resumes from its last.pt.  Nothing is written when
an input is refused (one `error:` line, exit 2).
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
SHARING_KEYS = ("rule.sharing=", "rule.shared_k=", "rule.assignment=", "hydra.run.dir=")


@dataclass
class MergeArgs:
    run: Optional[str] = key(None, "the trained run directory (required): its checkpoints/last.pt is merged")
    k: Optional[int] = key(None, "the number of shared rules K (required), 1 <= K <= the plastic synapses")
    out: Optional[str] = key(None, "the new run directory (default: <run>_merged_k<K> beside the run)")
    seed: int = key(0, "seed of k-means++")
    n_init: int = key(4, "k-means runs from different k-means++ starts; the lowest inertia wins")


def per_synapse_coefficients(task: Any, params: torch.Tensor) -> np.ndarray:
    """(plastic synapses, coefficients per synapse): each synapse's rule, layer by layer, (out, in)
    row-major (a run with shared rules gives each synapse its rule's coefficients)."""
    from hebbian_es.core.plasticity import PlasticState

    blocks = task.layout.views(params.reshape(1, -1).to(torch.float64))
    plastic = task.network.plastic_indices(task.rule)
    state = PlasticState(task.rule, task.plasticity, blocks, plastic)
    rows = [state.coefficients(blocks, l)[0].reshape(task.rule.coefficients_per_synapse, -1).T for l in sorted(plastic)]
    return torch.cat(rows).numpy()


def merge(args: MergeArgs) -> Path:
    from hebbian_es import config as config_schema
    from hebbian_es.core.kmeans import kmeans
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
    task = build_task(cfg)
    saved = load_checkpoint(src.last, "merge another run, or restore the checkpoint")
    check_compatible(saved["task"], task.fingerprint(), src.last)
    params = saved["params"].detach().to(torch.float32).reshape(-1)
    coeffs = per_synapse_coefficients(task, params)
    n, k = len(coeffs), int(args.k)
    if not 1 <= k <= n:
        raise ConfigError(f"k={k}: must be in 1..{n:,} (the plastic synapses of run={args.run!r})")
    distinct = len(np.unique(coeffs, axis=0))
    if k > distinct:
        raise ConfigError(f"k={k}: run={args.run!r} has only {distinct:,} distinct per-synapse rules; allowed: k in 1..{distinct:,}")
    if args.n_init < 1:
        raise ConfigError(f"n_init={args.n_init}: must be >= 1")
    out = Path(args.out).resolve() if args.out else src.path.parent / f"{src.path.name}_merged_k{k}"
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ConfigError(f"out={str(out)!r} exists and is not empty; choose another out=")

    result = kmeans(coeffs, k, seed=args.seed, n_init=args.n_init)
    new = _merged_config(data, k, out)
    # Everything is written into a hidden sibling, then renamed: a failure leaves no half run dir.
    staging = out.parent / f".{out.name}.merging-{os.getpid()}"
    staging.mkdir(parents=True)
    try:
        info = _write_run(staging, new, task, params, result, k, cfg.seed)
        info.update(source_run=str(src.path), source_generation=int(saved["generation"]), k=k, seed=args.seed,
                    n_init=args.n_init, inertia=result.inertia, iterations=result.iterations, converged=result.converged,
                    command=_command(src, k, out))
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
    new = {**data, "rule": {**data["rule"], "sharing": "merged", "shared_k": k, "assignment": ASSIGNMENT_FILE}}
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

    np.save(staging / ASSIGNMENT_FILE, result.labels.astype(np.int64))
    conf = replace(config_schema.from_container(new), run_dir=str(staging))
    merged = build_task(conf)  # the new run's task, rebuilt from the file just written
    old_views = task.layout.views(params.reshape(1, -1))
    parts = []
    for block in merged.layout.blocks:
        if block.name == "shared.coefficients":  # (C, K): the centroids, one column per rule
            parts.append(torch.from_numpy(result.centers.T.copy()).to(torch.float32).reshape(-1))
        else:  # modulatory, conv, co-evolved and static weights as trained
            parts.append(old_views[block.name][0].reshape(-1).clone())
    center = torch.cat(parts)
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


def _command(src: Any, k: int, out: Path) -> str:
    """The training command that continues the merged run: the source run's overrides
    (status.json) with the shared-rule keys and the new run dir."""
    status = src.read_status() or {}
    overrides = status.get("overrides") if isinstance(status.get("overrides"), list) else None
    words = [o for o in map(str, overrides or []) if not o.startswith(SHARING_KEYS)]
    if overrides is None:
        words = ["<the source run's overrides>"]
    words += ["rule.sharing=merged", f"rule.shared_k={k}", f"rule.assignment={ASSIGNMENT_FILE}", f"hydra.run.dir={out}"]
    return "python -m hebbian_es " + " ".join(shlex.quote(w) if not w.startswith("<") else w for w in words)


def main(argv: Sequence[str] | None = None) -> None:
    cli_args.main(__doc__ or "", MergeArgs, argv, merge)


if __name__ == "__main__":
    main()
