"""The package's folders are its layers, and imports only go downward.

    0  errors, files, cli_args, numerics, config   (no hebbian_es imports above them)
    1  envs/     env specs, runtime, wrappers, the quadruped
    2  core/     rules, network, distributions, rollout, task
    3  es/       ask/tell optimisers, evaluators, torch.distributed
    4  run/      loop, observers, run directory, checkpoints, protocol, train, evaluate
    5  analysis/, report/   (neither imports the other)
    6  the entry points: __main__, the evaluate/analyze/plots/merge shims, zoo, benchmark, conf/

Every import statement counts, also one inside a function.
"""

from __future__ import annotations

import ast
from pathlib import Path

import hebbian_es

PACKAGE = Path(hebbian_es.__file__).parent
LAYERS = {
    "errors": 0, "files": 0, "cli_args": 0, "config": 0, "numerics": 0, "stats": 0,
    "envs": 1, "core": 2, "es": 3, "run": 4, "analysis": 5, "report": 5,
    "__main__": 6, "benchmark": 6, "evaluate": 6, "analyze": 6, "plots": 6, "zoo": 6, "merge": 6, "select": 6, "conf": 6, "__init__": 0,
}


def _unit(module: str) -> str:
    """'hebbian_es.run.loop' -> 'run'; 'hebbian_es' -> '__init__'."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "hebbian_es"]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "hebbian_es":
                found += [(node.lineno, f"hebbian_es.{a.name}") for a in node.names]
            elif node.module.startswith("hebbian_es."):
                found.append((node.lineno, node.module))
    return found


def _modules() -> list[tuple[str, Path]]:
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).with_suffix("")
        out.append((".".join(("hebbian_es",) + rel.parts), path))
    return out


def test_every_module_belongs_to_a_layer():
    units = {_unit(m) for m, _ in _modules()}
    assert units <= set(LAYERS), f"modules outside the layer table: {sorted(units - set(LAYERS))}"


def test_imports_only_go_downward():
    upward = []
    for module, path in _modules():
        mine = _unit(module)
        for line, target in _imports(path):
            theirs = _unit(target)
            if theirs == mine or theirs not in LAYERS:
                continue
            if LAYERS[theirs] > LAYERS[mine] or (LAYERS[theirs] == LAYERS[mine] and LAYERS[mine] > 0):
                upward.append(f"{path.relative_to(PACKAGE)}:{line} ({mine}, layer {LAYERS[mine]}) imports {target} (layer {LAYERS[theirs]})")
    assert not upward, "imports that go up or sideways:\n" + "\n".join(upward)


def test_no_module_is_much_over_400_lines():
    long = {str(p.relative_to(PACKAGE)): n for _, p in _modules() if (n := len(p.read_text().splitlines())) > 430}
    assert not long, long
