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
SHORT_LABELS = {  # panel titles of the convergence and comparison figures
    "p_any_claim": "P(any claim)",
    "power": "power",
    "fwer": "FWER (any false claim)",
    "p_correct_finding": "P(correct finding)",
    "n_randomized": "patients randomized",
    "duration_months": "duration (months)",
}
PROBABILITIES = {"p_any_claim", "power", "fwer", "p_correct_finding"}
COMPARISON_METRICS = ["p_any_claim", "power", "fwer", "p_correct_finding", "n_randomized", "duration_months"]
HEADLINE = {"P(any arm claimed effective)": "p_any_claim", "power": "power", "FWER": "fwer",
            "mean patients randomized": "mean_n_randomized", "mean duration (months)": "duration_months"}
ARM_SHOWN = ["p_claimed", "p_dropped", "p_equivalent", "p_entered", "mean_n", "alloc_share", "events",
             "entered_month", "months_to_decision", "p_reject_concurrent", "p_reject_all"]
CONTROL_BLANK = {"p_claimed", "p_entered", "entered_month", "months_to_decision", "p_reject_concurrent", "p_reject_all"}
ARM_LABELS = {"p_claimed": "P(claimed effective)", "p_dropped": "P(dropped)", "p_equivalent": "P(dropped, equivalent)",
              "p_entered": "P(entered)", "mean_n": "mean patients", "alloc_share": "allocation share",
              "events": "mean events", "entered_month": "month entered", "months_to_decision": "months to decision",
              "p_reject_concurrent": "P(final test rejects), concurrent controls",
              "p_reject_all": "P(final test rejects), all controls"}
TRIAL_LABELS = {"p_any_claim": "P(any claim)", "fwer": "FWER", "power": "power",
                "p_correct_finding": "P(correct finding)", "mean_n_randomized": "mean patients randomized",
                "n_screened": "mean patients screened", "duration_months": "mean duration (months)",
                "months_to_first_claim": "months to the first claim"}


def build_report(run_dir: str | Path) -> Path:
    """Write ``run_dir/report.html`` for a ``run --out`` or ``compare --out`` directory (detected from
    its ``manifest.json``) and return its path. Problems with the directory raise ConfigError."""
    run_dir = Path(run_dir)
    manifest = read_manifest(run_dir)
    if run_kind(manifest) == "run":
        text = run_page(load_run(run_dir))
    else:
        text = compare_page(load_compare(run_dir))
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
        ("platform_sim version", versions.get("platform_sim", "")),
        *extra,
        ("seed", manifest.get("seed")),
        ("simulated trials", manifest.get("n_sims")),
        ("chunk size", manifest.get("chunk_size")),
        ("workers", manifest.get("workers")),
        ("command line", manifest.get("command", "")),
        ("created (UTC)", manifest.get("created", "")),
        ("simulation time (s)", manifest.get("elapsed_seconds")),
    ]
    rows += [(f"{name} version", v) for name, v in versions.items() if name != "platform_sim"]
    rows.append(("figures drawn with", f"matplotlib {matplotlib.__version__}"))
    rows.append(("files", ", ".join(f for f in manifest.get("files", []) if f != REPORT_FILE)))
    return (f'<footer id="reproducibility">{heading(2, "Reproducibility")}'
            + para("Everything needed to repeat the simulation, from the manifest written with the results. The same "
                   "seed gives the same numbers with any chunk size and number of workers; the spec hash changes "
                   "whenever a value that can change a result does. This page can be rebuilt with "
                   "`platform-sim report DIR`, DIR being the directory that holds it.")
            + key_values([(k, v if isinstance(v, str) else ("" if v is None else fmt(v))) for k, v in rows])
            + "</footer>")


def _mcse_note(n_sims: int) -> str:
    return (f"Every estimate is shown as value ± Monte Carlo standard error (MCSE) over {n_sims:,} simulated "
            "trials; quantities known exactly (the truth) have none.")


# --------------------------------------------------------------------------- run report


