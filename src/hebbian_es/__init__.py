"""hebbian_es: meta-learn synapse-specific Hebbian plasticity with evolution strategies."""

import os

# MKL's same-bits-on-every-CPU mode, before anything loads torch (MKL reads it at its first
# call): shipped agents then re-evaluate to their shipped returns on any x86 CPU. A value the
# user set wins (MKL_CBWR=AUTO: MKL's fastest kernels, CPU-dependent bits). hebbian_es/numerics.py.
os.environ.setdefault("MKL_CBWR", "COMPATIBLE")

__version__ = "0.1.0"
