"""The built wheel works on its own: config tree, gymnasium-id configs and console scripts.

The wheel is built from a copy of the repository (so the shared checkout gets no
build/ or egg-info churn), installed with --no-deps into a fresh venv that takes
its dependencies (torch, gymnasium, hydra, ...) from the environment running the
tests, and run from a directory outside the repository.

Why the editable install of the outer environment cannot shadow the wheel:
  * the venv's own site-packages precedes every outer one on sys.path, and
    setuptools' editable finder (`__editable___hebbian_es_*_finder`, installed by a
    .pth of the outer site-packages) is *appended* to sys.meta_path, after the
    PathFinder that finds the wheel's copy first;
  * where the tests themselves run in a venv (`make test`), --system-site-packages
    would expose the *base* interpreter's packages, not the outer venv's; the outer
    venv's site-packages are then added by a plain path line in a .pth file.  Path
    lines are appended to sys.path but the .pth files inside those directories are
    not executed, so the outer editable finder is never installed at all;
  * PYTHONPATH / PYTHONHOME are dropped, PYTHONNOUSERSITE=1 keeps ~/.local out, and
    the commands run with cwd outside the repository;
  * the test asserts `hebbian_es.__file__` and `hebbian_es.conf.__file__` lie in the venv.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import site
import subprocess
import sys
import zipfile
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = "Scripts" if os.name == "nt" else "bin"
IGNORED = (
    ".git", ".venv", "venv", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache",
    "outputs", "multirun", "wandb", ".whl", ".gl", ".benchmarks", "*.whl",
)  # fmt: skip


def _run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    done = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{cmd} failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def _build_isolation_args() -> list[str]:
    """Build in this environment when its setuptools can (>= 70.1 ships bdist_wheel itself,
    and satisfies the project's setuptools>=68); otherwise an isolated build env from the index."""
    try:
        version = tuple(int(x) for x in re.findall(r"\d+", metadata.version("setuptools"))[:2])
    except metadata.PackageNotFoundError:
        return []
    return ["--no-isolation", "--skip-dependency-check"] if version >= (70, 1) else []


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP")}
    env.update(PYTHONNOUSERSITE="1", PYTHONUNBUFFERED="1")
    return env


@pytest.mark.slow
def test_wheel_installs_and_runs_in_a_fresh_venv(tmp_path: Path) -> None:
    env = _clean_env()

    # -- build ---------------------------------------------------------------------------
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(*IGNORED))
    dist = tmp_path / "dist"
    built = _run([sys.executable, "-m", "build", "--wheel", *_build_isolation_args(), "--outdir", dist], cwd=source, env=env)
    # every config folder is a listed package: setuptools has nothing to warn about (it printed ~770 lines once)
    assert "would be ignored" not in built.stdout + built.stderr, (built.stdout + built.stderr)[-3000:]
    (wheel,) = dist.glob("hebbian_es-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for member in ("hebbian_es/__main__.py", "hebbian_es/conf/__init__.py", "hebbian_es/conf/train.yaml",
                   "hebbian_es/conf/debug/default.yaml", "hebbian_es/conf/env/generic.yaml",
                   "hebbian_es/conf/env/carracing.yaml", "hebbian_es/conf/hydra/job_logging/run_log.yaml",
                   "hebbian_es/es/openai_es.py", "hebbian_es/config/schema.py", "hebbian_es/conf/sweep/rule_ablation.yaml",
                   "hydra_plugins/hebbian_es_launcher/slurm.py", "hydra_plugins/hebbian_es_launcher/local.py",
                   "hebbian_es/conf/hydra/launcher/local.yaml", "hebbian_es/conf/env/carracing_fast.yaml"):  # fmt: skip
        assert member in names, f"{member} missing from {wheel.name}"
    assert not any(n.startswith(("tests/", "conf/")) for n in names), "stray top-level packages in the wheel"
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    scripts = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "hebbian-es = hebbian_es.__main__:main" in scripts and "hebbian-es-evaluate" in scripts
    assert "hebbian-es-analyze = hebbian_es.analyze:main" in scripts and "hebbian-es-report" in scripts

    # -- fresh venv ----------------------------------------------------------------------
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--system-site-packages", venv], cwd=tmp_path, env=env)
    python = venv / BIN / ("python.exe" if os.name == "nt" else "python")
    work = tmp_path / "work"  # cwd of everything run from the venv: not the repository
    work.mkdir()
    if sys.prefix != sys.base_prefix:  # the tests run in a venv: bridge to its packages
        purelib = _run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=work, env=env)
        outer = [p for p in site.getsitepackages() if Path(p).resolve() != Path(purelib.stdout.strip()).resolve()]
        (Path(purelib.stdout.strip()) / "_outer_env.pth").write_text("\n".join(outer) + "\n")
    # --ignore-installed: the outer environment's hebbian-es 0.1.0 (editable) is visible
    # to pip through the system site-packages and would otherwise count as satisfied.
    _run([python, "-m", "pip", "install", "--no-deps", "--no-index", "--ignore-installed", "--disable-pip-version-check",
          "-q", wheel], cwd=work, env=env)  # fmt: skip

    probe = _run(
        [python, "-c", "import json, hebbian_es, hebbian_es.conf, importlib.resources as r, importlib.metadata as m; "
         "print(json.dumps({'pkg': hebbian_es.__file__, 'conf': hebbian_es.conf.__file__, "
         "'train_yaml': str(r.files('hebbian_es.conf') / 'train.yaml'), 'version': m.version('hebbian-es'), "
         "'dist': str(m.distribution('hebbian-es').locate_file('hebbian_es/__init__.py'))}))"],
        cwd=work, env=env,
    )  # fmt: skip
    where = json.loads(probe.stdout.strip().splitlines()[-1])
    venv_root = venv.resolve()
    for key in ("pkg", "conf", "train_yaml", "dist"):
        path = Path(where[key]).resolve()
        assert venv_root in path.parents, f"{key} resolves outside the venv: {path} (the editable install shadows the wheel)"
        assert ROOT not in path.parents
    assert Path(where["train_yaml"]).is_file()

    # -- a debug run from the installed wheel -------------------------------------------
    run_dir = tmp_path / "run"
    _run([python, "-m", "hebbian_es", "debug=default", f"hydra.run.dir={run_dir}", "progress_bar=false"], cwd=work, env=env)
    for name in ("config.yaml", "metrics.jsonl", "summary.json", "test_last.json", "train.log",
                 "checkpoints/last.pt", "checkpoints/best.pt"):  # fmt: skip
        assert (run_dir / name).is_file(), name
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["generations_done"] == 3 and summary["versions"]["hebbian_es"] == where["version"]
    assert not any(work.iterdir()), "the run wrote into the working directory instead of its run dir"

    # -- console scripts; a gymnasium id without a config file composes from the wheel --
    script = venv / BIN / "hebbian-es"
    assert script.is_file() and (venv / BIN / "hebbian-es-evaluate").is_file()
    assert str(venv) in script.read_text().splitlines()[0], "the script does not run the venv's python"
    job = _run([script, "env=Acrobot-v1", "--cfg", "job"], cwd=work, env=env)
    assert "id: Acrobot-v1" in job.stdout and "name: Acrobot-v1" in job.stdout
    assert "squash: clip" in job.stdout  # conf/env/generic.yaml under the id
    # the SLURM launcher plugin is found under hydra_plugins from the wheel, and checks before submitting
    refused = subprocess.run([script, "-m", "hydra/launcher=slurm", f"hydra.sweep.dir={tmp_path / 'sweep'}"],
                             cwd=work, env=env, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert refused.returncode == 2 and "hydra.launcher.partition" in refused.stderr, refused.stderr[-2000:]
    evaluated = _run([venv / BIN / "hebbian-es-evaluate", f"run={run_dir}", "episodes=2", "checkpoint=last"], cwd=work, env=env)
    assert "cartpole" in evaluated.stdout
    assert len(json.loads((run_dir / "test_last.json").read_text())["envs"]["cartpole"]["returns"]) == 3  # training's own
    (evaluation,) = (run_dir / "evaluations").glob("last_gen3_n2_seed0.json")
    assert len(json.loads(evaluation.read_text())["envs"]["cartpole"]["returns"]) == 2
