"""The decision report of a comparison: the answer first, then the evidence, then the methods.

Built from a ``compare --out`` directory: ``comparison.csv`` (every value with its Monte Carlo
error and interval, and the paired difference from the reference design), ``winners.csv``,
``yardstick.csv`` (the truth per treatment x subgroup), and, when the comparison calibrated
or sized the designs, ``calibration.csv``, ``frontier.csv`` and ``sizing.csv``, with the design
and scenario copies for the descriptions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..glossary import label, short
from . import figures
from .describe import describe_design, describe_scenario
from .html import bullets, figure, heading, page, para, section, table

if TYPE_CHECKING:  # pragma: no cover
    from ..spec import Spec

#: The metrics the answer is told in, in order.
ANSWER = ["power", "fwer", "p_correct_finding", "n_on_effective", "n_screened", "months_to_first_true_claim", "cost"]
TABLE_METRICS = [
    "power",
    "fwer",
    "p_correct_finding",
    "p_any_claim",
    "n_screened",
    "n_randomized",
    "n_assayed",
    "n_on_effective",
    "n_on_ineffective",
    "n_on_control",
    "expected_responders",
    "months_to_first_true_claim",
    "duration_months",
    "cost",
]
_PROPORTIONS = {"power", "fwer", "p_correct_finding", "p_any_claim"}


@dataclass
class CompareTables:
    """The CSV files of a compare directory (empty frames for those it does not have)."""

    table: pd.DataFrame
    winners: pd.DataFrame = field(default_factory=pd.DataFrame)
    truth: pd.DataFrame = field(default_factory=pd.DataFrame)
    calibration: pd.DataFrame = field(default_factory=pd.DataFrame)
    frontier: pd.DataFrame = field(default_factory=pd.DataFrame)
    sizing: pd.DataFrame = field(default_factory=pd.DataFrame)


def paired_figure(
    t, reference: str | None = None, metrics: Sequence[str] = ("power", "fwer", "p_correct_finding", "cost"), ax=None
):
    """The forest plot of paired differences from ``reference`` (default: the comparison's first
    design) on ``metrics``; ``t`` is a :class:`~platform_sim.compare.Comparison` or
    :class:`CompareTables`. Cost is shown in millions. ``ax``: draw one metric there."""
    trial = t.table[t.table["level"] == "trial"]
    designs = list(dict.fromkeys(trial["design"]))
    reference = reference or (designs[0] if designs else "")
    if reference not in designs:
        raise ValueError(f"reference {reference!r} is not one of the compared designs {designs}")
    if reference != designs[0]:
        raise ValueError(
            f"paired differences are stored from the first design ({designs[0]!r}); compare with "
            f"{reference!r} first to draw differences from it"
        )
    diffs = trial.loc[
        trial["design"] != reference, ["scenario", "metric", "design", "diff_vs_reference", "diff_lower", "diff_upper"]
    ]
    diffs = diffs.rename(columns={"diff_vs_reference": "diff", "diff_lower": "lower", "diff_upper": "upper"})
    cost = diffs["metric"] == "cost"
    diffs.loc[cost, ["diff", "lower", "upper"]] = diffs.loc[cost, ["diff", "lower", "upper"]] / 1e6
    shown = [m for m in metrics if m in set(diffs["metric"])]
    if diffs.empty or not shown:
        return None
    return figures.paired_differences(diffs, shown, reference, {m: short(m) for m in shown}, ax=ax)


def frontier_figure(t, target: float | None = None, scenarios: Sequence[str] | None = None, ax=None):
    """Power against FWER across thresholds, per scenario (None without a calibrated comparison);
    ``scenarios``: the panels drawn (default: every alternative scenario); ``ax``: draw one there."""
    if t.frontier.empty or not (~t.frontier["null"].astype(bool)).any():
        return None
    if target is None and not t.calibration.empty:
        target = float(t.calibration["target_fwer"].iloc[0])
    return figures.frontier(t.frontier, target=target, scenarios=None if scenarios is None else list(scenarios), ax=ax)


def claims_figure(t, scenario: str):
    """Who is claimed where on ``scenario``: one panel per design, treatments by true subgroups."""
    table_ = t.table
    cells = table_[
        (table_["level"] == "subgroup") & (table_["metric"] == "p_claimed") & (table_["scenario"] == scenario)
    ]
    if cells.empty or t.truth.empty:
        return None
    designs = list(dict.fromkeys(table_["design"]))
    return figures.claims_heatmap(cells, t.truth, designs, scenario)


def read_tables(path: Path, table: pd.DataFrame) -> CompareTables:
    """The optional CSV files next to ``comparison.csv``."""
    out = CompareTables(table)
    for name in ("winners", "truth", "calibration", "frontier", "sizing"):
        file = path / ("yardstick.csv" if name == "truth" else f"{name}.csv")
        if file.is_file():
            setattr(out, name, pd.read_csv(file, keep_default_na=False, na_values=[""]))
    return out


def _scale(metric: str) -> float:
    return 1e6 if metric == "cost" else 1.0


def _digits(metric: str) -> int:
    return 3 if metric in _PROPORTIONS else 1


def _value(row, metric: str) -> str:
    """A value as the report shows it: a proportion with its Jeffreys interval bound at 0 or 1, any other
    value ± MCSE (scaled for cost)."""
    v, se = float(row["value"]), float(row["mcse"])
    if not math.isfinite(v):
        return "NA"
    d, s = _digits(metric), _scale(metric)
    if metric in _PROPORTIONS and se == 0:
        lower, upper = float(row["lower"]), float(row["upper"])
        if v == 0 and math.isfinite(upper):
            return f"{v:.{d}f} (≤ {upper:.{d}f})"
        if v == 1 and math.isfinite(lower):
            return f"{v:.{d}f} (≥ {lower:.{d}f})"
    if not math.isfinite(se):
        return f"{v / s:.{d}f}"
    if 0 < se / s < 0.5 * 10.0**-d:
        d = min(d + 3, -math.floor(math.log10(se / s)))
    return f"{v / s:.{d}f} ± {se / s:.{d}f}"


def _interval(lower: float, upper: float, metric: str) -> str:
    d, s = _digits(metric), _scale(metric)
    if not (math.isfinite(lower) and math.isfinite(upper)):
        return ""
    return f"{lower / s:+.{d}f} to {upper / s:+.{d}f}"


def _first_sentence(text: str, limit: int = 140) -> str:
    text = " ".join(str(text).split())
    cut = text.split(". ")[0].rstrip(".")
    return cut if len(cut) <= limit else cut[: limit - 1].rstrip() + "…"


# --------------------------------------------------------------------------- the answer


def _answer(
    t: CompareTables, designs: list[str], design_labels: dict[str, str], calibrated: bool, manifest: dict
) -> str:
    parts = []
    if calibrated:
        parts.append(
            para(
                f"Every design was first calibrated on the global null {manifest.get('null_scenario')} so that it makes a "
                f"false claim in at most {manifest.get('target_fwer'):g} of trials (see Calibration), so the power "
                "columns compare designs at one error rate."
            )
        )
    else:
        parts.append(
            para(
                "The designs ran at their own decision thresholds: they were not calibrated to one error rate, so a "
                "design with higher power may simply be looser. Run compare with --null-scenario and --target-fwer to "
                "compare them at one FWER.",
                cls="warning",
            )
        )
    if manifest.get("equal", "none") not in (None, "none"):
        parts.append(para(f"Every design was sized like the reference design ({manifest.get('equal')}; see Sizing)."))
    w = t.winners
    table_ = t.table
    trial = table_[table_["level"] == "trial"]
    parts.append(_tally(w, designs))
    for scenario in dict.fromkeys(trial["scenario"]):
        items = []
        for metric in ANSWER:
            hit = w[(w["scenario"] == scenario) & (w["metric"] == metric)] if not w.empty else w
            if hit.empty:
                continue
            r = hit.iloc[0]
            words = label(metric)
            if not _named(r["best"]):
                items.append(f"{words}: a tie between the designs")
                continue
            best_row = trial[
                (trial["scenario"] == scenario) & (trial["metric"] == metric) & (trial["design"] == str(r["best"]))
            ].iloc[0]
            d, s = _digits(metric), _scale(metric)
            if not _named(r["runner_up"]):
                items.append(
                    f"{words}: {r['best']} ({_value(best_row, metric)}), the only design that makes a true "
                    "claim in at least half as many trials as the best one"
                )
                continue
            if not np.isfinite(float(r["diff"])):
                items.append(
                    f"{words}: {r['best']} ({_value(best_row, metric)}), ahead of {r['runner_up']}; no "
                    "paired difference (the two never make a true claim in the same trial)"
                )
                continue
            verdict = "clearly" if bool(r["clear"]) else "not clearly"
            items.append(
                f"{words}: {r['best']} ({_value(best_row, metric)}) is {verdict} ahead of {r['runner_up']}: paired "
                f"difference {float(r['diff']) / s:+.{d}f} (95% interval "
                f"{_interval(float(r['diff_lower']), float(r['diff_upper']), metric)})"
            )
        if items:
            parts.append(heading(3, f"Scenario {scenario}") + bullets(items))
    parts.append(_winner_table(w))
    parts.append(para("Designs: " + "; ".join(f"{d}: {design_labels.get(d, '')}" for d in designs) + "."))
    return "".join(parts)


def _glossary() -> str:
    """Every metric name of comparison.csv with the label the page uses and its definition."""
    from ..compare import ARM_METRICS, OWN_METRICS
    from ..yardstick import CELL_METRICS, DRUG_METRICS, TRIAL_METRICS

    rows = []
    for level, metrics in (
        ("trial", {**TRIAL_METRICS, **OWN_METRICS}),
        ("drug", DRUG_METRICS),
        ("subgroup", CELL_METRICS),
        ("arm", ARM_METRICS),
    ):
        for name, meaning in metrics.items():
            rows.append([name, level, label(name), meaning])
    return table(
        ["name", "level", "label on this page", "definition"],
        rows,
        "The metrics of comparison.csv (column metric) by level (column level); cost is in the scenario's "
        "currency, shown in millions",
        numeric=[False] * 4,
        table_id="glossary-table",
    )


def _named(value) -> bool:
    """Whether a design-name cell names a design (an empty cell reads back from CSV as NaN)."""
    return isinstance(value, str) and bool(value)


def _tally(w: pd.DataFrame, designs: list[str]) -> str:
    """How often each design is best, and clearly best, over the scenarios, per key metric."""
    if w.empty:
        return ""
    metrics = [m for m in ("power", "fwer", "p_correct_finding", "n_on_effective", "cost") if m in set(w["metric"])]
    rows = []
    for d in designs:
        row = [d]
        for m in metrics:
            part = w[(w["metric"] == m)]
            best = part[part["best"] == d]
            row.append(f"{len(best)} of {len(part)} ({int(best['clear'].astype(bool).sum())} clearly)")
        rows.append(row)
    return table(
        ["design"] + [short(m) for m in metrics],
        rows,
        "In how many scenarios each design is the best, and clearly the best (its paired 95% interval against "
        "the runner-up excludes 0)",
        numeric=[False] * (len(metrics) + 1),
        table_id="tally",
    )


def _winner_table(w: pd.DataFrame) -> str:
    if w.empty:
        return ""
    metrics = [m for m in ANSWER if m in set(w["metric"])]
    rows = []
    for scenario, part in w.groupby("scenario", sort=False):
        part = part.set_index("metric")
        row = [scenario]
        for m in metrics:
            if m not in part.index:
                row.append("NA")
                continue
            r = part.loc[m]
            if not _named(r["best"]):
                row.append("tie")
                continue
            d, s = _digits(m), _scale(m)
            diff = float(str(r["diff"])) / s
            shown = (
                f"{diff:+.{d}f}"
                if np.isfinite(diff)
                else "sole contender"
                if not _named(r["runner_up"])
                else "not paired"
            )
            row.append(f"{r['best']} ({shown}{' *' if bool(r['clear']) else ''})")
        rows.append(row)
    return table(
        ["scenario"] + [short(m) for m in metrics],
        rows,
        "The best design per scenario and metric, with its paired difference from the runner-up; * its 95% "
        "interval excludes 0. Time to the first true claim: among the designs with at least half the best power "
        "(sole contender: no other has)",
        numeric=[False] * (len(metrics) + 1),
        table_id="winners",
    )


# --------------------------------------------------------------------------- tables


def _side_by_side(t: pd.DataFrame, reference: str) -> str:
    trial = t[t["level"] == "trial"]
    designs = list(dict.fromkeys(trial["design"]))
    others = [d for d in designs if d != reference]
    parts = []
    for scenario in dict.fromkeys(trial["scenario"]):
        rows = []
        for metric in TABLE_METRICS:
            part = trial[(trial["scenario"] == scenario) & (trial["metric"] == metric)].set_index("design")
            if part.empty:
                continue
            row = [label(metric), metric]
            row += [_value(part.loc[d], metric) if d in part.index else "NA" for d in designs]
            for d in others:
                if d not in part.index or not math.isfinite(float(part.at[d, "diff_vs_reference"])):
                    row.append("NA")
                    continue
                dd, s = _digits(metric), _scale(metric)
                row.append(
                    f"{float(part.at[d, 'diff_vs_reference']) / s:+.{dd}f} "
                    f"({_interval(float(part.at[d, 'diff_lower']), float(part.at[d, 'diff_upper']), metric)})"
                )
            rows.append(row)
        header = ["metric", "code"] + designs + [f"{d} − {reference} (95% interval)" for d in others]
        parts.append(
            table(
                header,
                rows,
                f"{scenario}: value ± Monte Carlo SE (a proportion of 0 shows its Jeffreys "
                "upper bound), and the paired difference from the reference design",
                numeric=[False, False] + [True] * (len(header) - 2),
            )
        )
    return "".join(parts)


def _drug_table(t: pd.DataFrame) -> str:
    drug = t[(t["level"] == "drug") & (t["metric"] == "power")]
    if drug.empty:
        return ""
    designs = list(dict.fromkeys(drug["design"]))
    rows = []
    for (scenario, treatment), part in drug.groupby(["scenario", "treatment"], sort=False):
        part = part.set_index("design")
        if not np.isfinite(part["value"].to_numpy(float)).any():
            continue
        rows.append(
            [scenario, treatment] + [_value(part.loc[d], "power") if d in part.index else "NA" for d in designs]
        )
    if not rows:
        return ""
    return table(
        ["scenario", "treatment"] + designs,
        rows,
        "Per-treatment power: the treatment claimed in at least one subgroup where it works",
        numeric=[False, False] + [True] * len(designs),
    )


def _calibration_table(c: pd.DataFrame) -> str:
    if c.empty:
        return ""
    rows = []
    for r in c.itertuples():
        evaluated = int(float(str(r.thresholds_evaluated)))
        fwer = f"{r.fwer:.4f} ± {r.fwer_mcse:.4f} (95% {r.fwer_lower:.4f} to {r.fwer_upper:.4f})"
        rows.append(
            [r.design, r.parameter, r.design_values, r.calibrated_values, f"{r.design_fwer:.4f}", fwer, str(evaluated)]
        )
    return table(
        [
            "design",
            "threshold",
            "design's value",
            "calibrated value",
            "FWER at the design's value",
            "FWER calibrated (Jeffreys 95%)",
            "thresholds evaluated",
        ],
        rows,
        f"Decision thresholds calibrated on {c['null_scenario'].iloc[0]} to FWER ≤ {c['target_fwer'].iloc[0]:g}, "
        f"{int(float(c['n_sims'].iloc[0]))} simulated trials per threshold (common random numbers)",
        numeric=[False] * 7,
    )


def _sizing_table(s: pd.DataFrame) -> str:
    if s.empty:
        return ""
    rows = [
        [
            r.design,
            r.equal,
            r.reference,
            f"{r.max_n_before} → {r.max_n_after}",
            f"{r.months_before:.1f} → {r.months_after:.1f}",
        ]
        for r in s.itertuples()
    ]
    return table(
        ["design", "made equal", "like", "maximum patients", "planned accrual (months)"],
        rows,
        "Designs resized like the reference design",
        numeric=[False] * 5,
    )


def _truth_table(truth: pd.DataFrame, scenario: str) -> str:
    part = truth[truth["scenario"] == scenario]
    if part.empty:
        return ""
    rows = [
        [r.treatment, r.subgroup, f"{r.share:.3f}", f"{r.value:.3f}", f"{r.reference:.3f}", f"{r.effect:+.3f}", r.role]
        for r in part.itertuples()
    ]
    return table(
        ["treatment", "subgroup", "share of patients", "value", "standard of care", "effect", "truth"],
        rows,
        f"{scenario}: the truth per treatment and subgroup of true biomarkers",
        numeric=[False, False, True, True, True, True, False],
    )


# --------------------------------------------------------------------------- the page


def decision_page(
    manifest: dict,
    t: CompareTables,
    specs: dict[tuple[str, str], Spec],
    footer: str,
    template: str | Path | None = None,
) -> str:
    """The decision report of a comparison (see the module docstring)."""
    table_ = t.table
    designs = list(dict.fromkeys(table_["design"]))
    scenarios = list(dict.fromkeys(table_["scenario"]))
    reference = manifest.get("reference", designs[0] if designs else "")
    n_sims = int(manifest.get("n_sims", 0))
    calibrated = not t.calibration.empty
    first_spec = {
        d: next(sp for (dn, _), sp in specs.items() if dn == d) for d in designs if any(dn == d for dn, _ in specs)
    }
    scenario_spec = {
        s: next(sp for (_, sn), sp in specs.items() if sn == s) for s in scenarios if any(sn == s for _, sn in specs)
    }
    design_labels = {d: _first_sentence(sp.design.description) for d, sp in first_spec.items()}
    scenario_labels = {s: f"{s}: {_first_sentence(sp.scenario.description, 70)}" for s, sp in scenario_spec.items()}
    title = f"Which design? {len(designs)} designs on {len(scenarios)} scenarios"
    subtitle = (
        f"{n_sims:,} simulated trials per design and scenario with common random numbers, seed "
        f"{manifest.get('seed')}; "
        + (
            f"every design calibrated to FWER ≤ {manifest.get('target_fwer'):g} on {manifest.get('null_scenario')}"
            if calibrated
            else "designs at their own thresholds (not calibrated)"
        )
    )
    body, nav = [], []

    def add(section_id: str, nav_title: str, html_: str) -> None:
        body.append(html_)
        nav.append((section_id, nav_title))

    add(
        "answer",
        "The answer",
        section("answer", "The answer", _answer(t, designs, design_labels, calibrated, manifest)),
    )
    fig = paired_figure(t, reference)
    if fig is not None:
        add(
            "fig-paired",
            "Paired differences",
            section(
                "fig-paired",
                "How far apart the designs are",
                figure(
                    "fig-paired-figure",
                    figures.png_base64(fig),
                    "Forest plot of paired differences from the reference",
                    f"Each point is another design's value minus {reference}'s on the same simulated trials, with its 95% "
                    "interval: Newcombe's interval for paired proportions, ± 1.96 paired standard errors otherwise. An "
                    "interval that does not cross 0 is a clear difference.",
                ),
            ),
        )
    target = manifest.get("target_fwer")
    fig = frontier_figure(t, float(target) if target is not None else None)
    if fig is not None:
        add(
            "fig-frontier",
            "Power and FWER",
            section(
                "fig-frontier",
                "Power against FWER across thresholds",
                figure(
                    "fig-frontier-figure",
                    figures.png_base64(fig),
                    "Power against FWER per design and scenario",
                    "Each line is one design at its calibrated threshold (star, with every simulated trial) and at "
                    "thresholds moved by ±½ and ±1 on the logit scale (fewer simulated trials, see frontier.csv): the FWER on the null scenario against "
                    "the power on the panel's scenario, with 95% intervals both ways. A design whose line lies above "
                    "another's finds more at every error rate.",
                ),
            ),
        )
    figs = []
    for s in scenarios:
        fig = claims_figure(t, s)
        if fig is not None:
            figs.append(
                figure(
                    f"fig-claims-figure-{s}",
                    figures.png_base64(fig),
                    f"Claims by treatment and subgroup on {s}",
                    f"{scenario_labels.get(s, s)}. The rate at which each design claims each treatment "
                    "effective in each subgroup of true biomarkers (value ± MCSE); outlined: the "
                    "treatment works there (the rate is power); hatched: it is no better than the "
                    "standard of care there (a false-positive rate).",
                )
            )
    if figs:
        add("fig-claims", "Claims", section("fig-claims", "Who is found where", *figs))
    if calibrated:
        add(
            "calibration",
            "Calibration",
            section("calibration", "Calibration to one error rate", _calibration_table(t.calibration)),
        )
    if not t.sizing.empty:
        add("sizing", "Sizing", section("sizing", "Sizing", _sizing_table(t.sizing)))
    add(
        "oc-tables",
        "All figures",
        section(
            "oc-tables",
            "Every figure, with its Monte Carlo error",
            _side_by_side(table_, reference),
            _drug_table(table_),
        ),
    )
    methods = [
        para(
            "Claims are judged on one yardstick for every design: per treatment and subgroup of patients defined by "
            "the scenario's true biomarkers, against the standard of care. A claim a design makes for all patients "
            "counts in every subgroup, true where the treatment works there and false where it is no better than "
            "the standard of care; a claim in a stratum counts in every subgroup whose patients it reaches. Patients per "
            "subgroup are exact in expectation. Proportions carry Jeffreys intervals, paired differences of "
            "proportions Newcombe's interval for paired data, other values ± 1.96 Monte Carlo standard errors."
        ),
    ]
    for s in scenarios:
        methods.append(heading(3, f"Scenario {s}"))
        if s in scenario_spec:
            methods.append(describe_scenario(scenario_spec[s]))
        methods.append(_truth_table(t.truth, s))
    for d, sp in first_spec.items():
        methods.append(heading(3, f"Design {d}") + describe_design(sp, level=4))
    add("methods", "Methods", section("methods", "Methods: the yardstick, the scenarios and the designs", *methods))
    add("glossary", "Glossary", section("glossary", "Glossary: the names in the CSV files", _glossary()))
    nav.append(("reproducibility", "Reproducibility"))
    return page(title, subtitle, nav, body, footer, template)


__all__ = ["ANSWER", "CompareTables", "decision_page", "read_tables"]
