"""Shared fixtures for the fast unit tests."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _single_torch_thread():
    """Tests run on small tensors: one intra-op thread is fastest and deterministic."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture
def gen() -> torch.Generator:
    """A fixed-seed generator so random test inputs are reproducible."""
    return torch.Generator().manual_seed(1234)


class ComposeConfig:
    """`compose_config(*overrides)`: the config `python -m hebbian_es <overrides>` runs
    with, as objects (hebbian_es.config.TrainConfig); `compose_config.raw(*overrides)`:
    the DictConfig Hydra composes (what `train` takes).  run_dir=unused unless given."""

    def raw(self, *overrides: str, return_hydra_config: bool = False):
        from hebbian_es import config

        if not any(o.lstrip("+").split("=")[0] == "run_dir" for o in overrides):
            overrides = ("run_dir=unused", *overrides)
        return config.compose(overrides, return_hydra_config=return_hydra_config)

    def __call__(self, *overrides: str):
        from hebbian_es import config

        return config.to_object(self.raw(*overrides))


@pytest.fixture(scope="session")
def compose_config() -> ComposeConfig:
    return ComposeConfig()


# --------------------------------------------------------------------------- SLURM
# Tests marked `slurm` run against the real single-node cluster that
# scripts/slurm/start-cluster.sh starts (`make test` starts and stops it).

import dataclasses  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402

_USABLE_NODE_STATES = {"idle", "mix", "mixed", "alloc", "allocated", "comp", "completing"}


@dataclasses.dataclass(frozen=True)
class SlurmCluster:
    """What a test needs to submit to the local cluster."""

    partition: str  # the default partition (jobs without --partition go there)
    node: str
    cpus: int


def _slurmctld_unreachable() -> str:
    """Why slurmctld cannot be up, found in a second (sinfo takes ~10 s to give up), or ""."""
    import re
    import socket

    conf = os.environ.get("SLURM_CONF", "/etc/slurm/slurm.conf")
    try:
        with open(conf, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:
        return ""  # configless or elsewhere: let sinfo decide
    host = re.search(r"^\s*(?:SlurmctldHost|ControlMachine)\s*=\s*([^\s#(]+)(?:\(([^)]+)\))?", text, re.M | re.I)
    port = re.search(r"^\s*SlurmctldPort\s*=\s*(\d+)", text, re.M | re.I)
    if host is None:
        return ""
    address = (host.group(2) or host.group(1), int(port.group(1)) if port else 6817)
    try:
        socket.create_connection(address, timeout=2).close()
    except OSError as exc:
        return f"slurmctld at {address[0]}:{address[1]} (from {conf}) does not answer: {exc}"
    return ""


def _find_slurm_cluster() -> tuple[SlurmCluster | None, str]:
    """(cluster, "") when sinfo answers and the node accepts jobs, else (None, why)."""
    if shutil.which("sinfo") is None:
        return None, "sinfo is not installed"
    why = _slurmctld_unreachable()
    if why:
        return None, why
    try:
        out = subprocess.run(
            ["sinfo", "-h", "-N", "-o", "%P|%N|%t|%c"],
            capture_output=True, text=True, timeout=15, check=False,
        )
    except subprocess.TimeoutExpired:
        return None, "sinfo did not answer within 15 s"
    if out.returncode != 0:
        return None, f"sinfo failed: {out.stderr.strip() or out.stdout.strip()}"
    rows = [line.split("|") for line in out.stdout.splitlines() if line.count("|") == 3]
    if not rows:
        return None, "sinfo lists no node"
    # Prefer the default partition (sinfo marks it with '*').
    rows.sort(key=lambda r: not r[0].endswith("*"))
    for partition, node, state, cpus in rows:
        if state in _USABLE_NODE_STATES:
            return SlurmCluster(partition.rstrip("*"), node, int(cpus)), ""
    return None, "no node is up: " + ", ".join(f"{r[1]}={r[2]}" for r in rows)


@pytest.fixture(scope="session")
def slurm_cluster() -> SlurmCluster:
    """The local SLURM cluster; skips (or fails, with HEBBIAN_ES_REQUIRE_SLURM=1) without one."""
    cluster, why = _find_slurm_cluster()
    if cluster is None:
        if os.environ.get("HEBBIAN_ES_REQUIRE_SLURM") == "1":
            pytest.fail(
                f"HEBBIAN_ES_REQUIRE_SLURM=1 but no usable SLURM cluster ({why}); "
                "start it with scripts/slurm/start-cluster.sh "
                "(logs in /var/tmp/hebbian_es_slurm/log/)",
                pytrace=False,
            )
        pytest.skip(f"no SLURM cluster: run scripts/slurm/start-cluster.sh ({why})")
    return cluster
