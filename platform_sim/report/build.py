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

import numpy as np
import pandas as pd

from ..config import ConfigError, Spec
from ..config.crosscheck import Problem
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

COMPARISON_FILE = "comparison.csv"

# trial-level metrics shown in the convergence plots, in order of preference (at most six)
LOOK_CONVERGENCE = ["p_any_effective", "power", "fwer", "p_correct_finding", "n_randomized", "duration_months"]
PLATFORM_CONVERGENCE = ["p_any_graduation", "power", "fwer", "share_on_working_arms", "n_randomized",
                        "duration_months"]
SHORT_LABELS = {  # panel titles of the convergence and comparison figures
    "p_any_effective": "P(any arm declared effective)",
    "p_any_graduation": "P(any arm graduated)",
    "power": "power",
    "fwer": "FWER (any false positive)",
    "p_correct_finding": "P(every arm judged correctly)",
    "share_on_working_arms": "share of patients on working arms",
    "n_randomized": "patients randomized",
    "duration_months": "duration (months)",
}
PROBABILITIES = {"p_any_effective", "p_any_graduation", "power", "fwer", "p_correct_finding", "share_on_working_arms"}
PLATFORM_MEANINGS = {
    "p_any_graduation": "at least one arm graduated",
    "power": "at least one arm graduated in a signature where it works",
    "fwer": "at least one arm graduated in a signature where it is null",
    "share_on_working_arms": "share of the experimental arms' patients on arms that work in their stratum",
    "n_randomized": "patients randomized",
    "duration_months": "months from the opening to the last decision",
}
COMPARISON_METRICS = ["p_any_effective", "power", "fwer", "p_correct_finding", "n_randomized", "duration_months"]


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
    count = metric.startswith(("n_", "mean_n", "sd_n", "mean_responders", "idp", "arms_evaluated", "responders"))
    return 1 if count or "month" in metric else 3


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
                   "seed and chunk size give the same numbers with any number of workers; the spec hash changes "
                   "whenever a value that can change a result does. This page can be rebuilt with "
                   "`platform-sim report DIR`, DIR being the directory that holds it.")
            + key_values([(k, v if isinstance(v, str) else ("" if v is None else fmt(v))) for k, v in rows])
            + "</footer>")


def _mcse_note(n_sims: int) -> str:
    return (f"Every estimate is shown as value ± Monte Carlo standard error (MCSE) over {n_sims:,} simulated "
            "trials; quantities known exactly (the truth) have none.")


# --------------------------------------------------------------------------- run report


def _arm_block(table_: pd.DataFrame, truth_cols: dict[str, str], caption: str) -> str:
    """Arms as columns, one row per metric with an MCSE (value ± MCSE), then the truth rows."""
    cols = list(table_.columns)
    valued = [c for c in cols if f"{c}_mcse" in cols]
    header = ["metric"] + [str(a) for a in table_.index]
    rows = [[m] + [pm(table_.at[a, m], table_.at[a, f"{m}_mcse"], _digits(m)) for a in table_.index] for m in valued]
    for col, label in truth_cols.items():
        if col in cols:
            rows.append([label] + [fmt(table_.at[a, col], 3) for a in table_.index])
    return table(header, rows, caption)


def _trial_block(values: dict[str, tuple[float, float]], caption: str) -> str:
    rows = [[m, pm(v, se, _digits(m))] for m, (v, se) in values.items()]
    return table(["metric", "value ± MCSE"], rows, caption, numeric=[False, True])


