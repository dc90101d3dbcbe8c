"""Numerics that keep a lifetime's result the same bits whatever shares its batch, and on any x86 CPU.

Two sources of difference, both measured here (docs/protocol.md, "Same bits"):

- MKL picks its matrix kernels by CPU unless `MKL_CBWR=COMPATIBLE` is set before MKL's first call
  (a quadruped lifetime on an AMD EPYC matched 0 of 69 shipped returns without it, 69 of 69 with it).
  `hebbian_es/__init__.py` sets it (`MKL_CBWR` already in the environment wins: `MKL_CBWR=AUTO`
  opts out, for speed), and `mkl_mode()` reports what MKL really runs in.
- torch computes an elementwise function on a contiguous tensor in vector chunks and the last
  numel % (2 x vector width) elements in a scalar loop; for sigmoid, softplus and exp the two can
  differ in the last bit, so a lifetime's value depended on whether its row landed in that tail,
  i.e. on the batch size (CarRacing: lifetime 0 of the zoo agent returned 697.4 alone, 576.5 in a
  batch of 100). `pointwise` pads to a multiple of 64 elements, so every element takes the vector
  path on AVX2 and AVX-512 alike.  torch's tanh handles its tail in the vector path already
  (tests/core/test_numerics.py checks it), so hot tanh calls are left as they are.
"""

from __future__ import annotations

import ctypes
import os
from typing import Callable

import torch

LANES = 64  # a multiple of 2 x the float vector width of AVX2 (8) and AVX-512 (16)
MKL_COMPATIBLE = 3  # MKL_CBWR_COMPATIBLE in mkl_service.h; what mkl_serv_cbwr_get reports for the branch


def pointwise(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """fn(x) for an elementwise torch function, every element through torch's vector path."""
    n = x.numel()
    if n % LANES == 0 and x.is_contiguous():
        return fn(x)
    flat = torch.zeros(n + (-n) % LANES, dtype=x.dtype)
    flat[:n] = x.reshape(-1)
    return fn(flat)[:n].view(x.shape)


def mkl_mode() -> int | None:
    """MKL's conditional-numerical-reproducibility branch in this process (3: COMPATIBLE), or None
    where torch carries no MKL (then MKL_CBWR has nothing to do)."""
    lib_dir = os.path.join(os.path.dirname(torch.__file__), "lib")
    for name in ("libtorch_cpu.so", "libmkl_rt.so.2", "libmkl_rt.so"):
        try:
            get = ctypes.CDLL(os.path.join(lib_dir, name)).mkl_serv_cbwr_get
        except (OSError, AttributeError):
            continue
        get.restype, get.argtypes = ctypes.c_int, [ctypes.c_int]
        return int(get(1))  # 1: MKL_CBWR_BRANCH, the mode in force
    return None
