"""The W&B side of the report: the report's spec as plain data (built offline), W&B's own
model of it (wandb-workspaces, offline), and publishing it (the only network step).

Publishing never waits on stdin: without an API key it is one error before wandb is
touched, and wandb itself runs silent (WANDB_SILENT: no login prompt) under a timeout.
"""

from __future__ import annotations

import json
import os
import threading
from typing import Any, Mapping, Optional, Sequence

from hebbian_es.errors import ConfigError
from hebbian_es.report.runs import Run
from hebbian_es.run.observers import api_key_configured

WANDB_MODES = ("auto", "off", "on")
PUBLISH_TIMEOUT_S = 120.0


class MissingCredentials(ConfigError):
    """wandb=on without a W&B API key: nothing to publish with (exit 2, never a login prompt)."""


def wandb_target(runs: Sequence[Run], sweep_name: str) -> dict[str, Any]:
    """Project, entity, group and mode the runs logged with (logger.wandb.*); group defaults to sweep.name."""
    cfgs = [r.config.get("logger", {}).get("wandb") for r in runs if isinstance(r.config.get("logger"), dict)]
    cfgs = [c for c in cfgs if isinstance(c, dict)]
    first = cfgs[0] if cfgs else {}
    modes = {str(c.get("mode", "offline")) for c in cfgs}
    return {
        "logged": bool(cfgs),
        "mode": "online" if "online" in modes else (modes.pop() if len(modes) == 1 else "offline"),
        "project": first.get("project") or "hebbian_es",
        "entity": first.get("entity"),
        "group": first.get("group") or sweep_name,
    }


def group_keys(runs: Sequence[Run], by: str) -> list[str]:
    """W&B config keys that separate the groups: `<by>.name` where the group has a name,
    else the fewest leaves of config[<by>] that tell the groups apart."""
    members = [r for r in runs if r.config]
    if not members:
        return [f"config.{by}.name"]

    def leaves(d: Any, prefix: str) -> dict[str, Any]:
        if isinstance(d, dict):
            out: dict[str, Any] = {}
            for k, v in d.items():
                out.update(leaves(v, f"{prefix}.{k}"))
            return out
        return {prefix: json.dumps(d, sort_keys=True, default=str)}

    flat = [leaves(r.config.get(by), by) for r in members]
    keys = list(dict.fromkeys(k for f in flat for k in f))
    target = [r.group for r in members]

    def separates(ks: Sequence[str]) -> bool:
        seen: dict[tuple, str] = {}
        for f, g in zip(flat, target):
            sig = tuple(f.get(k) for k in ks)
            if seen.setdefault(sig, g) != g:
                return False
        return True

    if f"{by}.name" in keys and separates([f"{by}.name"]):
        return [f"config.{by}.name"]
    for k in keys:
        if separates([k]):
            return [f"config.{k}"]
    chosen = [k for k in keys if len({f.get(k) for f in flat}) > 1]
    return [f"config.{k}" for k in chosen] or [f"config.{by}"]


def wandb_spec(
    runs: Sequence[Run], groups: Sequence[str], by: str, metric: str, agg: Mapping[str, Any], sweep_name: str,
    title: str, test_md: Optional[str], runs_md: str, entity: Optional[str] = None, project: Optional[str] = None,
) -> dict[str, Any]:
    """The W&B report as plain data (no network): what `build_wandb_report` turns into wr objects."""
    target = wandb_target(runs, sweep_name)
    keys = group_keys(runs, by)
    group = target["group"]
    quote = '"' if "'" in group else "'"
    line = {"groupby": keys[0] if len(keys) == 1 else None, "groupby_aggfunc": "mean", "groupby_rangefunc": "stddev"}
    panels: list[dict[str, Any]] = [
        {"type": "LinePlot", "title": f"{metric} by {by} (mean ± sd over seeds)", "x": "generation", "y": [metric], **line},
    ]
    if agg["validation"]:
        panels.append({"type": "LinePlot", "title": f"validation mean by {by} (mean ± sd over seeds)", "x": "generation", "y": ["val_mean"], **line})
    test_keys = [f"test/{env}/mean" for env in agg["test_envs"]]
    if test_keys:
        panels.append({"type": "BarPlot", "title": f"test mean by {by} (mean ± sd over seeds)", "metrics": test_keys, **line})
    panels.append({"type": "RunComparer", "diff_only": "split"})
    summaries = ["summary:generations_done", "summary:best_center_return", *[f"summary:{k}" for k in test_keys]]
    blocks: list[dict[str, Any]] = [
        {"type": "P", "text": f"Runs of the W&B group {group!r} (job type train), grouped by {', '.join(keys)}; "
                              f"{len(runs)} runs in the sweep dir, groups: {', '.join(groups)}."},
        {"type": "PanelGrid",
         "runset": {"name": sweep_name, "filters": f"Group == {quote}{group}{quote} and JobType == 'train'",
                    "groupby": keys, "pinned_columns": ["run:state", *summaries]},
         "panels": panels},
    ]
    if test_md:
        blocks += [{"type": "H2", "text": "Final test (finished runs; mean ± sd over seeds)"}, {"type": "MarkdownBlock", "text": test_md}]
    blocks += [{"type": "H2", "text": "Runs (failed and unfinished ones marked)"}, {"type": "MarkdownBlock", "text": runs_md}]
    return {
        "entity": entity or target["entity"],
        "project": project or target["project"],
        "group": group,
        "mode": target["mode"],
        "logged_to_wandb": target["logged"],
        "groupby": keys,
        "title": title[:128],
        "description": f"Sweep {sweep_name}: {by} comparison over seeds (hebbian_es.report).",
        "blocks": blocks,
    }


