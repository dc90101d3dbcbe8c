"""`python -m hebbian_es --help` is this project's page, not Hydra's generic one."""

from __future__ import annotations

import subprocess
import sys


def test_help_lists_groups_choices_commands_and_exit_codes() -> None:
    res = subprocess.run([sys.executable, "-m", "hebbian_es", "--help"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    text = res.stdout
    assert text.startswith("hebbian_es: evolve synapse-specific Hebbian learning rules")
    assert "Powered by Hydra" not in text  # Hydra's generic page starts so
    assert ("rule: a, abc, abcd, abcd_clock4, abcd_d_in_out, abcd_d_out, abcd_merge, abcd_modulated, abcd_reward, abcd_shared16, "
            "abcd_shared64, abcd_softplus, abcd_trace, abcd_trace_reward, ad, bcm, bcm_rates, oja, static") in text
    assert "experiment: ant_damage_paper" in text and "sweep: hebbian_vs_static" in text
    for command in ("hebbian_es.evaluate", "hebbian_es.analyze", "hebbian_es.report", "hebbian_es.zoo", "hebbian_es.merge"):
        assert f"python -m {command}" in text
    assert "Exit codes: 0 finished" in text and 'eval "$(python -m hebbian_es -sc install=bash)"' in text


def test_tab_completion_script_is_printed() -> None:
    res = subprocess.run([sys.executable, "-m", "hebbian_es", "-sc", "install=bash"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and "hydra_bash_completion" in res.stdout
