"""The report as a document (headings, paragraphs, tables, images), written as Markdown and HTML."""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

from hebbian_es.report.aggregate import Table, fmt, is_quadruped, runs_table, test_table
from hebbian_es.report.runs import FILES, Run


@dataclass
class Doc:
    title: str
    blocks: list[tuple[str, Any]] = field(default_factory=list)  # (kind, payload): h2 p list table image code

    def add(self, kind: str, payload: Any) -> None:
        self.blocks.append((kind, payload))


def _seeds(n: int) -> str:
    return f"{n} seed" + ("" if n == 1 else "s")


def build_doc(
    sweep_name: str, runs: Sequence[Run], groups: Sequence[str], by: str, metric: str, agg: Mapping[str, Any],
    images: Mapping[str, Path], commands: Mapping[str, str], title: Optional[str], wandb_note: str,
) -> Doc:
    doc = Doc(title or f"{sweep_name}: comparison by {by}")
    counts: dict[str, int] = {}
    for r in runs:
        counts[r.status] = counts.get(r.status, 0) + 1
    included = [r for r in runs if r.included]
    doc.add("p", (
        f"{len(runs)} runs ({', '.join(f'{n} {s}' for s, n in counts.items())}); compared along **{by}** "
        f"({', '.join(f'{g}: {_seeds(sum(1 for r in included if r.group == g))}' for g in groups)}). "
        f"Aggregates are over the {len(included)} finished runs only; mean ± sd over seeds (sd: population, ddof=0)."
    ))
    excluded = [r for r in runs if not r.included]
    if excluded:
        doc.add("h2", "Excluded runs")
        doc.add("list", [f"**{r.name}** ({by}={r.group}, seed {fmt(r.seed)}): {r.excluded}" for r in excluded])
    doc.add("h2", "Fitness curves")
    if "curves" in images:
        doc.add("p", (
            f"Left: `{metric}` per generation (the centre's return on that generation's training lifetimes), "
            "mean over seeds with ± sd shaded; thin lines are the single seeds."
            + (" Right: the centre's validation mean (fresh lifetimes, seeds disjoint from training)." if agg["validation"] else "")
        ))
        doc.add("image", images["curves"])
    else:
        doc.add("p", "No finished run has metrics rows: no curves.")
    doc.add("h2", "Final test")
    table = test_table(agg, groups, by)
    if table is None:
        doc.add("p", f"No finished run has test results ({FILES.test_results('last').name}).")
    else:
        doc.add("p", (
            "Each run's test mean (the test protocol's mean return over its lifetimes), then mean ± sd of those over seeds"
            + ("; seen: a body trained on; solved: the run's mean reached the env's threshold." if is_quadruped(agg) else ".")
        ))
        doc.add("table", table)
        if "test" in images:
            doc.add("image", images["test"])
    doc.add("h2", "Runs")
    doc.add("table", runs_table(runs, by))
    doc.add("h2", "W&B")
    doc.add("p", wandb_note)
    doc.add("h2", "Commands")
    doc.add("code", "\n".join(f"# {k}\n{v}" for k, v in commands.items()))
    return doc


# ---- Markdown ------------------------------------------------------------------------------


def _md_cell(s: str) -> str:
    return s.replace("|", "\\|").replace("\n", " ")


def markdown_table(t: Table) -> str:
    lines = ["| " + " | ".join(t.header) + " |", "|" + "|".join("---" for _ in t.header) + "|"]
    for i, row in enumerate(t.rows):
        cells = [_md_cell(c) for c in row]
        if i < len(t.marked) and t.marked[i]:
            cells = [f"~~{cells[0]}~~"] + cells[1:2] + [f"**{cells[2]}**"] + cells[3:]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def to_markdown(doc: Doc, rel: Mapping[Path, str]) -> str:
    """The document as Markdown; images are linked by `rel` (their path relative to the .md)."""
    out = [f"# {doc.title}", ""]
    for kind, payload in doc.blocks:
        if kind == "h2":
            out += [f"## {payload}", ""]
        elif kind == "p":
            out += [payload, ""]
        elif kind == "list":
            out += [f"- {x}" for x in payload] + [""]
        elif kind == "code":
            out += ["```", payload, "```", ""]
        elif kind == "image":
            out += [f"![{Path(payload).stem}]({rel[payload]})", ""]
        elif kind == "table":
            out += [markdown_table(payload), ""]
    return "\n".join(out)


# ---- HTML ----------------------------------------------------------------------------------

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:14px}th,td{border:1px solid #ccc;padding:4px 8px;text-align:left}
th{background:#f3f3f3}tr.excluded td{background:#fde8e8;color:#8a1c1c}img{max-width:100%;border:1px solid #eee}
pre{background:#f6f6f6;padding:.8em;overflow-x:auto}code{background:#f6f6f6}
"""


def _inline(text: str) -> str:
    """The little Markdown used in paragraphs (**bold**, `code`) as HTML."""
    s = html.escape(text)
    s = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", s)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", s)


def _html_table(t: Table) -> str:
    rows = ["<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in t.header) + "</tr>"]
    for i, row in enumerate(t.rows):
        cls = ' class="excluded"' if i < len(t.marked) and t.marked[i] else ""
        rows.append(f"<tr{cls}>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>")
    return "<table>" + "".join(rows) + "</table>"


def to_html(doc: Doc) -> str:
    """The document as one self-contained page: the PNGs embedded as data URLs."""
    out = ["<!DOCTYPE html>", '<html><head><meta charset="utf-8">', f"<title>{html.escape(doc.title)}</title>",
           f"<style>{CSS}</style></head><body>", f"<h1>{html.escape(doc.title)}</h1>"]
    for kind, payload in doc.blocks:
        if kind == "h2":
            out.append(f"<h2>{html.escape(payload)}</h2>")
        elif kind == "p":
            out.append(f"<p>{_inline(payload)}</p>")
        elif kind == "list":
            out.append("<ul>" + "".join(f"<li>{_inline(x)}</li>" for x in payload) + "</ul>")
        elif kind == "code":
            out.append(f"<pre>{html.escape(payload)}</pre>")
        elif kind == "image":
            data = base64.b64encode(Path(payload).read_bytes()).decode()
            out.append(f'<p><img alt="{html.escape(Path(payload).stem)}" src="data:image/png;base64,{data}"></p>')
        elif kind == "table":
            out.append(_html_table(payload))
    out.append("</body></html>")
    return "\n".join(out)
