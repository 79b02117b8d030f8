"""Assemble the report of a ``run`` or ``compare`` output directory into ``report.html``.

Everything on the page is recomputed from what the directory holds (the per-trial records, the
design and scenario copies, ``comparison.csv`` and ``manifest.json``) with the same
functions the command line uses, so building the report twice gives the same page and
the tables agree with the CSV files next to it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..config import ConfigError, Problem
from ..glossary import KINDS, Term, label, short, term
from ..rundir import (
    MANIFEST_FILE,
    REPORT_FILE,
    RunDir,
    atomic_write,
    load_run,
    load_spec_copy,
    read_manifest,
    run_kind,
)
from . import figures
from .describe import describe_design, describe_scenario, truth_tables
from .html import bullets, figure, fmt, heading, key_values, page, para, pm, section, table

if TYPE_CHECKING:  # pragma: no cover
    from ..spec import Spec

COMPARISON_FILE = "comparison.csv"

# trial-level metrics shown in the convergence plots (at most six)
CONVERGENCE = ["p_any_claim", "power", "fwer", "p_correct_finding", "n_randomized", "duration_months"]
PROBABILITIES = {"p_any_claim", "power", "fwer", "p_correct_finding"}
COMPARISON_METRICS = ["p_any_claim", "power", "fwer", "p_correct_finding", "n_randomized", "duration_months"]
HEADLINE = ["p_any_claim", "power", "fwer", "mean_n_randomized", "duration_months"]
ARM_SHOWN = [
    "p_claimed",
    "p_dropped",
    "p_equivalent",
    "p_entered",
    "mean_n",
    "alloc_share",
    "events",
    "entered_month",
    "months_to_decision",
    "p_reject_concurrent",
    "p_reject_all",
]
CONTROL_BLANK = {"p_claimed", "p_entered", "entered_month", "months_to_decision", "p_reject_concurrent", "p_reject_all"}
#: The columns and levels of oc.csv, explained in a run report's glossary.
OC_COLUMNS = ["level", "arm", "subgroup", "metric", "value", "mcse", "lower", "upper", "n", "spec_hash"]


class Names:
    """The code names a page shows, in the order it first shows them, each with its words from
    :mod:`platform_sim.glossary`: the page's glossary lists them all."""

    def __init__(self) -> None:
        self.used: dict[tuple[str, str], None] = {}

    def label(self, code: str, kind: str = "metric") -> str:
        """The label of ``code`` (recorded for the glossary)."""
        self.used[kind, code] = None
        return label(code, kind)

    def short(self, code: str, kind: str = "metric") -> str:
        """The short label of ``code`` (recorded for the glossary)."""
        self.used[kind, code] = None
        return short(code, kind)

    def add(self, codes, kind: str = "metric") -> None:
        for code in codes:
            self.used[kind, code] = None

    def glossary(self) -> str:
        """The table of every name recorded: its kind, the label this page uses and its definition."""
        rows = []
        for kind, code in self.used:
            t = term(code, kind)
            rows.append([code, KINDS[kind], "" if t is None else t.label, "" if t is None else t.meaning])
        return table(
            ["name", "what it is", "label on this page", "definition"],
            rows,
            "The code names of this page and of oc.csv, with the label the page shows for each",
            numeric=[False] * 4,
            table_id="glossary-table",
        )


def build_report(run_dir: str | Path, template: str | Path | None = None) -> Path:
    """Write ``run_dir/report.html`` for a ``run --out`` or ``compare --out`` directory (detected from
    its ``manifest.json``) and return its path. ``template``: a sponsor's page template (see
    :func:`platform_sim.report.html.page`). Problems with the directory or the template raise
    ConfigError."""
    run_dir = Path(run_dir)
    manifest = read_manifest(run_dir)
    if run_kind(manifest) == "run":
        text = run_page(load_run(run_dir), template)
    else:
        text = compare_page(load_compare(run_dir), template)
    path = run_dir / REPORT_FILE
    atomic_write(path, lambda p: p.write_text(text, encoding="utf-8"))
    return path


