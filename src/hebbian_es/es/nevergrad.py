"""Nevergrad optimisers behind the ask/tell contract of `optim.base` (docs/optimizers.md).

`optimizer=nevergrad optimizer.name=<Name>` picks one of `EXPOSED` — the Nevergrad
algorithms that stay usable at this project's 61,440 to 456,640 parameters.  Full
CMA is O(n²) and refused above `FULL_COVARIANCE_MAX_DIM`; NGOpt picks its algorithm
from dimension, worker count and budget, so it warns (and is refused where its pick
is not usable at the size).

The boundary, in one place:
- sign: Nevergrad minimises; fitness is maximised.  loss = -fitness, and a NaN/±inf
  fitness gets a finite loss worse than every finite loss told so far (`to_losses`);
- scale: Nevergrad's default prior is N(0, 1) around 0.  The parametrization here is
  `ng.p.Array(init=x0).set_mutation(sigma=optimizer.sigma)`, where x0 is the task's
  initial centre (drawn from `coefficient_init` and the lifetime init, exactly the
  point OpenAI-ES starts from); no bounds (OpenAI-ES has none either);
- seed: the parametrization's random_state derives from the run's seed, so a run is
  reproducible for a fixed seed, whatever the number of evaluation workers.

State: the Nevergrad optimiser is a mutable object, so every state of a run shares
it (`_Live`) and only the latest state can be asked, told or checkpointed; an older
state's `state_dict` is a light record (what best.pt keeps) that cannot be resumed.

Checkpoints: the pickled optimiser is hundreds of MB at 100k dimensions, so it is
written every `checkpoint_every` generations (into its own file next to last.pt,
`nevergrad_g<generation>.pt`, when ESRun hands over its checkpoint directory), and
every generation's `state_dict` holds the losses told since that dump.  Resuming
unpickles the dump and replays the asks and tells with those losses: asks are
deterministic given the pickled random state, so the restored optimiser is exactly
the one that was checkpointed (the replayed centre is checked bit for bit), and a
resumed run continues identically to an uninterrupted one with no generation lost.
"""

from __future__ import annotations

import gc
import io
import math
import pickle
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import torch

from hebbian_es.files import atomic_save, load_torch
from hebbian_es.config import NevergradConfig
from hebbian_es.errors import ConfigError
from hebbian_es.es.base import ExplicitPopulation

KIND = "nevergrad"
FULL_COVARIANCE_MAX_DIM = 5_000  # full CMA's n x n covariance: 200 MB and O(n³) eigendecompositions at 5,000
DIAGONAL_CMA_WARN_DIM = 100_000  # above: warn (measured cost at 456,640 x 64 in docs/optimizers.md)
CENTERS = ("auto", "recommendation")
DUMP_FILE = re.compile(r"^nevergrad_g(\d+)\.pt$")
NO_FINITE_LOSS_YET = 1e30  # a non-finite fitness before any finite one was told
# Nevergrad's parameters hold reference cycles: told candidates wait for Python's cyclic GC,
# and memory climbs by a generation's worth of candidates (~0.25 GB at 456,640 x 64) at a time
# before it drops.  Above this many bytes of candidates per generation, tell() collects.
COLLECT_ABOVE_BYTES = 64 * 2**20


class NevergradWarning(UserWarning):
    """A Nevergrad choice that works but costs reproducibility, time or memory."""


@dataclass(frozen=True)
class Spec:
    build: Callable[[int], Any]  # popsize -> a configured Nevergrad optimiser (class or ConfiguredOptimizer)
    why: str


def _ng() -> Any:
    import nevergrad as ng

    return ng


def _two_points_de(popsize: int) -> Any:
    return _ng().optimizers.TwoPointsDE  # population max(30, popsize) (num_workers = popsize)


