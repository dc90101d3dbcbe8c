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