# --------------------------------------------------------------------------- shared pieces


def _digits(metric: str) -> int:
    """Decimals for a metric: one for counts, months and percentages, three for probabilities and rates."""
    count = metric.startswith(("n_", "n", "mean_n", "sd_n", "events", "idp", "arms_evaluated", "responders"))
    return 1 if (count and not metric.startswith("p_")) or "month" in metric else 3


def _fig(section_id: str, title: str, fig, alt: str, caption: str, *intro: str) -> str:
    b64 = figures.png_base64(fig)
    return section(section_id, title, *intro, figure(f"{section_id}-figure", b64, alt, caption))


def _footer(manifest: dict, extra: list[tuple[str, object]]) -> str:
    import matplotlib

    versions = manifest.get("versions", {})
    rows: list[tuple[str, object]] = [
        ("platform-sim version", versions.get("platform_sim", "")),
        *extra,
        ("seed", manifest.get("seed")),
        ("simulated trials", manifest.get("n_sims")),
        ("chunk size", manifest.get("chunk_size")),
        ("workers", manifest.get("workers")),
        ("command line", manifest.get("command") or "none (made from Python)"),
        ("created (UTC)", manifest.get("created", "")),
        ("simulation time (s)", manifest.get("elapsed_seconds")),
    ]
    rows += [(f"{name} version", v) for name, v in versions.items() if name != "platform_sim"]
    rows.append(("figures drawn with", f"matplotlib {matplotlib.__version__}"))
    rows.append(("files", ", ".join(f for f in manifest.get("files", []) if f != REPORT_FILE)))
    rebuild = (
        "This page can be rebuilt with `platform-sim report DIR`, DIR being the directory that holds it."
        if manifest.get("files")
        else "The results were made from Python and not written to a directory; save them (Results.save(DIR)) to "
        "keep them, and `platform-sim report DIR` rebuilds this page from there."
    )
    return (
        f'<footer id="reproducibility">{heading(2, "Reproducibility")}'
        + para(
            "Everything needed to repeat the simulation, from the manifest written with the results. The same "
            "seed gives the same numbers with any chunk size and number of workers; the spec hash changes "
            "whenever a value that can change a result does. " + rebuild
        )
        + key_values([(k, v if isinstance(v, str) else ("" if v is None else fmt(v))) for k, v in rows])
        + "</footer>"
    )


def _mcse_note(n_sims: int) -> str:
    return (
        f"Every estimate is shown as value ± Monte Carlo standard error (MCSE) over {n_sims:,} simulated "
        "trials; quantities known exactly (the truth) have none."
    )


# --------------------------------------------------------------------------- run report


def _arm_block(arms: pd.DataFrame, control: int, names: Names) -> str:
    """Arms as columns, one row per metric (value ± MCSE), then the truth among all patients."""
    arm_names = list(arms.index)
    shown = [m for m in ARM_SHOWN if m in arms.columns]
    rows = []
    for m in shown:
        rows.append(
            [names.label(m)]
            + [
                "" if (k == control and m in CONTROL_BLANK) else pm(arms.at[a, m], arms.at[a, f"{m}_mcse"], _digits(m))
                for k, a in enumerate(arm_names)
            ]
        )
    rows.append(["true value"] + [fmt(v, 3) for v in arms["true_value"]])
    rows.append(["true effect"] + [fmt(v, 3) for v in arms["true_effect"]])
    rows.append(["truth"] + [names.label(r, "role") if r else "" for r in arms["role"]])
    header = ["metric"] + [f"{a} (control)" if k == control else a for k, a in enumerate(arm_names)]
    return table(header, rows, "Operating characteristics by arm (claimed: declared effective, in some subgroup)")


