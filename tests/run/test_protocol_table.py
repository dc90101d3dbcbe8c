"""The test table (the paper's Table 1 with bodies) reads right."""

from __future__ import annotations


def test_the_table_names_bodies_under_body_and_seen_under_seen() -> None:
    from hebbian_es.run.protocol import format_table

    stats = {"episodes": 2, "mean": 1.0, "sd": 0.5, "min": 0.5, "max": 1.5}
    table = format_table({"envs": {"front_left_short": {**stats, "seen": False}, "standard": {**stats, "seen": True}}})
    head, unseen, seen = table.splitlines()
    assert head.split()[:2] == ["body", "seen"] and unseen.split()[:2] == ["front_left_short", "unseen"]
    assert head.index("seen") == unseen.index("unseen") and seen.split()[:2] == ["standard", "seen"]
    assert format_table({"envs": {"cartpole": stats}}).splitlines()[0].split()[0] == "env"