def _arm_block(arms: pd.DataFrame, control: int) -> str:
    """Arms as columns, one row per metric (value ± MCSE), then the truth among all patients."""
    names = list(arms.index)
    shown = [m for m in ARM_SHOWN if m in arms.columns]
    rows = []
    for m in shown:
        rows.append([ARM_LABELS.get(m, m)] + ["" if (k == control and m in CONTROL_BLANK) else
                                             pm(arms.at[a, m], arms.at[a, f"{m}_mcse"], _digits(m))
                                             for k, a in enumerate(names)])
    rows.append(["true value"] + [fmt(v, 3) for v in arms["true_value"]])
    rows.append(["true effect"] + [fmt(v, 3) for v in arms["true_effect"]])
    rows.append(["truth"] + list(arms["role"]))
    header = ["metric"] + [f"{a} (control)" if k == control else a for k, a in enumerate(names)]
    return table(header, rows, "Operating characteristics by arm (claimed: declared effective, in some subgroup)")


def _subgroup_block(sub: pd.DataFrame) -> str:
    rows = []
    for (arm, subgroup), r in sub.iterrows():
        if r["role"] == "not in subgroup":
            continue
        claim = "" if r["role"] == "control" else pm(r.get("p_claimed"), r.get("p_claimed_mcse"))
        rows.append([subgroup, fmt(r["share"], 3), arm, r["role"], claim, pm(r.get("mean_n"), r.get("mean_n_mcse"), 1),
                     fmt(r["true_value"], 3), fmt(r["true_effect"], 3)])
    return table(["subgroup", "share", "arm", "truth", "P(claimed effective)", "mean patients", "true value",
                  "true effect"], rows,
                 "Operating characteristics by arm and subgroup (P(claimed effective) is power where the arm works in "
                 "the subgroup and a false-positive rate where it is null)")


def _trial_block(trial: pd.DataFrame) -> str:
    rows = [[TRIAL_LABELS.get(m, m), m, pm(r.value, r.mcse, _digits(m))] for m, r in trial.iterrows()
            if np.isfinite(r.value)]
    return table(["metric", "code", "value ± MCSE"], rows, "Operating characteristics of the trial",
                 numeric=[False, False, True])


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


def _constant_note(constant: list[str], values: dict[str, np.ndarray]) -> str:
    if not constant:
        return ""
    shown = ", ".join(f"{SHORT_LABELS.get(k, k)} = {fmt(float(np.nanmax(values[k])), 3)}" for k in constant)
    return f" Not drawn, the same in every simulated trial: {shown}."


def _headline(headline: dict) -> str:
    return bullets(f"{label}: {pm(v, se, d)}" for label, (v, se, d) in headline.items())


