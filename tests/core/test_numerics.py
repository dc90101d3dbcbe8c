"""Same bits whatever the batch: hebbian_es.numerics and the assumptions it rests on."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from hebbian_es.numerics import LANES, mkl_mode, pointwise


@pytest.mark.parametrize("fn", [torch.sigmoid, F.softplus, torch.exp, torch.tanh], ids=["sigmoid", "softplus", "exp", "tanh"])
def test_pointwise_gives_each_element_the_same_bits_wherever_it_sits(fn) -> None:
    x = torch.randn(1 << 14, generator=torch.Generator().manual_seed(0)) * 4
    full = fn(x)  # a multiple of LANES: every element on torch's vector path
    for start in (0, 5, 64, 1000):
        for n in (1, 3, 7, 17, 63, 100, 1001):
            got = pointwise(fn, x[start : start + n])
            assert torch.equal(got, full[start : start + n]), (start, n)
    rows = x[:300].view(100, 3)[:, 1:]  # a strided (B, 2) view, as an action's columns
    assert torch.equal(pointwise(fn, rows), full[:300].view(100, 3)[:, 1:])


def test_torch_sigmoid_alone_differs_in_its_scalar_tail_which_is_why_pointwise_exists() -> None:
    # If this starts failing, torch handles the tail in its vector path and pointwise is no longer needed.
    x = torch.randn(1 << 14, generator=torch.Generator().manual_seed(0)) * 4
    full = F.softplus(x)
    assert any(not torch.equal(F.softplus(x[:n]), full[:n]) for n in range(1, 2 * LANES))


def test_torch_tanh_is_the_same_in_its_tail_so_hot_tanh_calls_need_no_padding() -> None:
    x = torch.randn(1 << 14, generator=torch.Generator().manual_seed(1)) * 4
    full = torch.tanh(x)
    for n in range(1, 4 * LANES):
        assert torch.equal(torch.tanh(x[:n]), full[:n]), n


def _mkl_mode_in_fresh_process(env: dict) -> str:
    code = "import hebbian_es, torch; from hebbian_es.numerics import mkl_mode; torch.ones(64, 64) @ torch.ones(64, 64); print(mkl_mode())"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.mark.skipif(mkl_mode() is None, reason="this torch build carries no MKL")
def test_importing_the_package_puts_mkl_in_its_same_bits_on_every_cpu_mode_unless_the_user_chose() -> None:
    env = {k: v for k, v in os.environ.items() if k != "MKL_CBWR"}
    assert _mkl_mode_in_fresh_process(env) == "3"  # MKL_CBWR_COMPATIBLE
    assert _mkl_mode_in_fresh_process({**env, "MKL_CBWR": "AUTO"}) == "2"  # the user's choice wins
