"""`python -m hebbian_es.analyze`: the perturbation hooks on the one rollout loop, the
measures (recovery time, PCA), every analysis writing its files, and bad input.

Real checkpoints: one tiny CartPole ABCD run and one rule=static run (debug=default:
population 8, 3 generations, serial evaluator), trained once for the module.  A
3-generation CartPole agent drops the pole within tens of steps, so the hook checks
use early steps, inside every lifetime.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from hebbian_es.analysis import hooks as pert
from hebbian_es.analysis import measures
from hebbian_es.analysis.cli import ANALYSES, main, parse_args
from hebbian_es.analysis.loaded import LoadedRun
from hebbian_es.run.train import train
from hebbian_es.errors import ConfigError
from hebbian_es.core.rollout import RecordSpec

CARTPOLE_HORIZON = 500  # CartPole-v1's time limit
CARTPOLE_SHAPES = [(128, 4), (64, 128), (2, 64)]


@pytest.fixture(scope="module")
def runs(compose_config, tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    root = tmp_path_factory.mktemp("analyze")

    def _train(run_dir: Path, *overrides: str) -> Path:
        train(compose_config.raw("debug=default", f"run_dir={run_dir}", "test.after_fit=false", "validation.every=0", *overrides))
        return run_dir

    return SimpleNamespace(hebbian=_train(root / "hebbian"), static=_train(root / "static", "rule=static"))


@pytest.fixture(scope="module")
def loaded(runs: SimpleNamespace) -> Any:
    run = LoadedRun(str(runs.hebbian))
    yield run
    run.close()


def _lifetimes(run: LoadedRun, n: int = 3, hooks: Any = (), record: RecordSpec = RecordSpec(rewards=True, weights=True)) -> Any:
    env_seeds, init_seeds = run.lifetimes(n)
    return run.rollout(run.envs[0], run.params, env_seeds, init_seeds, hooks, record)


# ---- freeze ---------------------------------------------------------------------------------------
def test_freeze_at_zero_keeps_the_initial_weights_all_lifetime(loaded: LoadedRun) -> None:
    res, _ = _lifetimes(loaded, hooks=[pert.FreezePlasticity(0)])
    free, _ = _lifetimes(loaded)
    for frozen, moving in zip(res.weights, free.weights):
        assert frozen.shape[0] == res.steps.max() + 1  # every step and after the last
        assert np.array_equal(frozen, np.broadcast_to(frozen[:1], frozen.shape)), "a frozen weight changed"
        assert np.array_equal(frozen[0], moving[0]), "same initial weights as the free lifetime"
        assert not np.array_equal(moving[0], moving[-1]), "without freezing the weights move"


def test_freeze_at_episode_length_is_the_unfrozen_lifetime(loaded: LoadedRun) -> None:
    assert loaded.horizon(loaded.envs[0]) == CARTPOLE_HORIZON
    frozen, _ = _lifetimes(loaded, hooks=[pert.FreezePlasticity(CARTPOLE_HORIZON)])
    free, _ = _lifetimes(loaded)
    assert np.array_equal(frozen.returns, free.returns) and np.array_equal(frozen.steps, free.steps)
    for a, b in zip(frozen.weights, free.weights):
        assert np.array_equal(a, b)


def test_per_lifetime_freeze_in_one_batch_equals_separate_runs(loaded: LoadedRun) -> None:
    ks = [0, 4, CARTPOLE_HORIZON]
    env_seeds, init_seeds = loaded.lifetimes(1)
    env = loaded.envs[0]
    batched, _ = loaded.rollout(env, loaded.params, [env_seeds[0]] * 3, [init_seeds[0]] * 3, [pert.FreezePlasticity(ks)], RecordSpec(weights=True))
    for row, k in enumerate(ks):
        alone, _ = loaded.rollout(env, loaded.params, env_seeds, init_seeds, [pert.FreezePlasticity(k)], RecordSpec(weights=True))
        assert batched.returns[row] == alone.returns[0]
        n = alone.weights[0].shape[0]
        for wb, wa in zip(batched.weights, alone.weights):
            # equal up to float32 round-off: a batch of 3 and of 1 sum the matrix products in another order
            np.testing.assert_allclose(wb[:n, row], wa[:, 0], rtol=1e-4, atol=1e-5 * np.abs(wa).max(), err_msg=f"k={k}")
            if k < n:  # frozen from step k on, exactly
                assert np.array_equal(wb[k:n, row], np.broadcast_to(wb[k, row], wb[k:n, row].shape))
            assert not np.array_equal(wb[min(k, n - 1), row], wb[0, row]) or k == 0


# ---- saturation -----------------------------------------------------------------------------------
class _Outputs:
    """Records the (post-hook) output activity and actions of every step."""

    def __init__(self) -> None:
        self.actions: list[np.ndarray] = []

    def on_actions(self, t: int, actions: np.ndarray) -> np.ndarray:
        self.actions.append(np.array(actions))
        return actions


def test_saturation_overrides_exactly_the_requested_steps(loaded: LoadedRun) -> None:
    t0, t1 = 2, 5
    record = RecordSpec(rewards=True, activations=True)
    free, _ = _lifetimes(loaded, record=record)
    assert free.steps.min() > t1, "every lifetime outlives the window"
    hook = pert.ClampOutputs(t0, t1, 1.0)
    res, _ = _lifetimes(loaded, hooks=[hook], record=record)
    assert hook.steps == [t0, t0 + 1, t0 + 2]
    out, out_free = res.activations[-1], free.activations[-1]  # (T, B, n): the output layer after the hooks
    assert (out[t0:t1] == 1.0).all()
    assert np.array_equal(out[:t0], out_free[:t0]), "before the window the lifetime is the unperturbed one"
    assert not (out[t1] == 1.0).all(), "after the window the network drives again"

    actions = _Outputs()
    clamp = pert.ClampActions(t0, t1, 1.0)
    res, _ = _lifetimes(loaded, hooks=[clamp, actions], record=record)
    assert clamp.steps == [t0, t0 + 1, t0 + 2]
    a = np.stack(actions.actions)
    assert (a[t0:t1] == 1).all()
    assert np.array_equal(res.activations[-1][: t0 + 1], out_free[: t0 + 1])
    assert not (res.activations[-1][t0:t1] == 1.0).all(), "clamping the action leaves the network's outputs alone"


# ---- zeroing --------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", pert.ZERO_MODES)
@pytest.mark.parametrize("fraction", [0.0, 1 / 3, 0.5, 1.0])
def test_zero_mask_is_exactly_the_fraction(mode: str, fraction: float) -> None:
    for n in (7, 128, 512, 8192):
        idx = pert.zero_mask(n, fraction, mode, position=0.5, seed=3)
        assert len(idx) == len(set(idx.tolist())) == pert.zero_count(n, fraction) == int(np.floor(fraction * n + 0.5))
        assert idx.min(initial=0) >= 0 and idx.max(initial=0) < n
        if mode == "band" and len(idx):
            assert np.array_equal(idx, np.arange(idx[0], idx[0] + len(idx))), "one contiguous band"
    assert pert.zero_count(12, 1 / 3) == 4
    assert np.array_equal(pert.zero_mask(12, 0.25, "band", position=0.0), [0, 1, 2])
    assert np.array_equal(pert.zero_mask(12, 0.25, "band", position=1.0), [9, 10, 11])


@pytest.mark.parametrize("mode", pert.ZERO_MODES)
def test_zeroing_hook_zeroes_exactly_the_requested_weights(loaded: LoadedRun, runs: SimpleNamespace, mode: str) -> None:
    t, fraction = 3, 1 / 3
    for run in (loaded, LoadedRun(str(runs.static))):
        params = run.params.clone()
        layers = run.perturbed_layers()
        assert layers == [0, 1, 2]  # all plastic (ABCD) / all static FC layers
        masks = {l: pert.zero_mask(CARTPOLE_SHAPES[l][0] * CARTPOLE_SHAPES[l][1], fraction, mode, seed=l) for l in layers}
        snaps = pert.WeightSnapshots([t - 1, t, t + 1])
        res, _ = _lifetimes(run, hooks=[pert.ZeroWeights(t, masks), snaps])
        assert res.steps.min() > t + 1
        for l in layers:
            n = CARTPOLE_SHAPES[l][0] * CARTPOLE_SHAPES[l][1]
            for row in range(3):
                at = snaps.taken[t][l][row].reshape(-1)
                zero = np.flatnonzero(at == 0.0)
                assert len(zero) == round(n / 3) and np.array_equal(zero, np.sort(masks[l])), (run.rule, l)
                assert not (snaps.taken[t - 1][l][row] == 0.0).any(), "nothing zero before step t"
        assert torch.equal(run.params, params), "the evolved parameters are never touched"
        if run.rule == "static":  # no Hebbian update refills them
            assert all((snaps.taken[t + 1][l][0].reshape(-1)[masks[l]] == 0.0).all() for l in layers)
            run.close()


# ---- recovery and PCA -----------------------------------------------------------------------------
def test_recovery_time_definition() -> None:
    r = np.ones(300)
    r[100:130] = 0.0  # the perturbation [100, 110) and 20 more bad steps
    rec = measures.recovery(r, 100, 110, window=5, baseline=50)
    assert rec.level == 1.0 and rec.status == "recovered" and rec.at == 130 and rec.steps == 20
    assert measures.recovery(r, 100, 130, window=5).steps == 0  # already back when the window ends
    dead = np.concatenate([np.ones(105), np.full(195, np.nan)])  # the episode ended inside the window
    assert measures.recovery(dead, 100, 110).status == measures.ENDED_DURING
    early = np.concatenate([np.ones(80), np.full(220, np.nan)])  # ended before the window began
    assert measures.recovery(early, 100, 110).status == measures.ENDED_BEFORE
    assert measures.recovery(early, 80, 90).status == measures.ENDED_BEFORE  # its last step is 79
    low = np.concatenate([np.ones(100), np.zeros(200)])
    assert measures.recovery(low, 100, 110).status == measures.NOT_RECOVERED
    assert measures.recovery(r, 0, 10).status == "no baseline"


@pytest.mark.parametrize("dims", [40, 5000])  # SVD path (D < T) and Gram path (D > T)
def test_pca_recovers_a_plane(dims: int) -> None:
    rng = np.random.default_rng(0)
    basis, _ = np.linalg.qr(rng.normal(size=(dims, 2)))
    u, v = basis[:, 0], basis[:, 1]
    t = np.linspace(0, 6 * np.pi, 400)
    x = 3.0 + np.outer(5 * np.cos(t) * (1 + t), u) + np.outer(np.sin(2 * t), v)
    p = measures.pca(x, k=3)
    assert p.explained_variance_ratio[:2].sum() == pytest.approx(1.0, abs=1e-9)
    assert p.explained_variance_ratio[2] == pytest.approx(0.0, abs=1e-9)
    span = p.components[:2]
    assert np.allclose(span @ span.T, np.eye(2), atol=1e-9)
    for w in (u, v):
        assert np.linalg.norm(span @ w) == pytest.approx(1.0, abs=1e-9), "the plane lies in the first two components"
    assert np.allclose(p.projection[:, :2] @ span + p.mean, x, atol=1e-8)


# ---- every analysis writes its files ------------------------------------------------------------
ANALYSIS_ARGS = {
    "freeze": ["ks=[0,3,500]", "episodes=2"],
    "actuator_saturation": ["t0=2", "t1=5", "episodes=2", "smooth=3", "baseline=2"],
    "weight_zeroing": ["t=3", "after=2", "episodes=2", "mode=random", "smooth=3"],
    "pca": [],
    "weights": ["steps=[0,5,500]"],
    "video": ["every=4", "frames=4"],
    "static_vs_hebbian": ["t0=2", "t1=5", "episodes=2", "smooth=3"],
    "rules": ["max_rules=9", "points=11"],
}
EXPECTED = {
    "freeze": ["freeze.png", "freeze.csv"],
    "actuator_saturation": ["actuator_saturation.png", "actuator_saturation.csv"],
    "weight_zeroing": ["weight_zeroing_cartpole.png", "weight_zeroing.csv", "weight_zeroing_cartpole.npz"],
    "pca": ["pca.png", "pca.npz"],
    "weights": ["weights_cartpole.png", "weights_cartpole.npz"],
    "video": ["video_cartpole.gif", "video_cartpole.png", "video_cartpole.csv"],
    "static_vs_hebbian": ["static_vs_hebbian.png", "static_vs_hebbian.csv"],
    "rules": ["rules.png", "rules.npz"],
}


@pytest.mark.parametrize("analysis", ANALYSES)
def test_each_analysis_writes_its_files(runs: SimpleNamespace, tmp_path: Path, analysis: str) -> None:
    extra = [f"static={runs.static}"] if analysis == "static_vs_hebbian" else []
    main([f"analysis={analysis}", f"run={runs.hebbian}", f"out={tmp_path}", *ANALYSIS_ARGS[analysis], *extra])
    for name in EXPECTED[analysis] + [f"{analysis}.json"]:
        path = tmp_path / name
        assert path.is_file(), name
        if name.endswith(".csv"):  # a header and rows (a short lifetime's CSV is small)
            assert len(path.read_text().splitlines()) >= 2, name
        else:
            assert path.stat().st_size > 100, name
    png = (tmp_path / EXPECTED[analysis][0]).read_bytes()
    if analysis == "video":
        assert png[:6] == b"GIF89a"
        import imageio.v3 as iio

        frames = iio.imread(tmp_path / "video_cartpole.gif")
        assert frames.ndim == 4 and frames.shape[0] >= 2 and frames.shape[-1] == 3
        corner = frames[1, 5:20, 5:60]  # the step counter: white text in a black box over CartPole's white sky
        assert (corner.max(axis=-1) < 60).mean() > 0.3 and (corner.min(axis=-1) > 200).any()
    else:
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
    summary = json.loads((tmp_path / f"{analysis}.json").read_text())
    assert summary["analysis"] == analysis and summary["bodies"] == ["cartpole"] and summary["checkpoint"].endswith("last.pt")
    if analysis == "freeze":
        rows = (tmp_path / "freeze.csv").read_text().splitlines()
        assert rows[0] == "body,k,episode,env_seed,init_seed,return" and len(rows) == 1 + 3 * 2 + 2
        by_k = summary["results"]["cartpole"]["by_k"]
        assert by_k["500"]["mean"] == summary["results"]["cartpole"]["never_frozen"]["mean"]
    if analysis == "weight_zeroing":
        assert summary["results"]["cartpole"]["zeroed_weights"] == sum(round(a * b / 3) for a, b in CARTPOLE_SHAPES)
    if analysis == "rules":  # per-synapse ABCD: every synapse its own rule, the first 9 shown
        synapses = sum(a * b for a, b in CARTPOLE_SHAPES)
        assert summary["results"]["rules"] == synapses and summary["results"]["shown"] == 9
        data = np.load(tmp_path / "rules.npz")
        assert data["delta"].shape == (9, 11, 11) and data["coefficients"].shape == (9, 5)


def test_default_output_dir_is_the_runs_analysis_folder(runs: SimpleNamespace) -> None:
    main(["analysis=weights", f"run={runs.hebbian}", "steps=[0,2]"])
    assert (runs.hebbian / "analysis" / "weights_cartpole.png").is_file()
    assert (runs.hebbian / "analysis" / "weights.json").is_file()


@pytest.mark.slow
def test_wandb_logging_offline(runs: SimpleNamespace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wandb_home"))
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    run = tmp_path / "run"
    shutil.copytree(runs.hebbian, run, ignore=shutil.ignore_patterns("analysis", "wandb"))
    cfg = OmegaConf.load(run / "config.yaml")
    cfg.logger.wandb = {"mode": "offline", "project": "hebbian_es", "name": "tiny", "tags": [], "dir": None, "id": None}
    (run / "config.yaml").write_text(OmegaConf.to_yaml(cfg))
    main(["analysis=weights", f"run={run}", "steps=[0,3]"])
    offline = list((run / "wandb").glob("offline-run-*"))
    assert len(offline) == 1
    written = b"".join(f.read_bytes() for f in offline[0].rglob("*.wandb"))
    for key in (b"analysis/weights_cartpole", b"tiny-weights", b"analysis"):
        assert key in written, key  # the PNG, the run's name, its job type / tag
    staged = [p.name for p in offline[0].rglob("*") if p.is_file()]
    assert any(n.startswith("weights_cartpole") and n.endswith(".npz") for n in staged) or b"weights_cartpole.npz" in written


# ---- bad input -----------------------------------------------------------------------------------
def test_unknown_analysis_is_one_line_exit_2_from_the_command_line(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "hebbian_es.analyze", "analysis=nope", f"run={tmp_path}"],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: analysis='nope'")
    assert all(name in lines[0] for name in ANALYSES), "the allowed names are listed"


def _error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


def test_bad_input_is_one_clear_line(runs: SimpleNamespace, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = f"run={runs.hebbian}"
    bare = tmp_path / "bare"
    bare.mkdir()
    shutil.copy(runs.hebbian / "config.yaml", bare / "config.yaml")
    cases = {
        "no checkpoints/": ["analysis=freeze", f"run={bare}"],
        "no config.yaml": ["analysis=pca", f"run={tmp_path}"],
        "is not a directory": ["analysis=pca", f"run={tmp_path / 'missing'}"],
        "0 <= t0 < t1 <= 500": ["analysis=actuator_saturation", run, "t0=400", "t1=600"],
        "t0=5, t1=5": ["analysis=actuator_saturation", run, "t0=5", "t1=5"],
        "0 <= t < 500": ["analysis=weight_zeroing", run, "t=500"],
        "fraction=1.5: must be a number in [0.0, 1.0]": ["analysis=weight_zeroing", run, "fraction=1.5"],
        "fraction=-0.1": ["analysis=static_vs_hebbian", run, "static=x", "fraction=-0.1"],
        "each k must be in 0..500": ["analysis=freeze", run, "ks=[0,501]"],
        "steps=[600]": ["analysis=weights", run, "steps=[600]"],
        "unknown key 't0' for analysis=freeze": ["analysis=freeze", run, "t0=3"],
        "mode='stripe'; allowed: band, random": ["analysis=weight_zeroing", run, "mode=stripe"],
        "clamp='x'; allowed: output, action": ["analysis=actuator_saturation", run, "clamp=x"],
        "bodies=['ant'] not among": ["analysis=weights", run, "bodies=ant"],
        "needs a plastic rule": ["analysis=freeze", f"run={runs.static}"],
        "needs plastic weights": ["analysis=pca", f"run={runs.static}"],
        "it must be a rule=static run": ["analysis=static_vs_hebbian", run, f"static={runs.hebbian}"],
        "run=<run dir> is required": ["analysis=video"],
        "analysis=<name> is required; allowed: freeze": [run],
        "checkpoint='middle'; allowed: last, best": ["analysis=pca", run, "checkpoint=middle"],
    }
    for needle, argv in cases.items():
        line = _error(capsys, argv)
        assert needle in line, (needle, line)


def test_parse_args_types_and_defaults() -> None:
    a = parse_args(["analysis=weight_zeroing", "run=x"])
    assert (a.t, a.fraction, a.mode, a.after, a.episodes) == (300, pytest.approx(1 / 3), "band", 10, 3)
    a = parse_args(["analysis=actuator_saturation", "run=x", "t0=10", "t1=20", "value=1"])
    assert (a.t0, a.t1, a.value, a.clamp, a.smooth) == (10, 20, 1.0, "output", 20)
    assert parse_args(["analysis=freeze", "run=x", "ks=[30,0,30]"]).ks == [0, 30]
    with pytest.raises(ConfigError, match="t0=1.5: must be an integer"):
        parse_args(["analysis=actuator_saturation", "run=x", "t0=1.5"])


def test_help_lists_every_key_with_its_default(capsys: pytest.CaptureFixture[str]) -> None:
    main(["--help"])
    text = capsys.readouterr().out
    for name in ANALYSES:
        assert f"analysis={name}:" in text
    for line in ("checkpoint=", "episodes=", "ks=", "t0=", "fraction=", "random_seed=", "steps=", "fps=", "perturbation="):
        assert line in text, line
    assert "default 300" in text and "(band|random)" in text
    main(["analysis=freeze", "--help"])
    text = capsys.readouterr().out
    assert "ks=" in text and "run=" in text and "t0=" not in text


def test_measures_first_nonfinite_and_finite_stats() -> None:
    assert measures.first_nonfinite(np.array([1.0, 2.0, np.nan, 3.0])) == 2
    assert measures.first_nonfinite(np.ones((4, 3))) == 4
    assert measures.first_nonfinite(np.array([[1.0, 2.0], [np.inf, 0.0]])) == 1
    s = measures.finite_stats([1.0, None, 3.0, float("nan")])
    assert s == {"mean": 2.0, "sd": 1.0, "n": 2}
    assert measures.finite_stats([])["n"] == 0 and measures.format_stats(measures.finite_stats([])) == "n/a"


def test_a_window_after_every_lifetime_is_one_line_not_a_plot(
    runs: SimpleNamespace, loaded: LoadedRun, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    res, _ = _lifetimes(loaded, n=2, record=RecordSpec(rewards=True))
    longest = int(res.steps.max())
    if longest >= loaded.horizon(loaded.envs[0]) - 1:
        pytest.skip(f"a lifetime of the tiny run ran the whole episode ({longest} steps)")
    line = _error(capsys, ["analysis=actuator_saturation", f"run={runs.hebbian}", f"t0={longest}", f"t1={longest + 1}",
                           "episodes=2", f"out={tmp_path / 'out'}"])  # fmt: skip
    assert f"t0={longest}: every lifetime on" in line and f"the longest ran {longest} steps" in line, line
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*.png"))


def test_video_on_a_headless_machine_prints_no_error_line(runs: SimpleNamespace, tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("XDG_RUNTIME_DIR", "SDL_VIDEODRIVER", "DISPLAY")}
    cmd = [sys.executable, "-m", "hebbian_es.analyze", "analysis=video", f"run={runs.hebbian}", f"out={tmp_path}", "every=4", "frames=2"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "error" not in (res.stderr + res.stdout).lower(), res.stderr
    assert (tmp_path / "video_cartpole.gif").is_file()
