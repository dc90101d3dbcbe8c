"""Refactors keep behaviour: the golden runs (tests/golden/cases.py, recorded on main before
the package was split into layers) give bit-identical outputs: for the same command and seed
the centre after k generations, metrics.jsonl, validation.jsonl and the test table."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from hebbian_es.run.rundir import upgrade_legacy

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "golden"))
from cases import CASES, HERE, run_case  # noqa: E402


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CASES))
def test_golden_run_is_bit_identical(name: str, tmp_path: Path) -> None:
    # Module paths in env ids moved with the package's layers (hebbian_es.ant_fast:FastAnt-v0 is
    # now hebbian_es.envs.ant:FastAnt-v0); old run directories are read the same way.
    want = upgrade_legacy(json.loads((HERE / f"{name}.json").read_text()))
    got = json.loads(json.dumps(run_case(name, tmp_path / name), sort_keys=True))
    assert got["command"] == want["command"]
    assert got["generation"] == want["generation"]
    assert got["metrics"] == want["metrics"]
    assert got["validation"] == want["validation"]
    assert got["test"] == want["test"]
    assert got["centre_head"] == want["centre_head"]
    assert got["centre_sha256"] == want["centre_sha256"]