def _tbpsa(popsize: int) -> Any:
    # TBPSA's default λ is 4 x dimension; initial_popsize μ = popsize/4 makes λ = popsize,
    # one TBPSA generation per generation here (λ grows when progress stalls: `max_popsize_growth`).
    return _ng().optimizers.ParametrizedTBPSA(naive=False, initial_popsize=max(1, popsize // 4))


def _diagonal_cma(popsize: int) -> Any:
    return _ng().optimizers.DiagonalCMA  # λ = max(popsize, 4 + 3 ln n)


def _cma(popsize: int) -> Any:
    return _ng().optimizers.ParametrizedCMA()  # full covariance: small problems only


def _ngopt(popsize: int) -> Any:
    return _ng().optimizers.NGOpt


EXPOSED: dict[str, Spec] = {
    "TwoPointsDE": Spec(_two_points_de, "differential evolution, two-point crossover: O(n) per candidate"),
    "TBPSA": Spec(_tbpsa, "self-adaptive ES with population-size adaptation for noisy fitness: O(n) per candidate"),
    "DiagonalCMA": Spec(_diagonal_cma, "CMA-ES with a diagonal covariance: O(n) but the heaviest per generation"),
    "CMA": Spec(_cma, f"full-covariance CMA-ES: O(n²), refused above {FULL_COVARIANCE_MAX_DIM:,} parameters"),
    "NGOpt": Spec(_ngopt, "Nevergrad's auto-selector: warns; needs `budget`; refused where its pick is not usable"),
}
LARGE_SCALE = ("TwoPointsDE", "TBPSA", "DiagonalCMA")  # usable at any size here


def to_losses(fitness: np.ndarray, worst_finite: float) -> tuple[np.ndarray, float]:
    """Fitness (maximised) to Nevergrad losses (minimised), once, at the boundary.

    A NaN or ±inf fitness gets a finite loss worse than every finite loss told so far
    (`worst_finite`, and this batch's), so it ranks worst without feeding inf into the
    optimiser's statistics.  Returns the losses and the updated worst finite loss."""
    loss = -np.asarray(fitness, dtype=np.float64)
    finite = np.isfinite(loss)
    if finite.any():
        worst_finite = max(worst_finite, float(loss[finite].max()))
    if not finite.all():
        penalty = worst_finite + max(1.0, abs(worst_finite)) if math.isfinite(worst_finite) else NO_FINITE_LOSS_YET
        loss = np.where(finite, loss, penalty)
    return loss, worst_finite


@dataclass
class _Live:
    """The one mutable part of a run: the Nevergrad optimiser and its checkpoint bookkeeping."""

    opt: Any
    generation: int
    dump_generation: int
    dump: bytes | None  # the pickled optimiser at dump_generation; None once written to its file
    replay: list[np.ndarray] = field(default_factory=list)  # losses told since dump_generation
    worst_finite: float = -math.inf
    pending: tuple[list[Any], ExplicitPopulation] | None = None  # asked, not yet told
    directory: Path | None = None
    previous_file: str | None = None  # what the last.pt on disk refers to


@dataclass(frozen=True)
class NGState:
    generation: int
    seed: int
    center: torch.Tensor
    scalars: dict[str, float]
    live: _Live = field(repr=False, compare=False)


class NevergradES:
    """One Nevergrad optimiser, asked and told `popsize` candidates per generation."""

    def __init__(
        self,
        name: str = NevergradConfig.name,
        popsize: int = NevergradConfig.popsize,
        sigma: float = NevergradConfig.sigma,
        checkpoint_every: int = NevergradConfig.checkpoint_every,
        archive_min_len: int = NevergradConfig.archive_min_len,
        archive_max_len: int = NevergradConfig.archive_max_len,
        max_popsize_growth: int = NevergradConfig.max_popsize_growth,
        center: str = NevergradConfig.center,
        budget: int | None = NevergradConfig.budget,
    ) -> None:
        """Defaults: the schema's (`hebbian_es.config.NevergradConfig`), documented there."""
        if name not in EXPOSED:
            raise ConfigError(f"optimizer.name={name!r} is not an exposed Nevergrad optimiser; allowed: {sorted(EXPOSED)}")
        if int(popsize) < 4:
            raise ConfigError(f"optimizer.popsize={popsize}: must be >= 4")
        if not float(sigma) > 0:
            raise ConfigError(f"optimizer.sigma={sigma}: must be > 0")
        if int(checkpoint_every) < 1:
            raise ConfigError(f"optimizer.checkpoint_every={checkpoint_every}: must be >= 1")
        if not 1 <= int(archive_min_len) < int(archive_max_len):
            raise ConfigError(
                f"optimizer.archive_min_len={archive_min_len}, optimizer.archive_max_len={archive_max_len}: "
                "need 1 <= archive_min_len < archive_max_len"
            )
        if int(max_popsize_growth) < 1:
            raise ConfigError(f"optimizer.max_popsize_growth={max_popsize_growth}: must be >= 1")
        if center not in CENTERS:
            raise ConfigError(f"optimizer.center={center!r}; allowed: {list(CENTERS)}")
        if budget is not None and int(budget) < int(popsize):
            raise ConfigError(f"optimizer.budget={budget}: must be >= optimizer.popsize={popsize} (or null)")
        self.name = name
        self.popsize = int(popsize)
        self.sigma = float(sigma)
        self.checkpoint_every = int(checkpoint_every)
        self.archive_min_len = int(archive_min_len)
        self.archive_max_len = int(archive_max_len)
        self.max_popsize_growth = int(max_popsize_growth)
        self.center_mode = center
        self.budget = None if budget is None else int(budget)
        self._directory: Path | None = None

    def use_checkpoint_dir(self, directory: Path) -> None:
        """Where the optimiser dumps go (ESRun's checkpoint dir); without one they stay inline in state_dict."""
        self._directory = Path(directory)

    # ---- construction ----------------------------------------------------------------------
    def _check_size(self, dim: int) -> None:
        if self.name == "CMA" and dim > FULL_COVARIANCE_MAX_DIM:
            raise ConfigError(
                f"optimizer.name=CMA: full-covariance CMA needs an n x n matrix ({dim:,}² x 8 bytes = "
                f"{dim * dim * 8 / 2**30:,.0f} GiB) and O(n³) updates; refused above {FULL_COVARIANCE_MAX_DIM:,} "
                f"parameters; allowed at n={dim:,}: {sorted(LARGE_SCALE)}"
            )
        if self.name == "DiagonalCMA" and dim > DIAGONAL_CMA_WARN_DIM:
            warnings.warn(
                f"optimizer.name=DiagonalCMA at n={dim:,}: at 456,640 x 64 its ask/tell took ~7x the time of "
                "TwoPointsDE or TBPSA, 3.4 GB peak RSS and 0.9 GB per optimiser dump (docs/optimizers.md)",
                NevergradWarning,
                stacklevel=3,
            )

    def _resolve_ngopt(self, opt: Any, dim: int) -> None:
        if self.budget is None:
            raise ConfigError(
                "optimizer.name=NGOpt needs optimizer.budget (total candidates, generations x popsize): "
                "its choice of algorithm depends on it"
            )
        picked = opt
        while hasattr(picked, "_select_optimizer_cls"):
            picked = picked.optim
        if dim > FULL_COVARIANCE_MAX_DIM and picked.name not in LARGE_SCALE:
            raise ConfigError(
                f"optimizer.name=NGOpt picks {picked.name} at n={dim:,}, popsize {self.popsize}, budget {self.budget:,}, "
                f"which is not usable at this size; allowed at n={dim:,}: {sorted(LARGE_SCALE)}"
            )
        warnings.warn(
            f"optimizer.name=NGOpt picked {picked.name} for n={dim:,}, popsize {self.popsize}, budget {self.budget:,}; "
            f"another popsize or budget may pick another algorithm: name it (optimizer.name) to pin it",
            NevergradWarning,
            stacklevel=3,
        )

    def _build(self, x0: np.ndarray, seed: int) -> Any:
        ng = _ng()
        param = ng.p.Array(init=x0).set_mutation(sigma=self.sigma)
        param.random_state = np.random.RandomState(np.random.SeedSequence([seed, 0x4E47]).generate_state(1)[0])
        opt = EXPOSED[self.name].build(self.popsize)(param, budget=self.budget, num_workers=self.popsize)
        if self.name == "NGOpt":
            self._resolve_ngopt(opt, x0.size)
        # Nevergrad's default archive keeps up to 7 x popsize x 10 points (GBs at this size); every
        # algorithm exposed here keeps its own population, the archive only feeds "best so far".
        opt.pruning = ng.optimizers.base.utils.Pruning(self.archive_min_len, self.archive_max_len)
        return opt

    def init(self, x0: torch.Tensor, seed: int) -> NGState:
        if int(seed) < 0:
            raise ConfigError(f"seed={seed}: must be a non-negative integer")
        x = x0.detach().to(torch.float64).reshape(-1).numpy().copy()
        self._check_size(x.size)
        opt = self._build(x, int(seed))
        live = _Live(opt, 0, 0, pickle.dumps(opt, protocol=pickle.HIGHEST_PROTOCOL), directory=self._directory)
        return self._state(live, int(seed))

    # ---- ask / tell ------------------------------------------------------------------------
    def _latest(self, state: NGState) -> _Live:
        live = state.live
        if state.generation != live.generation:
            raise RuntimeError(
                f"Nevergrad state of generation {state.generation} is stale (the optimiser is at {live.generation}); "
                "ask and tell the latest state only"
            )
        return live

    def ask(self, state: NGState) -> tuple[NGState, ExplicitPopulation]:
        live = self._latest(state)
        if live.pending is None:  # asking again before telling returns the same candidates
            candidates = [live.opt.ask() for _ in range(self.popsize)]
            vectors = torch.from_numpy(np.stack([np.asarray(c.value, dtype=np.float64) for c in candidates])).to(torch.float32)
            live.pending = (candidates, ExplicitPopulation(vectors))
        return state, live.pending[1]

    def _tell_all(self, opt: Any, candidates: list[Any], losses: np.ndarray) -> None:
        for c, loss in zip(candidates, losses):
            opt.tell(c, float(loss))
        # pycma keeps every asked solution's genotype (up to 1,000 of them: 7 GB at 456,640) to skip
        # an inverse transform that is the identity here (no bounds): told, they are dropped.
        sent = getattr(getattr(opt, "_es", None), "sent_solutions", None)
        if sent is not None and hasattr(sent, "truncate_to"):
            sent.truncate_to(0)
        controller = getattr(opt, "popsize", None)  # TBPSA's adaptive λ/μ: capped so memory stays bounded
        if controller is not None and hasattr(controller, "llambda"):
            cap = self.max_popsize_growth * self.popsize
            if controller.llambda > cap:
                controller.llambda = cap
                controller.mu = min(controller.mu, max(1, cap // 4))

    def tell(self, state: NGState, population: ExplicitPopulation, fitness: np.ndarray) -> NGState:
        live = self._latest(state)
        if live.pending is None or population is not live.pending[1]:
            raise RuntimeError("tell() needs the population that ask() returned for this state")
        fitness = np.asarray(fitness, dtype=np.float64)
        if fitness.shape != (population.size,):
            raise ValueError(f"fitness has shape {fitness.shape}, expected ({population.size},)")
        losses, live.worst_finite = to_losses(fitness, live.worst_finite)
        self._tell_all(live.opt, live.pending[0], losses)
        live.pending = None
        if population.size * population.vectors.shape[1] * 8 >= COLLECT_ABOVE_BYTES:
            gc.collect()
        live.generation += 1
        live.replay.append(losses)
        if live.generation % self.checkpoint_every == 0:
            live.dump = pickle.dumps(live.opt, protocol=pickle.HIGHEST_PROTOCOL)
            live.dump_generation = live.generation
            live.replay = []
        return self._state(live, state.seed)

    # ---- centre and logging ----------------------------------------------------------------
    def _center(self, opt: Any) -> np.ndarray:
        """auto: the search distribution's mean where the algorithm has one (CMA's mean, TBPSA's
        centre), the recommendation otherwise (DE: its best candidate so far).  recommendation:
        Nevergrad's `provide_recommendation()` always (for CMA: the best candidate evaluated)."""
        data = None
        if self.center_mode == "auto":
            es = getattr(opt, "_es", None)  # CMA family, once started
            data = es.mean if es is not None and hasattr(es, "mean") else getattr(opt, "current_center", None)
        if data is None:
            return np.asarray(opt.provide_recommendation().value, dtype=np.float64)
        out = opt.parametrization.spawn_child()
        out.set_standardized_data(np.asarray(data, dtype=np.float64))
        return np.asarray(out.value, dtype=np.float64)

    def _scalars(self, opt: Any) -> dict[str, float]:
        """The algorithm's current global step size in parameter units, where it has one."""
        es = getattr(opt, "_es", None)
        if es is not None and hasattr(es, "sigma"):
            return {"sigma": float(es.sigma) * self.sigma}
        if hasattr(opt, "current_center") and hasattr(opt, "sigma"):
            return {"sigma": float(opt.sigma) * self.sigma}
        return {}

    def _state(self, live: _Live, seed: int) -> NGState:
        center = torch.from_numpy(self._center(live.opt)).to(torch.float32)
        return NGState(live.generation, seed, center, self._scalars(live.opt), live)

    def center(self, state: NGState) -> torch.Tensor:
        return state.center

    def scalars(self, state: NGState) -> dict[str, float]:
        return dict(state.scalars)

    # ---- checkpoint ------------------------------------------------------------------------
    def _header(self, state: NGState) -> dict[str, Any]:
        return {"kind": KIND, "name": self.name, "popsize": self.popsize, "generation": state.generation,
                "seed": state.seed, "center": state.center}  # fmt: skip

    def state_dict(self, state: NGState) -> dict[str, Any]:
        live = state.live
        if state.generation != live.generation:  # e.g. best.pt's pre-tell state: a record, not resumable
            return {**self._header(state), "resumable": False}
        data = {
            **self._header(state),
            "resumable": True,
            "dump_generation": live.dump_generation,
            "replay": [r.copy() for r in live.replay],
            "worst_finite": live.worst_finite,
            "checkpoint_every": self.checkpoint_every,
        }
        if live.directory is None:
            data["dump"] = live.dump
            return data
        name = f"nevergrad_g{live.dump_generation:06d}.pt"
        if live.dump is not None:
            atomic_save(live.dump, live.directory / name)
            live.dump = None  # on disk now: not kept twice in memory
        # Dumps neither this state nor the last.pt already on disk refers to are not needed any more.
        keep = {name, live.previous_file}
        for path in live.directory.glob("nevergrad_g*.pt"):
            if DUMP_FILE.match(path.name) and path.name not in keep:
                path.unlink(missing_ok=True)
        live.previous_file = name
        data["dump_file"] = name
        return data

    def load_state_dict(self, data: Mapping[str, Any]) -> NGState:
        if data.get("kind") != KIND:
            raise ConfigError(f"the checkpoint's optimiser is {data.get('kind')!r}, this config has optimizer.name={self.name}")
        for key, want in (("name", self.name), ("popsize", self.popsize)):
            if data.get(key) != want:
                raise ConfigError(
                    f"the checkpoint was made with optimizer.{key}={data.get(key)}, this config has optimizer.{key}={want}"
                )
        if not data.get("resumable"):
            raise ConfigError("this checkpoint's optimiser entry is a record (best.pt), not a resumable state")
        if "dump" in data:
            dump = data["dump"]
        else:
            if self._directory is None:
                raise RuntimeError("the checkpoint's optimiser dump is a file: call use_checkpoint_dir() first")
            path = self._directory / data["dump_file"]
            if not path.exists():
                raise ConfigError(f"checkpoint needs {path}, which is missing; restore it or start another run_dir")
            dump = load_torch(path)
        opt = pickle.loads(dump)
        replay = [np.asarray(r, dtype=np.float64) for r in data["replay"]]
        for losses in replay:
            candidates = [opt.ask() for _ in range(self.popsize)]
            self._tell_all(opt, candidates, losses)
        live = _Live(
            opt,
            int(data["generation"]),
            int(data["dump_generation"]),
            dump if self._directory is None else None,
            replay,
            float(data["worst_finite"]),
            directory=self._directory,
            previous_file=data.get("dump_file"),
        )
        state = self._state(live, int(data["seed"]))
        if int(data["dump_generation"]) + len(replay) != state.generation or not torch.equal(state.center, data["center"]):
            raise RuntimeError("replaying the Nevergrad checkpoint did not reproduce its centre; the checkpoint is inconsistent")
        return state


def dump_size(state: NGState) -> int:
    """Bytes of one optimiser dump of this state (what checkpoint_every spaces out)."""
    buf = io.BytesIO()
    pickle.dump(state.live.opt, buf, protocol=pickle.HIGHEST_PROTOCOL)
    return buf.tell()