def _look_oc(spec: Spec, results) -> tuple[str, dict]:
    from .. import metrics

    arms = metrics.arm_table(results, spec)
    trial = metrics.trial_table(results, spec).iloc[0]
    c = spec.design.control
    arms = arms.copy()
    arms["truth"] = ["control" if a == c else "effective" if r.truly_better else "null" if r.truly_null
                     else "grey zone" for a, r in arms.iterrows()]
    parts = [_arm_block(arms.drop(columns=["truly_better", "truly_null"]),
                        {"true_rate": "true rate", "improvement": "true improvement", "truth": "truth"},
                        "Operating characteristics by arm (p_superior: declared effective at some look)")]
    trial_values = {m: (trial[m], trial.get(f"{m}_mcse", math.nan)) for m in trial.index
                    if not m.endswith("_mcse") and m != "n_trials"}
    parts.append(_trial_block(trial_values, "Operating characteristics of the trial"))
    if results.strata is not None:
        st = metrics.stratum_table(results, spec)
        st = st[st["eligible"]]
        rows = [[stratum, arm, fmt(r.prevalence, 3), r.role,
                 pm(r.p_declared_effective, r.p_declared_effective_mcse) if r.role != "control" else "",
                 pm(r.p_dropped, r.p_dropped_mcse), pm(r.mean_n, r.mean_n_mcse, 1), fmt(r.true_rate, 3),
                 fmt(r.reference, 3)] for (stratum, arm), r in st.iterrows()]
        parts.append(table(["stratum", "arm", "share", "truth", "P(declared effective)", "P(dropped)", "mean n",
                            "true rate", "reference rate"], rows,
                           "Operating characteristics by arm and stratum (P(declared effective) is power where the "
                           "arm works in the stratum and a false-positive rate where it is null)"))
    key = {"P(any arm declared effective)": "p_any_superior", "power": "power", "FWER": "fwer",
           "mean patients randomized": "mean_n_total", "mean duration (months)": "mean_duration_months"}
    headline = {label: (trial[m], trial[f"{m}_mcse"], _digits(m)) for label, m in key.items() if m in trial.index}
    return "".join(parts), headline


def _look_heatmap(spec: Spec, results):
    from .. import metrics

    names = spec.design.arm_names
    c = spec.design.control
    if results.strata is None:
        arms = metrics.arm_table(results, spec)
        value = np.array([[math.nan if a == c else arms.at[a, "p_superior"]] for a in names])
        mcse = np.array([[math.nan if a == c else arms.at[a, "p_superior_mcse"]] for a in names])
        truth = np.array([["control" if a == c else "works" if arms.at[a, "truly_better"] else
                           "null" if arms.at[a, "truly_null"] else "grey"] for a in names], dtype=object)
        return value, mcse, truth, names, ["all patients"]
    st = metrics.stratum_table(results, spec)
    strata = list(results.strata.names)
    shape = (len(names), len(strata))
    value, mcse = np.full(shape, math.nan), np.full(shape, math.nan)
    truth = np.full(shape, "", dtype=object)
    roles = {"better": "works", "null": "null", "grey zone": "grey", "control": "control"}
    for (stratum, arm), r in st.iterrows():
        i, j = names.index(arm), strata.index(stratum)
        truth[i, j] = roles.get(r.role, "")
        if r.role in ("better", "null", "grey zone"):
            value[i, j], mcse[i, j] = r.p_declared_effective, r.p_declared_effective_mcse
    return value, mcse, truth, names, strata


def _platform_oc(spec: Spec, results) -> tuple[str, dict, pd.DataFrame, dict]:
    from .. import platform_metrics

    arms = platform_metrics.arm_table(results, spec)
    arms = arms.copy()
    arms["truth"] = ["works" if r.works else "null" if r.null else "grey zone" for _, r in arms.iterrows()]
    parts = [_arm_block(arms.drop(columns=["works", "null"]),
                        {"true_effect": "true effect", "truth": "truth"},
                        "Operating characteristics by experimental arm (effects: log hazard ratio or rate "
                        "difference vs the control)")]
    sig = platform_metrics.signature_table(results, spec)
    rows = [[arm, signature, fmt(r.share, 3), fmt(r.effect, 3), "works" if r.works else "null" if r.null
             else "grey zone", pm(r.p_graduated, r.p_graduated_mcse)] for (arm, signature), r in sig.iterrows()]
    parts.append(table(["arm", "signature", "share", "true effect", "truth", "P(graduated)"], rows,
                       "Graduation by arm and signature (power where the arm works, false-positive rate where "
                       "it is null)"))
    values = platform_metrics.trial_values(results, spec)
    trial = _platform_trial_values(values)
    parts.append(_trial_block(trial, "Operating characteristics of the platform"))
    key = {"P(any arm graduated)": "p_any_graduation", "power": "power", "FWER": "fwer",
           "mean patients randomized": "n_randomized", "mean duration (months)": "duration_months"}
    headline = {label: (*trial[m], _digits(m)) for label, m in key.items() if m in trial}
    return "".join(parts), headline, sig, values