def run_page(rd: RunDir) -> str:
    """The report of one design on one scenario (the same sections for every kind of design)."""
    from .. import oc

    spec, results, manifest = rd.spec, rd.results, rd.manifest
    d, s = spec.design, spec.scenario
    truth = spec.truth
    n_sims = results.n_trials
    title = f"Operating characteristics: {d.name} on {s.name}"
    subtitle = (f"{spec.family.title}; {n_sims:,} simulated trials, seed {manifest.get('seed')}, spec hash "
                f"{spec.spec_hash}; created {manifest.get('created', '')}")
    control = d.control
    body, nav = [], []

    def add(section_id: str, nav_title: str, html_: str) -> None:
        body.append(html_)
        nav.append((section_id, nav_title))

    tidy = oc.frame(oc.summarize(results, truth))
    arms = oc.arm_table(tidy, truth)
    trial = oc.trial_table(tidy)
    sub = oc.subgroup_table(tidy, truth)
    per_trial = oc.trial_values(results, truth)
    headline = {label: (trial.at[m, "value"], trial.at[m, "mcse"], _digits(m)) for label, m in HEADLINE.items()
                if m in trial.index}
    add("summary", "Summary", section("summary", "Summary", para(_mcse_note(n_sims)), _headline(headline)))
    add("design", "Design", section("design", f"Design: {d.name}", describe_design(spec)))
    add("scenario", "Scenario", section("scenario", f"Scenario: {s.name}", describe_scenario(spec)))
    add("truth", "Truth", section("truth", "The truth in this scenario", truth_tables(spec)))
    blocks = [para(_mcse_note(n_sims)), _arm_block(arms, truth.control)]
    if len(truth.subgroups) > 1:
        blocks.append(_subgroup_block(sub))
    blocks.append(_trial_block(trial))
    add("oc-tables", "Operating characteristics", section("oc-tables", "Operating characteristics", *blocks))

    # 1. allocation: by look, or by calendar period, whichever the results hold
    extras = results.extras
    if "alloc_history" in extras:
        fig = figures.allocation_by_look(extras["alloc_history"], extras["stop_look"], d.looks.randomized_n,
                                         list(d.arm_names), control)
        caption = ("Top: mean allocation probability of each arm after each look, over the trials that continue "
                   "(a step holds until the next look; patients before the first look are allocated by the "
                   "design's starting rule). Bottom: fraction of simulated trials that reached each look.")
    else:
        width = float(extras["period_months"][0])
        fig = figures.allocation_by_period(extras["n_period"], extras["enrolment_end"], width, list(d.arm_names),
                                           control)
        caption = (f"Top: each arm's share of the patients randomized in each {width:g}-month calendar period, "
                   "pooled over the simulated platforms (arms enter, fill up and leave, so the shares move). Bottom: "
                   "fraction of simulated platforms still enrolling at the start of each period.")
    add("fig-allocation", "Allocation", _fig("fig-allocation", "Allocation over the course of the trial", fig,
                                             "Allocation share per arm over the course of the trial", caption))

    # 2. sample size and duration
    fig = figures.sample_size_and_duration(results.n_randomized, results.duration_months)
    add("fig-sample-size", "Sample size and duration",
        _fig("fig-sample-size", "Sample size and duration", fig,
             "Histograms of the total sample size and of the calendar duration",
             "Distribution over the simulated trials of the patients randomized and of the calendar duration "
             "(months from the opening to the last analysis). Dashed line: mean; dotted: median."))

    # 3. stopping and decisions
    if "stop_look" in extras:
        fig = figures.stopping_by_reason(results.stop_reason, extras["stop_look"], results.stop_names,
                                         d.looks.randomized_n)
        caption = ("Left: why the trial stopped (max: reached its last look; superiority; equivalence; arms_dropped: "
                   "every comparator of the control was dropped), with ± 2 MCSE error bars. Right: the look at "
                   "which it stopped.")
        what = "Stopping reasons"
    else:
        from ..results import STATUS_NAMES

        fig = figures.platform_status(results.status, STATUS_NAMES, list(d.arm_names), control)
        caption = ("Final status of each experimental arm as a fraction of the simulated trials: claimed effective "
                   "(graduated), dropped for futility, still undecided (active) at the end, or never entered.")
        what = "Arm decisions"
    add("fig-stopping", "Stopping", _fig("fig-stopping", what, fig, "Bar chart of stopping reasons", caption))

    # 4. claims by arm x subgroup
    value, mcse, marks, rows_, cols_ = _heatmap(truth, sub)
    fig = figures.declared_heatmap(value, mcse, marks, rows_, cols_, "P(claimed effective)",
                                   "Claims by arm and subgroup")
    add("fig-heatmap", "Power and false positives",
        _fig("fig-heatmap", "Power and false-positive rate", fig, "Heat map of the claim rate by arm and subgroup",
             "The rate at which each arm is claimed effective in each subgroup (value ± MCSE). Outlined cells: the "
             "arm truly works there, so the rate is power; hatched cells: the arm is truly null there, so the rate "
             "is a false-positive rate; other cells are in the grey zone. Blank cells: the control, or an arm that "
             "does not randomize there."))

    # 5. convergence
    from ..compare import TRIAL_METRICS

    conv, constant = _convergence_values(per_trial, CONVERGENCE)
    fig = figures.convergence(conv, SHORT_LABELS, PROBABILITIES)
    add("fig-convergence", "Convergence",
        _fig("fig-convergence", "Monte Carlo convergence", fig,
             "Running means of the key metrics against the number of simulated trials",
             "Running mean of each key metric against the number of simulated trials, with a ± 2 MCSE band (running "
             "standard error); the first trials (at most 5%) are not drawn. A band still wide at the right end "
             "calls for more simulated trials. "
             + " ".join(f"{SHORT_LABELS.get(k, k)}: {TRIAL_METRICS.get(k, k)}." for k in conv)
             + _constant_note(constant, per_trial)))

    footer = _footer(manifest, [
        ("design", f"{d.name} (copy: design.yaml; loaded from {manifest.get('design', {}).get('file', '')})"),
        ("scenario", f"{s.name} (copy: scenario.yaml; loaded from {manifest.get('scenario', {}).get('file', '')})"),
        ("spec hash", spec.spec_hash),
    ])
    nav.append(("reproducibility", "Reproducibility"))
    return page(title, subtitle, nav, body, footer)


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
        raise ConfigError([Problem(MANIFEST_FILE, "this is a run directory, not a compare directory",
                                   file=str(run_dir))])
    pairs = manifest.get("pairs")
    if not pairs:
        raise ConfigError([Problem(MANIFEST_FILE, "lists no design x scenario pairs: the directory was written "
                                   "without the design and scenario copies a report needs (run compare again "
                                   "with --out)", file=str(run_dir))])
    if not (run_dir / COMPARISON_FILE).is_file():
        raise ConfigError([Problem(COMPARISON_FILE, "missing from the compare directory", file=str(run_dir))])
    numeric = ["value", "mcse", "lower", "upper", "n", "diff_vs_reference", "diff_se", "diff_lower", "diff_upper"]
    table_ = pd.read_csv(run_dir / COMPARISON_FILE, keep_default_na=False, na_values={c: [""] for c in numeric},
                         dtype={"design": str, "scenario": str, "level": str, "arm": str, "treatment": str,
                                "subgroup": str, "role": str, "metric": str} | {c: float for c in numeric})
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


