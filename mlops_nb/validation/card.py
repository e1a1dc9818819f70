"""Model cards: what a registered version is, how it measured, and what its gate decided."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from mlops_nb.validation.gate import card_html


@dataclass
class ModelCard:
    ref: str
    run_id: str
    aliases: tuple
    run_metrics: dict
    decision: dict | None
    signature: dict | None
    evaluation: dict | None = None    # the version measured on rows given to model_card (gate.describe_model)

    def to_dict(self) -> dict:
        return {"model": self.ref, "run_id": self.run_id, "aliases": list(self.aliases),
                "run_metrics": self.run_metrics, "gate": self.decision, "signature": self.signature,
                "evaluation": self.evaluation}

    @property
    def fairness(self) -> dict | None:
        """The fairness measures of the evaluation (else of the gate's decision), or None."""
        for card in (self.evaluation, (self.decision or {}).get("card")):
            if card and card.get("fairness"):
                return card["fairness"]["candidate"]
        return None

    def save_html(self, path):
        """A standalone page of this card."""
        from mlops_nb.validation.report import save_html

        return save_html(self._repr_html_(), path, title=f"mlops-nb model card: {self.ref}")

    def __str__(self) -> str:
        gate = ("no gate decision" if self.decision is None else
                f"gate {'passed' if self.decision['passed'] else 'failed'}"
                + (f" (overridden: {self.decision['override_reason']})" if self.decision.get("override_reason") else ""))
        metrics = ", ".join(f"{k}={v:.4g}" for k, v in self.run_metrics.items())
        return f"{self.ref} ({', '.join(self.aliases) or 'no alias'}): {gate}; run metrics {metrics or 'none'}"

    __repr__ = __str__

    def _repr_html_(self) -> str:
        gate = ("no gate decision" if self.decision is None else
                ("<span style='color:#2e7d32;font-weight:600'>gate passed</span>" if self.decision["passed"] else
                 "<span style='color:#c62828;font-weight:600'>gate failed</span>")
                + (f" (overridden: {escape(self.decision['override_reason'])})"
                   if self.decision.get("override_reason") else ""))
        metrics = ", ".join(f"{escape(k)}={v:.4g}" for k, v in self.run_metrics.items())
        aliases = f" <i>{escape(', '.join(self.aliases))}</i>" if self.aliases else ""
        head = f"<div><b>{escape(self.ref)}</b>{aliases} · {gate} · run metrics {metrics or 'none'}</div>"
        if self.evaluation is not None:
            head += "<div><b>evaluated on the rows given</b></div>" + card_html(self.evaluation)
        if self.decision is None:
            return head
        failed = [r for r in self.decision["results"] if not r["passed"]]
        rules = "".join(f"<li>{'FAIL ' if not r['passed'] else ''}{escape(r['detail'])}</li>"
                        for r in self.decision["results"])
        return (head + f"<div>gate rules ({len(failed)} failed):<ul style='font-size:12px'>{rules}</ul></div>"
                + card_html(self.decision.get("card") or {}))