def build_wandb_report(spec: Mapping[str, Any], for_publish: bool = False, entity: Optional[str] = None) -> Any:
    """wr.Report from the plain spec.  Offline (for_publish=False) the run set names no
    entity/project (the report's own is used), so `report._to_model()` needs no server;
    the report's entity must then be given (spec or `entity`) or it is left empty."""
    import warnings

    with warnings.catch_warnings():  # its pydantic v1-style validators warn on import
        warnings.simplefilter("ignore", DeprecationWarning)
        import wandb_workspaces.reports.v2 as wr

    ent = entity or spec.get("entity") or ""
    project = spec["project"]
    blocks: list[Any] = []
    for b in spec["blocks"]:
        kind = b["type"]
        if kind in ("H1", "H2", "H3", "P"):
            blocks.append(getattr(wr, kind)(b["text"]))
        elif kind == "MarkdownBlock":
            blocks.append(wr.MarkdownBlock(b["text"]))
        elif kind == "PanelGrid":
            rs = dict(b["runset"])
            if for_publish:
                rs.update(entity=ent, project=project)
            panels = []
            for p in b["panels"]:
                p = dict(p)
                ptype = p.pop("type")
                if ptype == "BarPlot":
                    p["metrics"] = [wr.SummaryMetric(m) for m in p["metrics"]]
                panels.append(getattr(wr, ptype)(**{k: v for k, v in p.items() if v is not None}))
            blocks.append(wr.PanelGrid(runsets=[wr.Runset(**rs)], panels=panels))
        else:
            raise ValueError(f"unknown block type {kind!r}")
    return wr.Report(project=project, entity=ent, title=spec["title"], description=spec["description"], blocks=blocks)


def viewspec(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The report body W&B would store, built offline (as JSON data)."""
    model = build_wandb_report(spec)._to_model()
    return json.loads(model.spec.model_dump_json(by_alias=True, exclude_none=True))


def publish(spec: Mapping[str, Any], timeout: float = PUBLISH_TIMEOUT_S) -> str:
    """Save the report to W&B (needs the server); returns its URL.  Never waits past `timeout` and
    never on stdin: MissingCredentials without an API key, and wandb runs silent (no login prompt)."""
    if not api_key_configured():
        raise MissingCredentials("wandb=on needs a W&B API key: set WANDB_API_KEY or run `wandb login` (or use wandb=auto|off)")
    os.environ["WANDB_SILENT"] = "true"  # wandb raises instead of prompting for a login
    result: dict[str, Any] = {}

    def work() -> None:
        try:
            import wandb

            entity = spec.get("entity") or wandb.Api(timeout=30).default_entity
            report = build_wandb_report(spec, for_publish=True, entity=entity)
            report.save()
            result["url"] = report.url
        except BaseException as exc:  # noqa: BLE001 - reported to the user as one line
            result["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"

    t = threading.Thread(target=work, daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        raise ConfigError(f"publishing the W&B report took over {timeout:.0f} s (no network?)")
    if "error" in result:
        raise ConfigError(f"publishing the W&B report failed: {result['error']}")
    return str(result["url"])


def wandb_decision(mode: str, spec: Mapping[str, Any]) -> tuple[bool, str]:
    """(publish?, why) for wandb=auto|on."""
    if mode == "on":
        return True, "wandb=on"
    env_mode = os.environ.get("WANDB_MODE", "").lower()
    if env_mode in ("offline", "disabled", "dryrun"):
        return False, f"WANDB_MODE={env_mode}"
    if not spec["logged_to_wandb"]:
        return False, "the runs were not logged to W&B (no logger.wandb in their config)"
    if spec["mode"] != "online":
        return False, f"the runs logged to W&B in {spec['mode']} mode (sync them, then wandb=on publishes)"
    if not api_key_configured():
        return False, "no W&B API key configured (WANDB_API_KEY or `wandb login`)"
    return True, "runs logged online and an API key is configured"