def _side_by_side(cd: CompareDir) -> str:
    import io

    from ..compare import Comparison, side_by_side

    comparison = Comparison(cd.table, cd.manifest.get("reference", ""), cd.manifest.get("n_sims"),
                            cd.manifest.get("seed"))
    frame = pd.read_csv(io.StringIO(side_by_side(comparison, "csv")), dtype=str, keep_default_na=False)
    return table(list(frame.columns), frame.itertuples(index=False, name=None),
                 f"Trial-level operating characteristics (value ± MCSE) and paired differences from the reference "
                 f"design {comparison.reference} (difference ± paired standard error)")


def _arm_level(cd: CompareDir, level: str) -> str:
    from ..compare import ARM_METRICS, CELL_METRICS

    t = cd.table[cd.table["level"] == level]
    if t.empty:
        return ""
    designs = list(dict.fromkeys(cd.table["design"]))
    reference = cd.manifest.get("reference", "")
    others = [d for d in designs if d != reference]
    keys = ["scenario", "treatment", "subgroup"] if level == "subgroup" else ["scenario", "arm"]
    parts = []
    for metric, meaning in (CELL_METRICS if level == "subgroup" else ARM_METRICS).items():
        m = t[t["metric"] == metric]
        rows = []
        for key, block in m.groupby(keys, sort=False):
            block = block.set_index("design")
            role = "/".join(dict.fromkeys(str(r) for r in block["role"] if r))
            row = list(key) + [role]
            row += [pm(block.at[d, "value"], block.at[d, "mcse"], _digits(metric)) if d in block.index else ""
                    for d in designs]
            row += [pm(block.at[d, "diff_vs_reference"], block.at[d, "diff_se"], _digits(metric))
                    if d in block.index else "" for d in others]
            rows.append(row)
        header = keys + ["truth"] + designs + [f"{d} − {reference}" for d in others]
        where = "treatment and subgroup" if level == "subgroup" else "arm"
        parts.append(table(header, rows, f"{metric} by {where}: {meaning}"))
    return "".join(parts)


