"""`risk evaluate --truth DIR`: the alerts against what the synthetic city planted.

Per rule: planted, raised, true positives, precision, recall, and how many amounts are exact to the fen;
plus every lawful case (a legal exception the generator planted) that wrongly got an alert.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from sqlalchemy import Connection, select

from risk.db.tables import alert
from risk.detection.registry import RULES
from risk.domain import RuleCode, Status


@dataclass
class RuleScore:
    rule: str
    planted: int
    raised: int
    hits: int
    exact: int

    @property
    def precision(self) -> float:
        return self.hits / self.raised if self.raised else 1.0

    @property
    def recall(self) -> float:
        return self.hits / self.planted if self.planted else 1.0


def _read(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def evaluate(conn: Connection, truth: Path) -> tuple[list[RuleScore], list[str]]:
    want = {(r["rule"], r["person_id"]): Decimal(r["amount_at_risk"]) for r in _read(truth / "expected-alerts.csv")}
    got = {(r.rule, r.person_id): Decimal(r.amount_at_risk_cents) / 100
           for r in conn.execute(select(alert.c.rule, alert.c.person_id, alert.c.amount_at_risk_cents)
                                 .where(alert.c.status != Status.WITHDRAWN))
           if r.rule != RuleCode.ANOMALY}
    scores = []
    for rule in [r.code for r in RULES]:
        w = {k: v for k, v in want.items() if k[0] == rule}
        g = {k: v for k, v in got.items() if k[0] == rule}
        hits = set(w) & set(g)
        scores.append(RuleScore(rule, len(w), len(g), len(hits), sum(1 for k in hits if w[k] == g[k])))
    wrongs = []
    for case in _read(truth / "lawful.csv"):
        person = case.get("person_id", "")
        for (rule, pid) in got:
            if pid == person and (rule, pid) not in want:
                wrongs.append(f"{case.get('case')}: {rule} raised for {pid[:6]}********{pid[-4:]} ({case.get('note', '')})")
    return scores, sorted(set(wrongs))


def table(scores: list[RuleScore]) -> str:
    lines = [f"{'rule':<24}{'planted':>8}{'raised':>8}{'hits':>6}{'precision':>11}{'recall':>8}{'exact amounts':>15}",
             "-" * 80]
    for s in scores:
        lines.append(f"{s.rule:<24}{s.planted:>8}{s.raised:>8}{s.hits:>6}{s.precision:>11.3f}{s.recall:>8.3f}"
                     f"{f'{s.exact}/{s.hits}':>15}")
    total = RuleScore("all rules", sum(s.planted for s in scores), sum(s.raised for s in scores),
                      sum(s.hits for s in scores), sum(s.exact for s in scores))
    lines.append("-" * 80)
    lines.append(f"{total.rule:<24}{total.planted:>8}{total.raised:>8}{total.hits:>6}{total.precision:>11.3f}"
                 f"{total.recall:>8.3f}{f'{total.exact}/{total.hits}':>15}")
    return "\n".join(lines) + "\n"


@dataclass
class ScoringScore:
    planted: int
    scored: int
    roc_auc: float | None
    precision_at_k: float | None
    by_kind: dict[str, float]  # kind -> share of that kind's people in the top K


def evaluate_scoring(conn: Connection, truth: Path) -> ScoringScore | None:
    """ROC-AUC of tonight's scores against the planted behavioural outliers, and precision at K (K = the
    number planted); None when nothing was scored or nothing planted."""
    from sklearn.metrics import roc_auc_score

    from risk.db.tables import score

    outliers = {r["person_id"]: r.get("kind", "") for r in _read(truth / "outliers.csv")}
    rows = conn.execute(select(score.c.person_id, score.c.score)).all()
    if not rows or not outliers:
        return None
    people = [r.person_id for r in rows]
    values = [float(r.score) for r in rows]
    labels = [1 if p in outliers else 0 for p in people]
    planted = sum(labels)
    auc = roc_auc_score(labels, values) if 0 < planted < len(labels) else None
    ranked = sorted(zip(values, people, strict=True), reverse=True)[:planted]
    top = {p for _, p in ranked}
    by_kind: dict[str, list[int]] = {}
    for p, kind in outliers.items():
        by_kind.setdefault(kind, []).append(1 if p in top else 0)
    return ScoringScore(planted, len(people), auc, len(top & set(outliers)) / planted if planted else None,
                        {k: sum(v) / len(v) for k, v in by_kind.items()})


def scoring_table(s: ScoringScore) -> str:
    lines = [f"behaviour scoring: {s.scored:,} people scored, {s.planted} planted outliers",
             f"  ROC-AUC {s.roc_auc:.3f}" if s.roc_auc is not None else "  ROC-AUC n/a",
             f"  precision at K={s.planted}: {s.precision_at_k:.3f}" if s.precision_at_k is not None else ""]
    for kind, share in sorted(s.by_kind.items()):
        lines.append(f"  {kind:<22} found in the top K: {share:.2f}")
    return "\n".join(ln for ln in lines if ln) + "\n"