def _subgroup_block(sub: pd.DataFrame, names: Names) -> str:
    rows = []
    for (arm, subgroup), r in sub.iterrows():
        if r["role"] == "not in subgroup":
            continue
        claim = "" if r["role"] == "control" else pm(r.get("p_claimed"), r.get("p_claimed_mcse"))
        rows.append(
            [
                subgroup,
                fmt(r["share"], 3),
                arm,
                names.label(r["role"], "role"),
                claim,
                pm(r.get("mean_n"), r.get("mean_n_mcse"), 1),
                fmt(r["true_value"], 3),
                fmt(r["true_effect"], 3),
            ]
        )
    return table(
        [
            "subgroup",
            "share",
            "arm",
            "truth",
            names.label("p_claimed"),
            names.label("mean_n"),
            "true value",
            "true effect",
        ],
        rows,
        "Operating characteristics by arm and subgroup (P(claimed effective) is power where the arm works in "
        "the subgroup and a false-positive rate where it is null)",
    )


def _trial_block(trial: pd.DataFrame, names: Names) -> str:
    rows = [[names.label(m), m, pm(r.value, r.mcse, _digits(m))] for m, r in trial.iterrows() if np.isfinite(r.value)]
    return table(
        ["metric", "code", "value ± MCSE"], rows, "Operating characteristics of the trial", numeric=[False, False, True]
    )


def _analytic_block(spec: Spec, trial: pd.DataFrame, names: Names) -> str:
    """The family's analytic predictions beside the simulated values (empty when it makes none)."""
    rows = []
    for metric, words, value in spec.family.describe(spec.compiled).analytic:
        if metric in trial.index:
            names.add([metric])
            r = trial.loc[metric]
            d = _digits(metric) if metric.startswith("p_") else 2
            rows.append([words, metric, f"{value:.{d}f}", pm(r.value, r.mcse, d)])
    if not rows:
        return ""
    return table(
        ["quantity", "code", "analytic", "simulated ± MCSE"],
        rows,
        "Analytic plan beside simulation",
        numeric=[False, False, True, True],
    )


def _heatmap(truth, sub: pd.DataFrame):
    arms, subgroups = list(truth.arms), list(truth.subgroups)
    shape = (len(arms), len(subgroups))
    value, mcse = np.full(shape, math.nan), np.full(shape, math.nan)
    marks = np.full(shape, "", dtype=object)
    roles = {"works": "works", "null": "null", "grey zone": "grey", "control": "control"}
    for (arm, subgroup), r in sub.iterrows():
        i, j = arms.index(arm), subgroups.index(subgroup)
        marks[i, j] = roles.get(r["role"], "")
        if r["role"] in ("works", "null", "grey zone"):
            value[i, j], mcse[i, j] = r.get("p_claimed", math.nan), r.get("p_claimed_mcse", math.nan)
    return value, mcse, marks, arms, subgroups


def _convergence_values(values: dict[str, np.ndarray], wanted: list[str]) -> tuple[dict[str, np.ndarray], list[str]]:
    """The metrics worth a convergence panel, and those that are the same in every simulated trial."""
    out, constant = {}, []
    for name in wanted:
        if name in values:
            x = np.asarray(values[name], dtype=float)
            x_finite = x[np.isfinite(x)]
            if x_finite.size and np.ptp(x_finite) == 0:
                constant.append(name)
            elif x_finite.size:
                out[name] = x
    return out, constant


def _constant_note(constant: list[str], values: dict[str, np.ndarray], names: Names) -> str:
    if not constant:
        return ""
    shown = ", ".join(f"{names.short(k)} = {fmt(float(np.nanmax(values[k])), 3)}" for k in constant)
    return f" Not drawn, the same in every simulated trial: {shown}."


def _headline(trial: pd.DataFrame, names: Names) -> str:
    return bullets(
        f"{names.label(m)}: {pm(trial.at[m, 'value'], trial.at[m, 'mcse'], _digits(m))}"
        for m in HEADLINE
        if m in trial.index
    )


