"""A pipeline run as Markdown, for a CI job's summary (``mlops-nb run --summary FILE``): its steps, and the
verdict of each gate decision made during it, rule by rule, and the aliases it moved."""

from __future__ import annotations


def run_summary(result, decisions: list[dict], version: str | None = None, moves: list[dict] = ()) -> str:
    icon = {"ran": "✅", "cached": "♻️", "pruned": "✂️", "failed": "❌", "skipped": "⏭️", "interrupted": "⏹️"}
    lines = [f"## {_md(result.pipeline)}: {result.status}",
             "",
             f"Pipeline run `{result.run_id[:8]}`{f', version `{version}`' if version else ''}, "
             f"{result.seconds:.1f} s.",
             "",
             "| step | status | seconds | note |",
             "|---|---|---:|---|"]
    for step in result.steps.values():
        note = step.failure.summary() if step.failure else step.reason or (
            f"reused {step.cached_from[:8]}" if step.cached_from else "")
        lines.append(f"| {_md(step.name)} | {icon.get(step.status, '')} {step.status} | {step.seconds:.1f} | "
                     f"{_md(note)} |")
    if not decisions:
        lines += ["", "No gate decision was made in this run."]
    for move in moves:
        was = f" (was version {move['previous']})" if move.get("previous") else ""
        lines += ["", f"**{_md(move['name'])}@{_md(move['alias'])}** now points at version {move['version']}{was}."]
    for decision in decisions:
        verdict = "**passed**" if decision["passed"] else "**failed**"
        against = f" against version {decision['baseline_version']}" if decision["baseline_version"] else \
            " (no baseline: absolute rules only)"
        lines += ["", f"### Gate: {_md(decision['name'])}/{decision['version']}{against}: {verdict}", "",
                  "| rule | result | detail |", "|---|---|---|"]
        for rule in decision["results"]:
            lines.append(f"| {_md(rule.get('metric', ''))} {_md(rule.get('rule', ''))} | "
                         f"{'✅' if rule.get('passed') else '❌'} | {_md(rule.get('detail', ''))} |")
    return "\n".join(lines) + "\n"


def _md(text) -> str:
    """Text for a Markdown table cell: one line, pipes escaped."""
    return str(text).replace("\n", " ").replace("|", "\\|")