def _platform_trial_values(values: dict[str, np.ndarray]) -> dict[str, tuple[float, float]]:
    """The platform trial table (as platform_metrics.trial_table computes it) from per-trial values
    already at hand: proportions for yes/no values, means over the finite values otherwise."""
    from ..metrics import _mean, _proportion

    out = {}
    for name, x in values.items():
        x = np.asarray(x)
        if x.dtype == bool:
            out[name] = _proportion(x)
        elif np.isnan(x.astype(float)).all():
            out[name] = (math.nan, math.nan)
        else:
            out[name] = _mean(x)
    return out


def _platform_heatmap(spec: Spec, sig: pd.DataFrame):
    arms = list(dict.fromkeys(a for a, _ in sig.index))
    signatures = list(dict.fromkeys(s for _, s in sig.index))
    shape = (len(arms), len(signatures))
    value, mcse = np.full(shape, math.nan), np.full(shape, math.nan)
    truth = np.full(shape, "", dtype=object)
    for (arm, s), r in sig.iterrows():
        i, j = arms.index(arm), signatures.index(s)
        value[i, j], mcse[i, j] = r.p_graduated, r.p_graduated_mcse
        truth[i, j] = "works" if r.works else "null" if r.null else "grey"
    return value, mcse, truth, arms, signatures


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
    """The report of one design on one scenario."""
    from .. import compare

    spec, results, manifest = rd.spec, rd.results, rd.manifest
    d, s = spec.design, spec.scenario
    platform = d.platform is not None
    stratified = spec.strata is not None
    n_sims = results.n_trials
    kind = ("platform over calendar time" if platform else
            "stratified design with looks" if stratified else "design with looks")
    title = f"Operating characteristics: {d.name} on {s.name}"
    subtitle = (f"{kind}; {n_sims:,} simulated trials, seed {manifest.get('seed')}, spec hash {spec.spec_hash}; "
                f"created {manifest.get('created', '')}")
    control = d.control
    body, nav = [], []

    def add(section_id: str, nav_title: str, html_: str) -> None:
        body.append(html_)
        nav.append((section_id, nav_title))

    if platform:
        oc_html, headline, sig, per_trial = _platform_oc(spec, results)
    else:
        oc_html, headline = _look_oc(spec, results)
        per_trial = compare._per_trial(results, spec)

    add("summary", "Summary", section("summary", "Summary", para(_mcse_note(n_sims)), _headline(headline)))
    add("design", "Design", section("design", f"Design: {d.name}", describe_design(spec)))
    add("scenario", "Scenario", section("scenario", f"Scenario: {s.name}", describe_scenario(spec)))
    add("truth", "Truth", section("truth", "The truth in this scenario",
                                  truth_tables(spec, sig.reset_index() if platform else None)))
    add("oc-tables", "Operating characteristics",
        section("oc-tables", "Operating characteristics", para(_mcse_note(n_sims)), oc_html))

    # 1. allocation
    if platform:
        from ..timeline import PERIOD_MONTHS

        fig = figures.allocation_by_period(results.n_period, results.enrolment_end, PERIOD_MONTHS, d.arm_names,
                                           control)
        caption = (f"Top: each arm's share of the patients randomized in each {PERIOD_MONTHS:g}-month calendar period, "
                   "pooled over the simulated platforms (arms enter, fill up and leave, so the shares move). Bottom: "
                   "fraction of simulated platforms still enrolling at the start of each period.")
    else:
        fig = figures.allocation_by_look(results.alloc_history, results.stop_look, d.looks.randomized_n, d.arm_names,
                                         control)
        caption = ("Top: mean allocation probability of each arm after each look, over the trials that continue "
                   "(a step holds until the next look; patients before the first look are allocated by the "
                   "design's starting rule). Bottom: fraction of simulated trials that reached each look.")
    add("fig-allocation", "Allocation", _fig("fig-allocation", "Allocation over the course of the trial", fig,
                                             "Allocation share per arm over the course of the trial", caption))

    # 2. sample size and duration
    n_total = np.asarray(results.n).sum(axis=1)
    duration = results.duration if platform else results.duration_months
    fig = figures.sample_size_and_duration(n_total, duration)
    add("fig-sample-size", "Sample size and duration",
        _fig("fig-sample-size", "Sample size and duration", fig,
             "Histograms of the total sample size and of the calendar duration",
             "Distribution over the simulated trials of the patients randomized and of the calendar duration "
             + ("(months from the opening to the last decision)." if platform else
                "(months from the opening to the last randomized patient's endpoint assessment).")
             + " Dashed line: mean; dotted: median."))

    # 3. stopping
    if platform:
        from ..timeline import PLATFORM_STATUS

        fig = figures.platform_status(results.status, PLATFORM_STATUS, d.arm_names, control)
        caption = ("Final status of each experimental arm as a fraction of the simulated platforms: graduated, "
                   "dropped for futility, inconclusive at the end, or never entered.")
    else:
        from ..results import STOP_NAMES

        fig = figures.stopping_by_reason(results.stop_reason, results.stop_look, STOP_NAMES, d.looks.randomized_n)
        caption = ("Left: why the trial stopped (max: reached its last look; superiority; equivalence; arms_dropped: "
                   "every comparator of the control was dropped), with ± 2 MCSE error bars. Right: the look at "
                   "which it stopped.")
    add("fig-stopping", "Stopping", _fig("fig-stopping", "Stopping reasons" if not platform else "Arm decisions",
                                         fig, "Bar chart of stopping reasons", caption))

    # 4. power / false positives by arm x stratum
    if platform:
        value, mcse, truth, rows_, cols_ = _platform_heatmap(spec, sig)
        label, what = "P(graduated)", "graduation rate by arm and signature"
    else:
        value, mcse, truth, rows_, cols_ = _look_heatmap(spec, results)
        label, what = "P(declared effective)", ("declared-effective rate by arm and stratum" if stratified
                                                 else "declared-effective rate by arm")
    fig = figures.declared_heatmap(value, mcse, truth, rows_, cols_, label, what[0].upper() + what[1:])
    add("fig-heatmap", "Power and false positives",
        _fig("fig-heatmap", "Power and false-positive rate", fig, f"Heat map of the {what}",
             f"The {what} (value ± MCSE). Outlined cells: the arm truly works there, so the rate is power; "
             "hatched cells: the arm is truly null there, so the rate is a false-positive rate; other cells are "
             "in the grey zone. Blank cells: the control, or an arm that does not randomize there."))

    # 5. convergence
    wanted = PLATFORM_CONVERGENCE if platform else LOOK_CONVERGENCE
    meanings = PLATFORM_MEANINGS if platform else compare.TRIAL_METRICS
    conv, constant = _convergence_values(per_trial, wanted)
    fig = figures.convergence(conv, SHORT_LABELS, PROBABILITIES)
    add("fig-convergence", "Convergence",
        _fig("fig-convergence", "Monte Carlo convergence", fig,
             "Running means of the key metrics against the number of simulated trials",
             "Running mean of each key metric against the number of simulated trials, with a ± 2 MCSE band (running "
             "standard error); the first trials (at most 5%) are not drawn. A band still wide at the right end "
             "calls for more simulated trials. "
             + " ".join(f"{SHORT_LABELS.get(k, k)}: {meanings.get(k, k)}." for k in conv)
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
    numeric = ["value", "mcse", "diff_vs_reference", "diff_se"]
    table_ = pd.read_csv(run_dir / COMPARISON_FILE, keep_default_na=False, na_values={c: [""] for c in numeric},
                         dtype={"design": str, "scenario": str, "level": str, "arm": str, "stratum": str,
                                "role": str, "metric": str})
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
    from ..compare import ARM_METRICS

    t = cd.table[cd.table["level"] == level]
    if t.empty:
        return ""
    designs = list(dict.fromkeys(cd.table["design"]))
    reference = cd.manifest.get("reference", "")
    others = [d for d in designs if d != reference]
    keys = ["scenario", "arm"] + (["stratum"] if level == "arm_stratum" else [])
    parts = []
    for metric, meaning in ARM_METRICS.items():
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
        where = "arm and stratum" if level == "arm_stratum" else "arm"
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
        _arm_level(cd, "arm"), _arm_level(cd, "arm_stratum")))
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