def allocation_figure(spec: Spec, results):
    """The allocation figure of a run and its caption: by look for designs with looks, by calendar
    period for platforms (whichever the results hold)."""
    d, extras = spec.design, results.extras
    if "alloc_history" in extras:
        fig = figures.allocation_by_look(
            extras["alloc_history"], extras["stop_look"], d.looks.randomized_n, list(d.arm_names), d.control
        )
        caption = (
            "Top: mean allocation probability of each arm after each look, over the trials that continue "
            "(a step holds until the next look; patients before the first look are allocated by the "
            "design's starting rule). Bottom: fraction of simulated trials that reached each look."
        )
    elif "n_period" in extras:
        width = float(extras["period_months"][0])
        fig = figures.allocation_by_period(
            extras["n_period"], extras["enrolment_end"], width, list(d.arm_names), d.control
        )
        caption = (
            f"Top: each arm's share of the patients randomized in each {width:g}-month calendar period, "
            "pooled over the simulated platforms (arms enter, fill up and leave, so the shares move). Bottom: "
            "fraction of simulated platforms still enrolling at the start of each period."
        )
    else:  # fixed allocation throughout (single-arm and event-driven designs): nothing to draw
        return None, ""
    return fig, caption


def stopping_figure(spec: Spec, results):
    """The stopping figure of a run, its caption and its title: why and when a trial with looks stopped,
    or each platform arm's final status."""
    d, extras = spec.design, results.extras
    if "stop_look" in extras and d.looks is not None:
        fig = figures.stopping_by_reason(
            results.stop_reason,
            extras["stop_look"],
            tuple(label(n, "stop") for n in results.stop_names),
            d.looks.randomized_n,
        )
        caption = (
            "Left: why the trial stopped ("
            + "; ".join(f"{_term(n, 'stop').label}: {_term(n, 'stop').meaning}" for n in results.stop_names)
            + "), with ± 2 MCSE error bars. Right: the look at which it stopped."
        )
        return fig, caption, "Stopping reasons"
    from ..results import STATUS_NAMES

    fig = figures.platform_status(results.status, STATUS_NAMES, list(d.arm_names), d.control)
    caption = (
        "Final status of each experimental arm as a fraction of the simulated trials: "
        + "; ".join(f"{_term(n, 'status').label}: {_term(n, 'status').meaning}" for n in STATUS_NAMES if n != "control")
        + "."
    )
    return fig, caption, "Arm decisions"


def claims_figure(truth, sub: pd.DataFrame, ax=None):
    """The claim rate per arm x subgroup (``sub``: :func:`platform_sim.oc.subgroup_table`) with the truth."""
    value, mcse, marks, rows_, cols_ = _heatmap(truth, sub)
    return figures.declared_heatmap(
        value, mcse, marks, rows_, cols_, label("p_claimed"), "Claims by arm and subgroup", ax=ax
    )


