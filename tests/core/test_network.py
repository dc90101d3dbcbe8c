"""Networks: the SPEC's parameter counts, population batching, initial weights."""

from __future__ import annotations

import pytest
import torch

from hebbian_es.config import DistributionConfig
from hebbian_es.core.network import ConvSpec, NetworkSpec, PolicyPopulation, build_layout
from hebbian_es.core.rules import get_rule

# conf/network/cnn_mlp.yaml
PAPER_CONV = (ConvSpec(out_channels=6, kernel=3, stride=1, pool=2), ConvSpec(out_channels=8, kernel=5, stride=2, pool=2))
CARRACING = NetworkSpec(input_shape=(3, 84, 84), output_size=3, hidden=(128, 64), conv=PAPER_CONV, normalize_weights=True)
QUADRUPED = NetworkSpec(input_shape=(28,), output_size=8, hidden=(128, 64))
UNIFORM = DistributionConfig(kind="uniform", low=-0.1, high=0.1)


def test_carracing_counts_match_the_paper():
    assert CARRACING.feature_size == 648
    assert CARRACING.conv_shapes == [(6, 3, 3, 3), (8, 6, 5, 5)]
    assert CARRACING.fc_shapes == [(128, 648), (64, 128), (3, 64)]
    layout = build_layout(CARRACING, get_rule("abcd"), coevolve_initial_weights=False)
    synapses = sum(o * i for o, i in CARRACING.fc_shapes)
    assert synapses == 91_328
    assert layout.count("coefficients") == 456_640 == 5 * synapses
    assert layout.count("weights", "conv") == 1_362 == 162 + 1_200
    assert layout.count("weights") == 1_362  # the FC weights are not evolved: they are plastic
    assert layout.size == 456_640 + 1_362


def test_carracing_static_evolves_all_92690_weights():
    layout = build_layout(CARRACING, get_rule("static"), coevolve_initial_weights=False)
    assert layout.count("coefficients") == 0
    assert layout.count("weights") == layout.size == 92_690


def test_quadruped_counts_match_the_paper():
    assert QUADRUPED.fc_shapes == [(128, 28), (64, 128), (8, 64)]
    assert sum(o * i for o, i in QUADRUPED.fc_shapes) == 12_288
    layout = build_layout(QUADRUPED, get_rule("abcd"), coevolve_initial_weights=False)
    assert layout.count("coefficients") == layout.size == 61_440
    no_eta = build_layout(QUADRUPED, get_rule("abcd", use_eta=False), coevolve_initial_weights=False)
    assert no_eta.size == 4 * 12_288
    static = build_layout(QUADRUPED, get_rule("static"), coevolve_initial_weights=False)
    assert static.count("coefficients") == 0
    assert static.count("weights") == static.size == 12_288
    assert all(b.kind == "weights" for b in static.blocks)
    coevolved = build_layout(QUADRUPED, get_rule("abcd"), coevolve_initial_weights=True)
    assert coevolved.count("coefficients") == 61_440 and coevolved.count("weights") == 12_288


def test_layout_views_cover_the_vector_once():
    layout = build_layout(CARRACING, get_rule("ad"), coevolve_initial_weights=True)
    params = torch.arange(layout.size, dtype=torch.float32).repeat(2, 1)
    seen = torch.cat([v[1].reshape(-1) for v in layout.views(params).values()])
    assert torch.equal(seen.sort().values, torch.arange(layout.size, dtype=torch.float32))
    assert int(layout.kinds().sum()) == layout.count("coefficients") == 3 * 91_328


def test_only_chosen_layers_are_plastic():
    spec = NetworkSpec(input_shape=(28,), output_size=8, hidden=(128, 64), plastic_layers=(1,))
    layout = build_layout(spec, get_rule("abcd"), coevolve_initial_weights=False)
    assert layout.count("coefficients") == 5 * 128 * 64
    assert layout.count("weights") == 128 * 28 + 8 * 64


# ---- population batching -------------------------------------------------------------


SMALL_CNN = NetworkSpec(input_shape=(3, 20, 20), output_size=3, hidden=(8, 6), conv=PAPER_CONV, normalize_weights=True)
SMALL_MLP = NetworkSpec(input_shape=(5,), output_size=2, hidden=(7, 4), output_activation="tanh")


