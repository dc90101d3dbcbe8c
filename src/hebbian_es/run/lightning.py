"""Lightning organises the phases of a run: training (one step = one ES generation,
manual optimisation), validation (the centre on fresh episodes every k generations)
and test (the test protocol, run/protocol.py).  The work itself lives in run/loop.py
and run/protocol.py; progress shows generations, not epochs."""

from __future__ import annotations

import logging
import warnings
from typing import Any, Callable

import pytorch_lightning as pl
from torch.utils.data import DataLoader

from hebbian_es.run.loop import BudgetSpent, ESRun, WallClockBudget


class HebbianESModule(pl.LightningModule):
    def __init__(
        self,
        run: ESRun,
        validation_episodes: int,
        validation_every: int = 0,
        test: Callable[[], dict[str, Any]] | None = None,
        budget: WallClockBudget | None = None,
    ) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.run = run
        self.validation_episodes = validation_episodes
        self.validation_every = validation_every
        self.test = test  # runs the test protocol and returns its results
        self.test_results: dict[str, Any] | None = None
        self.budget = budget or WallClockBudget(None)

    # One batch per remaining generation; the batch content is the generation index.
    def train_dataloader(self) -> DataLoader:
        return DataLoader(list(range(self.run.generation, self.run.generations)), batch_size=None)

    def val_dataloader(self) -> DataLoader:
        return DataLoader([0], batch_size=None)

    def test_dataloader(self) -> DataLoader:
        return DataLoader([0], batch_size=None)

    def training_step(self, batch: Any, batch_idx: int) -> None:
        if self.budget.spent():  # at a generation boundary: last.pt holds every finished generation
            raise BudgetSpent(f"stop_after_minutes={self.budget.minutes:g} spent after generation {self.run.generation - 1}")
        m = self.run.step()
        self.budget.generations_done += 1
        self.log_dict(
            {"gen": float(m["generation"]), "best": m["best_center_return"], "mean": m["pop_mean"], "steps_s": m["steps_per_s"]},
            prog_bar=True,
            on_step=True,
            on_epoch=False,
            batch_size=1,
        )

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        # Lightning calls this after every generation; the schedule counts absolute
        # generations so a resumed run validates where an uninterrupted one does.
        if self.validation_episodes <= 0 or not self.run.validation_due(self.validation_every):
            return
        m = self.run.validate(self.validation_episodes)  # observers write and log it
        self.log("val_mean", m["val_mean"], prog_bar=True, batch_size=1)

    def test_step(self, batch: Any, batch_idx: int) -> None:
        assert self.test is not None
        self.test_results = self.test()
        for name, stats in self.test_results["envs"].items():
            self.log(f"test/{name}/mean", stats["mean"], batch_size=1)

    def configure_optimizers(self) -> None:  # the ES steps itself in training_step
        return None


def make_trainer(**kwargs: Any) -> pl.Trainer:
    # Lightning's notes about GPUs, optimisers and its own deprecations say nothing about an ES run.
    logging.getLogger("pytorch_lightning.utilities.rank_zero").setLevel(logging.WARNING)
    patterns = (
        ".*configure_optimizers.*",
        ".*LeafSpec.*",
        ".*does not have many workers.*",
        ".*training_step.*returns `None`.*",
        ".*sync_dist=True.*",  # each rank logs the same gathered numbers
        ".*The `srun` command is available.*",  # a SLURM machine, but not a Lightning DDP job
    )
    for pattern in patterns:
        warnings.filterwarnings("ignore", pattern)
    from pytorch_lightning.plugins.environments import LightningEnvironment

    defaults = dict(
        # Each rank of a distributed ES run drives its own single-device trainer: don't
        # let Lightning read SLURM/torchrun variables as if it were a DDP job.
        plugins=[LightningEnvironment()],
        accelerator="cpu",
        devices=1,
        max_epochs=1,
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    defaults.update(kwargs)
    return pl.Trainer(**defaults)
