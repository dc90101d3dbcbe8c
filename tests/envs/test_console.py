"""pybullet's console noise (its build-time banner, "argv[0]=") never reaches the user."""

from __future__ import annotations

import subprocess
import sys


def test_quadruped_envs_are_created_and_reset_in_silence() -> None:
    code = (
        "import gymnasium as gym, hebbian_es.envs.ant\n"
        "for name in ('MorphAnt-v0', 'FastAnt-v0'):\n"
        "    env = gym.make('hebbian_es.envs.ant:' + name); env.reset(seed=0); env.reset(seed=1); env.close()\n"
        "print('done')\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout == "done\n"
    assert "pybullet build time" not in res.stderr and "argv[0]" not in res.stderr, res.stderr


def test_python_output_inside_the_block_is_not_lost_before_it(capfd) -> None:
    from hebbian_es.envs.console import native_output_silenced

    print("before", flush=False)  # still in Python's buffer when the block starts: flushed first
    with native_output_silenced():
        import os

        os.write(1, b"native noise\n")
    print("after")
    out = capfd.readouterr().out
    assert out == "before\nafter\n"
