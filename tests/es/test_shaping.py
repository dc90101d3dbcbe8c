"""Fitness shaping components (es/shaping.py) against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hebbian_es.errors import ConfigError
from hebbian_es.es.shaping import SHAPINGS, Shaping, centered_ranks, nes_utilities, raw, z_score


def test_the_shapings_are_the_documented_ones():
    assert sorted(SHAPINGS) == ["centered_ranks", "nes", "raw", "z_score"]


def test_centered_ranks_by_hand():
    np.testing.assert_allclose(centered_ranks(np.array([1.0, 3.0, 2.0, 0.5])), [1 / 3 - 0.5, 0.5, 2 / 3 - 0.5, -0.5])
    # average ties: the two 2.0s share ranks 1 and 2 -> 1.5 -> 1.5/3 - 0.5 = 0
    np.testing.assert_allclose(centered_ranks(np.array([2.0, 5.0, 2.0, 0.0]), "average"), [0.0, 0.5, 0.0, -0.5])


def test_nes_utilities_by_hand():
    # n = 4: max(0, ln 3 - ln k) for k = 1..4 -> ln 3, ln 1.5, 0, 0 (ln 3 - ln 4 < 0)
    a, b = math.log(3), math.log(1.5)
    by_rank = [a / (a + b) - 0.25, b / (a + b) - 0.25, -0.25, -0.25]  # best first
    u = nes_utilities(np.array([1.0, 3.0, 2.0, 0.5]))
    np.testing.assert_allclose(u, [by_rank[2], by_rank[0], by_rank[1], by_rank[3]], rtol=1e-14)
    assert u.sum() == pytest.approx(0.0, abs=1e-15)
    # NaN ranks worst; average ties share the mean utility of their positions
    np.testing.assert_allclose(nes_utilities(np.array([np.nan, 3.0, 2.0, 0.5])), [by_rank[3], by_rank[0], by_rank[1], by_rank[2]])
    tied = nes_utilities(np.array([2.0, 2.0, 5.0, 0.0]), "average")
    np.testing.assert_allclose(tied, [(by_rank[1] + by_rank[2]) / 2] * 2 + [by_rank[0], by_rank[3]])


def test_z_score_and_raw_by_hand():
    np.testing.assert_allclose(z_score(np.array([1.0, 2.0, 3.0])), [-math.sqrt(1.5), 0.0, math.sqrt(1.5)])
    np.testing.assert_allclose(z_score(np.array([4.0, 4.0])), [0.0, 0.0])  # sd 0: no division
    np.testing.assert_array_equal(raw(np.array([1.5, -2.0])), [1.5, -2.0])
    # a non-finite fitness counts as the lowest finite one
    np.testing.assert_array_equal(raw(np.array([1.5, np.nan, -2.0, np.inf])), [1.5, -2.0, -2.0, -2.0])
    np.testing.assert_allclose(z_score(np.array([3.0, -np.inf, 1.0])), z_score(np.array([3.0, 1.0, 1.0])))


def test_standardize_follows_the_shaping():
    ranks = centered_ranks(np.array([1.0, 3.0, 2.0, 0.5]))
    got = Shaping("centered_ranks", standardize=True)(np.array([1.0, 3.0, 2.0, 0.5]))
    np.testing.assert_allclose(got, ranks / math.sqrt(5 / 36))  # mean 0, sd sqrt(5/36)
    np.testing.assert_array_equal(Shaping("raw")(np.array([7.0, 1.0])), [7.0, 1.0])


@pytest.mark.parametrize("kwargs, line", [
    ({"name": "ranks"}, "optimizer.shaping='ranks' is not known; allowed: ['centered_ranks', 'nes', 'raw', 'z_score']"),
    ({"ties": "dense"}, "optimizer.ties='dense'; allowed: ['ordinal', 'average']"),
])  # fmt: skip
def test_unknown_names_are_one_line_with_the_allowed_ones(kwargs, line):
    with pytest.raises(ConfigError) as info:
        Shaping(**kwargs)
    assert str(info.value) == line
