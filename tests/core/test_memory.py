"""Every process that runs lifetimes fixes glibc's mmap threshold (core/memory.py), so a large
tensor's memory goes back to the OS when it is freed instead of staying in a heap that the
per-step tensors fragment (the CarRacing campaign grew 1.5 GB a generation until OOM-killed;
benchmarks/bench_memory.py measures the real runs).  Checked through the mechanism: after a
warm-up round, a 16 MB tensor allocated and freed three times leaves the resident size where
it was."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from hebbian_es.core.memory import _libc

PROBE = textwrap.dedent(
    """
    import sys, torch
    if sys.argv[1] == "evaluator":
        from hebbian_es import config
        from hebbian_es.core.task import build_task
        from hebbian_es.es.evaluators import SerialEvaluator
        SerialEvaluator(build_task(config.to_object(config.compose(["run_dir=unused"]))), batch_size=4)

    def rss_mb():
        with open("/proc/self/status") as fh:
            return next(int(l.split()[1]) / 1024 for l in fh if l.startswith("VmRSS"))

    # one round before the baseline: the first fill initialises torch's kernels and thread pool,
    # a few MB that stay (7 MB on one CI machine) and are not what this measures
    t = torch.ones(4_000_000)
    del t
    base = rss_mb()
    for _ in range(3):
        t = torch.ones(4_000_000)  # 16 MB, touched, freed
        del t
    print(rss_mb() - base)
    """
)


def _retained_mb(mode: str) -> float:
    out = subprocess.run([sys.executable, "-c", PROBE, mode], check=True, capture_output=True, text=True).stdout
    return float(out.strip().splitlines()[-1])


@pytest.mark.skipif(_libc() is None or not sys.platform.startswith("linux"), reason="glibc's mallopt only")
def test_an_evaluator_process_returns_freed_tensors_to_the_os() -> None:
    assert _retained_mb("evaluator") < 4  # freed: back to the OS
    # the same probe without an evaluator: glibc's dynamic threshold keeps the 16 MB block
    # in the heap (what the fix is for; if a glibc stops doing this, this line says so)
    assert _retained_mb("plain") >= 12