@pytest.mark.parametrize("rule_name", ["abcd", "static"])
@pytest.mark.parametrize("spec", [SMALL_CNN, SMALL_MLP], ids=["conv", "mlp"])
def test_population_rows_are_independent(spec, rule_name, gen):
    rule = get_rule(rule_name)
    layout = build_layout(spec, rule, coevolve_initial_weights=False)
    n = 4
    params = torch.randn(n, layout.size, generator=gen) * 0.3
    seeds = [5, 6, 5, 9]
    xs = [torch.rand(n, *spec.input_shape, generator=gen) for _ in range(3)]

    together = PolicyPopulation(spec, rule, layout, params, UNIFORM)
    together.reset(seeds)
    outs = []
    for x in xs:
        outs.append(together.forward(x).clone())
        together.update() if together.plastic else None

    for b in range(n):
        alone = PolicyPopulation(spec, rule, layout, params[b : b + 1].clone(), UNIFORM)
        alone.reset(seeds[b : b + 1])
        for t, x in enumerate(xs):
            out = alone.forward(x[b : b + 1])
            torch.testing.assert_close(out[0], outs[t][b], rtol=1e-5, atol=1e-6)
            alone.update() if alone.plastic else None
        for w_alone, w_together in zip(alone.weights, together.weights):
            torch.testing.assert_close(w_alone[0], w_together[b], rtol=1e-5, atol=1e-6)
    # different individuals really behave differently (the check above is not vacuous)
    assert not torch.allclose(outs[-1][0], outs[-1][1])


def test_conv_features_match_torch_conv_per_individual(gen):
    rule = get_rule("abcd")
    layout = build_layout(SMALL_CNN, rule, coevolve_initial_weights=False)
    params = torch.randn(2, layout.size, generator=gen)
    policy = PolicyPopulation(SMALL_CNN, rule, layout, params, UNIFORM)
    x = torch.rand(2, 3, 20, 20, generator=gen)
    feats = policy.features(x)
    views = layout.views(params)
    for b in range(2):
        h = x[b : b + 1]
        for k, conv in enumerate(PAPER_CONV):
            h = torch.nn.functional.conv2d(h, views[f"conv{k}.weight"][b], stride=conv.stride)
            h = torch.nn.functional.max_pool2d(torch.tanh(h), conv.pool)
        torch.testing.assert_close(feats[b], h.reshape(-1), rtol=1e-5, atol=1e-6)
    assert feats.shape == (2, SMALL_CNN.feature_size)


# ---- initial weights -----------------------------------------------------------------


def _fresh(seeds, spec=SMALL_MLP, init=UNIFORM):
    rule = get_rule("abcd")
    layout = build_layout(spec, rule, coevolve_initial_weights=False)
    policy = PolicyPopulation(spec, rule, layout, torch.zeros(len(seeds), layout.size), init)
    policy.reset(seeds)
    return [w.clone() for w in policy.weights]


def test_fresh_initial_weights_are_seeded():
    a = _fresh([3, 3, 4])
    b = _fresh([3])
    for layer, shape in enumerate(SMALL_MLP.fc_shapes):
        assert a[layer].shape == (3, *shape)
        assert torch.equal(a[layer][0], a[layer][1])  # same seed, same weights
        assert torch.equal(a[layer][0], b[layer][0])  # independent of the rest of the batch
        assert not torch.equal(a[layer][0], a[layer][2])  # another seed, other weights
        assert a[layer].abs().max() <= 0.1 and a[layer].abs().max() > 0.05  # U[-0.1, 0.1]


def test_reset_starts_a_new_lifetime_from_the_same_weights(gen):
    rule = get_rule("abcd")
    layout = build_layout(SMALL_MLP, rule, coevolve_initial_weights=False)
    policy = PolicyPopulation(SMALL_MLP, rule, layout, torch.randn(2, layout.size, generator=gen), UNIFORM)
    policy.reset([1, 2])
    first = [w.clone() for w in policy.weights]
    policy.forward(torch.randn(2, 5, generator=gen))
    policy.update()
    assert not torch.equal(policy.weights[0], first[0])
    policy.reset([1, 2])
    for w, w0 in zip(policy.weights, first):
        assert torch.equal(w, w0)


def test_coevolved_initial_weights_come_from_params(gen):
    rule = get_rule("abcd")
    layout = build_layout(SMALL_MLP, rule, coevolve_initial_weights=True)
    params = torch.randn(2, layout.size, generator=gen)
    kept = params.clone()
    policy = PolicyPopulation(SMALL_MLP, rule, layout, params, UNIFORM)
    policy.reset([1, 1])
    views = layout.views(params)
    for layer in range(len(SMALL_MLP.fc_shapes)):
        assert torch.equal(policy.weights[layer], views[f"fc{layer}.initial_weight"])
    policy.forward(torch.randn(2, 5, generator=gen))
    policy.update()
    assert not torch.equal(policy.weights[0], views["fc0.initial_weight"])
    assert torch.equal(params, kept)  # the lifetime's plasticity never writes into the evolved vector
    policy.reset([7, 8])  # the seeds play no part: every lifetime starts from the evolved weights
    assert torch.equal(policy.weights[0], views["fc0.initial_weight"])