def run_page(rd: RunDir, template: str | Path | None = None) -> str:
    """The report of one design on one scenario (the same sections for every kind of design)."""
    from .. import oc

    spec, results, manifest = rd.spec, rd.results, rd.manifest
    d, s = spec.design, spec.scenario
    truth = spec.truth
    n_sims = results.n_trials
    title = f"Operating characteristics: {d.name} on {s.name}"
    subtitle = (
        f"{spec.family.title}; {n_sims:,} simulated trials, seed {manifest.get('seed')}, spec hash "
        f"{spec.spec_hash}; created {manifest.get('created', '')}"
    )
    body, nav = [], []

    def add(section_id: str, nav_title: str, html_: str) -> None:
        body.append(html_)
        nav.append((section_id, nav_title))

    tidy = oc.frame(oc.summarize(results, truth))
    arms = oc.arm_table(tidy, truth)
    trial = oc.trial_table(tidy)
    sub = oc.subgroup_table(tidy, truth)
    per_trial = oc.trial_values(results, truth)
    names = Names()
    add("summary", "Summary", section("summary", "Summary", para(_mcse_note(n_sims)), _headline(trial, names)))
    add("design", "Design", section("design", f"Design: {d.name}", describe_design(spec)))
    add("scenario", "Scenario", section("scenario", f"Scenario: {s.name}", describe_scenario(spec)))
    add("truth", "Truth", section("truth", "The truth in this scenario", truth_tables(spec)))
    blocks = [para(_mcse_note(n_sims)), _arm_block(arms, truth.control, names)]
    if len(truth.subgroups) > 1:
        blocks.append(_subgroup_block(sub, names))
    blocks.append(_trial_block(trial, names))
    analytic = _analytic_block(spec, trial, names)
    if analytic:
        blocks.append(analytic)
    add("oc-tables", "Operating characteristics", section("oc-tables", "Operating characteristics", *blocks))

    # 1. allocation: by look, or by calendar period, whichever the results hold
    fig, caption = allocation_figure(spec, results)
    if fig is not None:
        add(
            "fig-allocation",
            "Allocation",
            _fig(
                "fig-allocation",
                "Allocation over the course of the trial",
                fig,
                "Allocation share per arm over the course of the trial",
                caption,
            ),
        )

    # 2. sample size and duration
    fig = figures.sample_size_and_duration(results.n_randomized, results.duration_months)
    add(
        "fig-sample-size",
        "Sample size and duration",
        _fig(
            "fig-sample-size",
            "Sample size and duration",
            fig,
            "Histograms of the total sample size and of the calendar duration",
            "Distribution over the simulated trials of the patients randomized and of the calendar duration "
            "(months from the opening to the last analysis). Dashed line: mean; dotted: median.",
        ),
    )

    # 3. stopping and decisions
    fig, caption, what = stopping_figure(spec, results)
    add("fig-stopping", "Stopping", _fig("fig-stopping", what, fig, "Bar chart of stopping reasons", caption))

    # 4. claims by arm x subgroup
    fig = claims_figure(truth, sub)
    add(
        "fig-heatmap",
        "Power and false positives",
        _fig(
            "fig-heatmap",
            "Power and false-positive rate",
            fig,
            "Heat map of the claim rate by arm and subgroup",
            "The rate at which each arm is claimed effective in each subgroup (value ± MCSE). Outlined cells: the "
            "arm truly works there, so the rate is power; hatched cells: the arm is truly null there, so the rate "
            "is a false-positive rate; other cells are in the grey zone. Blank cells: the control, or an arm that "
            "does not randomize there.",
        ),
    )

    # 5. convergence
    conv, constant = _convergence_values(per_trial, CONVERGENCE)
    fig = figures.convergence(conv, {k: names.short(k) for k in conv}, PROBABILITIES)
    add(
        "fig-convergence",
        "Convergence",
        _fig(
            "fig-convergence",
            "Monte Carlo convergence",
            fig,
            "Running means of the key metrics against the number of simulated trials",
            "Running mean of each key metric against the number of simulated trials, with a ± 2 MCSE band (running "
            "standard error); the first trials (at most 5%) are not drawn. A band still wide at the right end "
            "calls for more simulated trials. "
            + " ".join(f"{names.short(k)}: {_term(k).meaning}." for k in conv)
            + _constant_note(constant, per_trial, names),
        ),
    )

    # the glossary: every name shown above, then every other name of oc.csv (its metrics, columns and levels)
    names.add(results.stop_names, "stop")
    if "stop_look" not in results.extras or d.looks is None:
        from ..results import STATUS_NAMES

        names.add([n for n in STATUS_NAMES if n != "control"], "status")
    names.add(dict.fromkeys(tidy["metric"]))
    names.add(OC_COLUMNS, "column")
    names.add(dict.fromkeys(tidy["level"]), "level")
    add(
        "glossary",
        "Glossary",
        section(
            "glossary",
            "Glossary: the names on this page and in oc.csv",
            para(
                "Each code name the tables show (column code), and each name of oc.csv, with the words this page uses "
                "for it and its definition. The settings tables of the design and the scenario show the keys of their "
                "files as written there; see the configuration reference for those."
            ),
            names.glossary(),
        ),
    )
    footer = _footer(
        manifest,
        [
            ("design", f"{d.name} ({_origin(manifest, 'design')})"),
            ("scenario", f"{s.name} ({_origin(manifest, 'scenario')})"),
            ("spec hash", spec.spec_hash),
        ],
    )
    nav.append(("reproducibility", "Reproducibility"))
    return page(title, subtitle, nav, body, footer, template)