def compare_page(cd: CompareDir) -> str:
    """The report of a comparison of designs over scenarios."""
    m = cd.manifest
    t = cd.table
    designs = list(dict.fromkeys(t["design"]))
    scenarios = list(dict.fromkeys(t["scenario"]))
    n_sims = int(m.get("n_sims", 0))
    title = f"Comparison of {len(designs)} designs on {len(scenarios)} scenarios"
    subtitle = (f"{n_sims:,} simulated trials per pair with common random numbers, seed {m.get('seed')}; reference "
                f"design {m.get('reference', '')}; created {m.get('created', '')}")
    body, nav = [], []

    def add(section_id: str, nav_title: str, html_: str) -> None:
        body.append(html_)
        nav.append((section_id, nav_title))

    first_spec = {d: next(sp for (dn, _), sp in cd.specs.items() if dn == d) for d in designs if
                  any(dn == d for dn, _ in cd.specs)}
    scen_spec = {sc: next(sp for (_, sn), sp in cd.specs.items() if sn == sc) for sc in scenarios if
                 any(sn == sc for _, sn in cd.specs)}
    add("summary", "Summary", section(
        "summary", "Summary",
        para(f"Designs: {', '.join(designs)}. Scenarios: {', '.join(scenarios)}. Every design ran on every scenario "
             "with the same seed, so the t-th simulated trial of every design enrols the same virtual patients; "
             "differences between designs are paired, with paired standard errors."),
        para(_mcse_note(n_sims))))
    add("design", "Designs", section("design", "Designs", *[
        heading(3, f"Design {name}") + describe_design(spec, level=4) for name, spec in first_spec.items()]))
    add("scenario", "Scenarios", section("scenario", "Scenarios", *[
        heading(3, f"Scenario {name}") + describe_scenario(spec) for name, spec in scen_spec.items()]))
    add("truth", "Truth", section("truth", "The truth in each scenario", *[
        heading(3, f"{dn} on {sn}") + truth_tables(spec) for (dn, sn), spec in cd.specs.items()]))
    add("oc-tables", "Operating characteristics", section(
        "oc-tables", "Operating characteristics", para(_mcse_note(n_sims)), _side_by_side(cd),
        _arm_level(cd, "arm"), _arm_level(cd, "subgroup")))
    trial = t[t["level"] == "trial"]
    shown = [x for x in COMPARISON_METRICS
             if np.isfinite(trial.loc[trial["metric"] == x, "value"].to_numpy(float)).any()]
    from ..compare import TRIAL_METRICS

    fig = figures.comparison_bars(t, shown, SHORT_LABELS)
    add("fig-comparison", "Comparison", _fig(
        "fig-comparison", "Designs side by side", fig, "Bar charts of the key metrics per design and scenario",
        "Each panel is one trial-level metric; bars are the designs, grouped by scenario; error bars are ± 2 Monte "
        "Carlo standard errors of each design's own estimate (the paired differences in the table above are more "
        "precise). NA: the metric does not apply (for example power in a scenario where no arm works). "
        + " ".join(f"{SHORT_LABELS.get(k, k)}: {TRIAL_METRICS.get(k, k)}." for k in shown)))
    footer = _footer(m, [
        ("designs", ", ".join(m.get("designs", []))),
        ("scenarios", ", ".join(m.get("scenarios", []))),
        ("reference design", m.get("reference", "")),
        ("spec hashes", "; ".join(f"{p['design_file']} × {p['scenario_file']}: {p.get('spec_hash', '')}"
                                  for p in m.get("pairs", []))),
    ])
    nav.append(("reproducibility", "Reproducibility"))
    return page(title, subtitle, nav, body, footer)


__all__ = ["REPORT_FILE", "CompareDir", "build_report", "compare_page", "load_compare", "run_page"]