def test_static_weights_come_from_params(gen):
    rule = get_rule("static")
    layout = build_layout(SMALL_MLP, rule, coevolve_initial_weights=False)
    params = torch.randn(2, layout.size, generator=gen)
    policy = PolicyPopulation(SMALL_MLP, rule, layout, params, UNIFORM)
    policy.reset([0, 0])
    x = torch.randn(2, 5, generator=gen)
    views = layout.views(params)
    h = torch.tanh(torch.einsum("boi,bi->bo", views["fc0.weight"], x))
    h = torch.tanh(torch.einsum("boi,bi->bo", views["fc1.weight"], h))
    out = torch.tanh(torch.einsum("boi,bi->bo", views["fc2.weight"], h))
    torch.testing.assert_close(policy.forward(x), out)


# ---- pixel preprocessing (the network's input) ------------------------------------------


def _area_reference(img, out_h, out_w):
    """INTER_AREA by definition, float64: each output pixel is the mean of the source
    interval it covers, every source pixel weighted by its overlap."""
    import numpy as np

    def weights(src, dst):
        m = np.zeros((dst, src))
        s = src / dst
        for d in range(dst):
            lo, hi = d * s, (d + 1) * s
            for k in range(int(lo), min(int(np.ceil(hi)), src)):
                m[d, k] = (min(hi, k + 1) - max(lo, k)) / s
        return m

    ry, rx = weights(img.shape[0], out_h), weights(img.shape[1], out_w)
    return np.einsum("yh,hwc,xw->yxc", ry, img.astype(np.float64), rx)


@pytest.mark.parametrize("size,crop", [((84, 84), None), ((48, 64), None), ((40, 50), (2, 90, 3, 95))])
def test_area_resize_equals_overlap_weighted_mean(size, crop, gen):
    import numpy as np

    from hebbian_es.envs.spec import ObservationBatcher, ObservationSpec

    rng = np.random.default_rng(0)
    raw = [rng.integers(0, 256, (96, 96, 3), dtype=np.uint8) for _ in range(3)]
    spec = ObservationSpec("pixels", (3, *size), raw_shape=(96, 96, 3), resize=size, crop=crop, scale=255.0)
    got = ObservationBatcher(spec)(raw)
    assert got.shape == (3, 3, *size) and got.dtype == torch.float32
    for b, img in enumerate(raw):
        if crop is not None:
            img = img[crop[0] : crop[1], crop[2] : crop[3]]
        exact = _area_reference(img, *size).transpose(2, 0, 1)
        levels = got[b].numpy() * 255  # uint8 levels, as cv2 returns them
        assert np.abs(levels - np.round(levels)).max() < 1e-4
        # rounded to the nearest level; a tie (x.5) may go either way after float32 sums
        tie = np.abs(exact - np.floor(exact) - 0.5) < 1e-6
        assert np.array_equal(np.round(levels)[~tie], np.round(exact)[~tie])
        assert np.all(np.abs(levels - exact)[tie] <= 0.5 + 1e-4)


def test_area_resize_96_to_84_known_values():
    """CarRacing's 96 -> 84: 7x8 blocks with weights (7 - k, k + 1)/8 (k = 0..6), as cv2's INTER_AREA."""
    import numpy as np

    from hebbian_es.envs.spec import ObservationBatcher, ObservationSpec, area_weights

    g, block = area_weights(96, 84)
    assert g == 12 and block.shape == (7, 8)
    for k in range(7):
        assert block[k, k] == (7 - k) / 8 and block[k, k + 1] == (k + 1) / 8
    ramp = np.tile(np.arange(96, dtype=np.uint8)[None, :, None] * 2, (96, 1, 3))  # 0, 2, ..., 190 along x
    spec = ObservationSpec("pixels", (3, 84, 84), raw_shape=(96, 96, 3), resize=(84, 84), scale=1.0)
    out = ObservationBatcher(spec)([ramp])[0, 0, 0]
    # output x = 7j + k averages source 8j + k (weight (7-k)/8) and 8j + k + 1 ((k+1)/8)
    want = [round(2 * ((7 - k) * (8 * j + k) + (k + 1) * (8 * j + k + 1)) / 8) for j in range(12) for k in range(7)]
    assert out.tolist() == want


def test_features_read_the_batchers_channels_last_layout(gen):
    """The batcher hands (B, C, H, W) with (H, W, B, C) memory; features must not care."""
    rule = get_rule("abcd")
    layout = build_layout(SMALL_CNN, rule, coevolve_initial_weights=False)
    policy = PolicyPopulation(SMALL_CNN, rule, layout, torch.randn(3, layout.size, generator=gen), UNIFORM)
    x = torch.rand(3, 3, 20, 20, generator=gen)
    strided = x.permute(2, 3, 0, 1).contiguous().permute(2, 3, 0, 1)
    assert not strided.is_contiguous()
    assert torch.equal(policy.features(strided), policy.features(x))