def _term(code: str, kind: str = "metric") -> Term:
    """The glossary's term for ``code``, or the code itself with no definition (the page's glossary then
    shows the gap, and the tests catch it)."""
    return term(code, kind) or Term(code, "")


def _origin(manifest: dict, kind: str) -> str:
    """Where the run's design or scenario came from, as the manifest names it (never an absolute path)."""
    source = (manifest.get(kind) or {}).get("file")
    copy = f"copy: {kind}.yaml; " if f"{kind}.yaml" in manifest.get("files", []) else ""
    return f"{copy}loaded from {source}" if source else f"{copy}made in memory"


def write_run_report(path: str | Path, spec: Spec, results, manifest: dict, template: str | Path | None = None) -> Path:
    """Write the report of ``results`` (a :class:`~platform_sim.results.TrialResults` of ``spec``) held
    in memory to the HTML file ``path``, with ``manifest`` (see
    :func:`platform_sim.rundir.run_manifest`) in its reproducibility footer; return the path."""
    path = Path(path)
    text = run_page(RunDir(path.parent, spec, results, manifest, {}), template)
    atomic_write(path, lambda p: p.write_text(text, encoding="utf-8"))
    return path


# --------------------------------------------------------------------------- compare report


@dataclass
class CompareDir:
    """A ``compare --out`` directory read back."""

    path: Path
    manifest: dict
    table: pd.DataFrame  # comparison.csv
    specs: dict[tuple[str, str], Spec]  # (design name, scenario name) -> spec from the copies


def load_compare(run_dir: Path) -> CompareDir:
    run_dir = Path(run_dir)
    manifest = read_manifest(run_dir)
    if run_kind(manifest) != "compare":
        raise ConfigError(
            [Problem(MANIFEST_FILE, "this is a run directory, not a compare directory", file=str(run_dir))]
        )
    pairs = manifest.get("pairs")
    if not pairs:
        raise ConfigError(
            [
                Problem(
                    MANIFEST_FILE,
                    "lists no design x scenario pairs: the directory was written "
                    "without the design and scenario copies a report needs (run compare again "
                    "with --out)",
                    file=str(run_dir),
                )
            ]
        )
    if not (run_dir / COMPARISON_FILE).is_file():
        raise ConfigError([Problem(COMPARISON_FILE, "missing from the compare directory", file=str(run_dir))])
    numeric = ["value", "mcse", "lower", "upper", "n", "diff_vs_reference", "diff_se", "diff_lower", "diff_upper"]
    table_ = pd.read_csv(
        run_dir / COMPARISON_FILE,
        keep_default_na=False,
        na_values={c: [""] for c in numeric},
        dtype={
            "design": str,
            "scenario": str,
            "level": str,
            "arm": str,
            "treatment": str,
            "subgroup": str,
            "role": str,
            "metric": str,
        }
        | {c: float for c in numeric},
    )
    specs = {}
    problems = []
    for pair in pairs:
        try:
            spec = load_spec_copy(run_dir, pair["design_file"], pair["scenario_file"], pair.get("spec_hash"))
        except ConfigError as exc:
            problems.extend(exc.problems)
            continue
        specs[spec.design.name, spec.scenario.name] = spec
    if problems:
        raise ConfigError(problems)
    return CompareDir(run_dir, manifest, table_, specs)


def _compare_footer(m: dict) -> str:
    return _footer(
        m,
        [
            ("designs", ", ".join(m.get("designs", []))),
            ("scenarios", ", ".join(m.get("scenarios", []))),
            ("reference design", m.get("reference", "")),
            (
                "null scenario, target FWER",
                f"{m.get('null_scenario')}, {m.get('target_fwer')}" if m.get("null_scenario") else "not calibrated",
            ),
            ("sized alike", m.get("equal", "none")),
            (
                "spec hashes",
                "; ".join(
                    f"{p['design_file']} × {p['scenario_file']}: {p.get('spec_hash', '')}" for p in m.get("pairs", [])
                ),
            ),
        ],
    )


def compare_page(cd: CompareDir, template: str | Path | None = None) -> str:
    """The decision report of a comparison of designs over scenarios (:mod:`platform_sim.report.decision`)."""
    from .decision import decision_page, read_tables

    return decision_page(cd.manifest, read_tables(cd.path, cd.table), cd.specs, _compare_footer(cd.manifest), template)


def comparison_manifest(comparison, **fields) -> dict:
    """The manifest of a :class:`~platform_sim.compare.Comparison` held in memory: what
    ``compare --out`` records, with the designs and scenarios by name (they were not copied into a
    directory), :func:`~platform_sim.rundir.versions` and ``fields`` (workers, elapsed_seconds...)."""
    from datetime import UTC, datetime

    from ..config import spec_hash
    from ..rundir import versions

    t = comparison.table
    designs, scenarios = list(dict.fromkeys(t["design"])), list(dict.fromkeys(t["scenario"]))
    pairs = [
        {
            "design": d,
            "scenario": s,
            "design_file": d,
            "scenario_file": s,
            "spec_hash": spec_hash(comparison.designs[d], comparison.scenarios[s]),
        }
        for s in scenarios
        for d in designs
        if d in comparison.designs and s in comparison.scenarios
    ]
    return {
        "kind": "compare",
        "complete": True,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": None,
        "designs": designs,
        "scenarios": scenarios,
        "reference": comparison.reference,
        "null_scenario": comparison.null_scenario,
        "target_fwer": comparison.target_fwer,
        "equal": comparison.equal,
        "seed": comparison.seed,
        "n_sims": comparison.n_sims,
        "versions": versions(),
        "files": [],
        "pairs": pairs,
        **fields,
    }


def comparison_tables(comparison):
    """The tables of a :class:`~platform_sim.compare.Comparison` as the decision report reads them (what
    ``compare --out`` writes as CSV files)."""
    from ..compare import winners
    from .decision import CompareTables

    return CompareTables(
        comparison.table,
        winners(comparison),
        comparison.truth,
        comparison.calibration,
        comparison.frontier,
        comparison.sizing,
    )


def write_compare_report(
    path: str | Path, comparison, manifest: dict | None = None, template: str | Path | None = None
) -> Path:
    """Write the decision report of a :class:`~platform_sim.compare.Comparison` held in memory to the
    HTML file ``path`` (``manifest``: :func:`comparison_manifest` by default); return the path."""
    from ..spec import Spec
    from .decision import decision_page

    path = Path(path)
    manifest = comparison_manifest(comparison) if manifest is None else manifest
    # the page describes each design (with a scenario) and each scenario (with a design) once
    designs, scenarios = comparison.designs, {s: comparison.scenarios[s] for s in manifest["scenarios"]}
    first_design, first_scenario = next(iter(designs)), next(iter(scenarios))
    pairs = [(d, first_scenario) for d in designs] + [(first_design, s) for s in scenarios]
    specs = {(d, s): Spec.from_models(designs[d], scenarios[s]) for d, s in dict.fromkeys(pairs)}
    text = decision_page(manifest, comparison_tables(comparison), specs, _compare_footer(manifest), template)
    atomic_write(path, lambda p: p.write_text(text, encoding="utf-8"))
    return path


__all__ = [
    "REPORT_FILE",
    "CompareDir",
    "allocation_figure",
    "build_report",
    "claims_figure",
    "stopping_figure",
    "compare_page",
    "comparison_manifest",
    "comparison_tables",
    "load_compare",
    "run_page",
    "write_compare_report",
    "write_run_report",
]
