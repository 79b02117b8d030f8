"""One simulated trial from its first patient to its last decision.

:func:`replay` simulates trial ``index`` of a run on its own, with a
:class:`~platform_sim.trace.Trace` on it. A trial's random numbers depend only on the
seed and its index, so the replayed trial is the run's trial: the same patients, the
same randomization and the same decisions. Its record (the run's per-trial results)
comes with it, so the two can be checked against each other. The design's family
tells the trial's story (``family.story``), in tidy tables:

* ``analyses``: one row per interim analysis × arm × stratum with the patients
  randomized and followed, the events, the posterior mean and 95% credible interval,
  the decision statistics, the allocation probabilities and the decision taken;
* ``signatures`` (platform designs): the graduation statistic of every arm in every
  signature at every analysis;
* ``allocations`` (platform designs): the allocation probabilities each time they changed;
* ``patients``: one row per screened patient with arrival, true biomarker profile,
  screening results, arm, stratum, outcome and assessment dates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .results import TrialResults
from .runner import DEFAULT_CHUNK_SIZE, chunk_sizes, run_chunk
from .spec import Spec
from .streams import Streams
from .trace import Trace


@dataclass
class Storyboard:
    """One simulated trial, replayed."""

    spec: Spec
    seed: int
    index: int
    n_sims: int
    chunk_size: int
    result: TrialResults  # this one trial (leading axis of length 1)
    analyses: pd.DataFrame
    patients: pd.DataFrame
    signatures: pd.DataFrame | None = None
    allocations: pd.DataFrame | None = None
    summary: dict = field(default_factory=dict)  # how the trial ended, in a few numbers
    timeline: str = "looks"  # 'looks', 'calendar' or 'events': what the history is drawn against

    def analysis_data(self, by: list[str] | None = None) -> pd.DataFrame:
        """The randomized patients' data for a final analysis: ``arm``, ``group`` and ``response``
        (binary endpoints) or ``time`` / ``event`` (progression-free survival, months). The group is
        the patient's stratum, or with ``by`` the combination of the listed characteristics as
        screening reported them ('unknown' without a result)."""
        p = self.patients[self.patients["arm"] != ""]
        if by:
            unknown = [m for m in by if f"reported_{m}" not in p]
            if unknown:
                names = [c[len("reported_") :] for c in p.columns if c.startswith("reported_")]
                raise ValueError(f"unknown characteristic(s) {unknown}; the scenario has {names}")
            never = unreported(self.spec, by)
            if never:
                raise ValueError(
                    f"{never} are never reported in design {self.spec.design.name!r}: it randomizes "
                    "without waiting for a biomarker result, so no assay measures them"
                )
            parts = [m + "=" + p[f"reported_{m}"].astype(str).replace("", "unknown") for m in by]
            group = parts[0]
            for part in parts[1:]:
                group = group + "," + part
        else:
            group = p["stratum"].astype(str)
        out = pd.DataFrame({"arm": p["arm"].astype(str), "group": group.astype(str)})
        if "event" in p:
            out["time"] = p["time"].to_numpy(float)
            out["event"] = p["event"].to_numpy(int)
        else:
            out["response"] = p["response"].to_numpy(int)
        return out.reset_index(drop=True)


def locate(index: int, n_sims: int, chunk_size: int, chunks=None) -> tuple[int, int, int]:
    """(chunk, row within the chunk, chunk size) of trial ``index`` in a run of ``n_sims`` trials
    (or in the run made of ``chunks``, a list of :class:`~platform_sim.runner.Chunk`, e.g. a grown run)."""
    if not 0 <= index < n_sims:
        raise ValueError(f"index {index} is outside the run's trials 0..{n_sims - 1}")
    if chunks is not None:
        c = next(c for c in chunks if c.first <= index < c.first + c.size)
        return c.index, index - c.first, c.size
    sizes = chunk_sizes(n_sims, chunk_size)
    chunk, row = divmod(index, chunk_size)
    return chunk, row, sizes[chunk]


def replay(
    spec: Spec, seed: int, index: int, n_sims: int, chunk_size: int = DEFAULT_CHUNK_SIZE, chunks=None
) -> Storyboard:
    """Trial ``index`` of the run ``run(spec, n_sims, seed, chunk_size=chunk_size)`` (or of the run
    made of ``chunks``), with its analyses."""
    locate(index, n_sims, chunk_size, chunks)  # checks that the run has this trial
    # a trial's numbers depend only on (seed, index): it is simulated on its own
    trace = Trace(0)
    one = run_chunk(spec, Streams(seed).for_trials([index]), trace)
    story = spec.family.story(spec.compiled, trace, one)
    return Storyboard(
        spec=spec,
        seed=seed,
        index=index,
        n_sims=n_sims,
        chunk_size=chunk_size,
        result=one,
        analyses=story.analyses,
        patients=story.patients,
        signatures=story.signatures,
        allocations=story.allocations,
        summary=story.summary,
        timeline=story.timeline,
    )


def unreported(spec: Spec, names: list[str]) -> list[str]:
    """The characteristics of ``names`` that screening never reports in the design's trials: those an
    assay measures, when the design randomizes without waiting for a biomarker result (a replayed
    trial of a design that waits reports every characteristic its assays measure)."""
    if spec.compiled.needs_biomarker_result:
        return []
    population = spec.patients.population
    return [m for m in names if population.needs_assay([m])]


def predictive_markers(spec: Spec) -> list[str]:
    """Characteristics whose effect on the design's endpoint differs between the design's treatments
    in the scenario (treatment x biomarker interactions in truth), in population order."""
    ep = spec.scenario.endpoints[spec.design.endpoint.name]
    source = ep.of if ep.kind == "landmark" else spec.design.endpoint.name
    models = spec.patients.outcomes._models
    names = spec.patients.population.names
    treatments = list(dict.fromkeys(a.treatment for a in spec.design.arms))
    per_treatment = []
    for t in treatments:
        per: dict[int, np.ndarray] = {}
        for piece in models[source, t].pieces:
            for i, table in piece.tables:
                per[i] = per.get(i, 0.0) + np.asarray(table, dtype=float) - float(table[0])
        per_treatment.append(per)
    used = set().union(*per_treatment)
    shapes = {i: [per.get(i, np.zeros(len(spec.patients.population.levels[i]))) for per in per_treatment] for i in used}
    out = [i for i, tables in shapes.items() if np.ptp(np.array(tables), axis=0).max() > 1e-9]
    return [names[i] for i in sorted(out)]


def record_frame(story: Storyboard) -> pd.DataFrame:
    """The run's per-arm record of the replayed trial (its rows of ``arms.parquet``)."""
    return story.result.arm_frame()


# ------------------------------------------------------------------------------ figure


def history_figure(story: Storyboard):
    """The trial's history in one matplotlib figure (allocation, estimates and decisions over the
    analyses, or over calendar months for a platform)."""
    import matplotlib.pyplot as plt

    if story.timeline == "calendar":
        return _platform_figure(story, plt)
    if story.timeline == "events":
        return _events_figure(story, plt)
    return _look_figure(story, plt)


def _events_figure(story: Storyboard, plt):
    """Z at each analysis against the events, with the efficacy and futility boundaries."""
    df = story.analyses
    fig, ax = plt.subplots(figsize=(6.5, 4.2), constrained_layout=True)
    ax.plot(df["events"], df["z"], marker="o", color="black", label="log-rank Z (> 0: benefit)")
    ax.plot(
        df["events"],
        df["efficacy_z"],
        ls="none",
        marker="_",
        ms=18,
        mew=2,
        color="tab:green",
        label="efficacy boundary",
    )
    futility = df["futility_z"].where(np.isfinite(df["futility_z"]))
    if futility.notna().any():
        ax.plot(df["events"], futility, ls="none", marker="_", ms=18, mew=2, color="tab:red", label="futility boundary")
    for _, r in df[df["decision"] != ""].iterrows():
        ax.annotate(r["decision"], (r["events"], r["z"]), fontsize=8, xytext=(4, 6), textcoords="offset points")
    ax.axhline(0.0, color="0.7", lw=0.8)
    ax.set_xlabel("events at the analysis")
    ax.set_ylabel("Z")
    ax.legend(fontsize=8)
    ax.set_title(
        f"{story.spec.design.name} on {story.spec.scenario.name}: trial {story.index} (seed {story.seed})", fontsize=10
    )
    return fig


def _arm_colours(arms):
    import matplotlib

    cmap = matplotlib.colormaps["tab10"]
    return {arm: cmap(i % 10) for i, arm in enumerate(arms)}


def _look_figure(story: Storyboard, plt):
    df = story.analyses
    strata = list(dict.fromkeys(df["stratum"]))
    arms = list(story.spec.design.arm_names)
    colour = _arm_colours(arms)
    fig, axes = plt.subplots(
        2, len(strata), figsize=(max(6.5, 4.2 * len(strata)), 6.8), squeeze=False, sharex=True, constrained_layout=True
    )
    endpoint = story.spec.design.endpoint.name.replace("_", " ")
    for j, stratum in enumerate(strata):
        top, bottom = axes[0, j], axes[1, j]
        part = df[df["stratum"] == stratum]
        for arm in arms:
            a = part[part["arm"] == arm]
            if a.empty:
                continue
            x = a["patients_randomized"].to_numpy()
            top.plot(x, a["post_mean"], marker="o", ms=3, color=colour[arm], label=arm)
            top.fill_between(x, a["post_lower"], a["post_upper"], color=colour[arm], alpha=0.12)
            bottom.step(x, a["allocation_next"], where="post", color=colour[arm], label=arm)
            dec = a[a["decision"] != ""]
            for _, r in dec.iterrows():
                top.annotate(
                    r["decision"],
                    (r["patients_randomized"], r["post_mean"]),
                    fontsize=7,
                    xytext=(4, 6),
                    textcoords="offset points",
                    color=colour[arm],
                )
                top.plot(r["patients_randomized"], r["post_mean"], marker="*", ms=11, color=colour[arm])
        top.set_title(f"stratum {stratum}" if len(strata) > 1 else "all patients", fontsize=10)
        top.set_ylabel(f"posterior {endpoint} rate\n(mean, 95% CrI)")
        top.set_ylim(0, 1)
        bottom.set_ylabel("allocation probability\nafter the look")
        bottom.set_xlabel("patients randomized at the look")
        bottom.set_ylim(0, 1)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=min(len(arms), 4), fontsize=8)
    fig.suptitle(
        f"{story.spec.design.name} on {story.spec.scenario.name}: trial {story.index} (seed {story.seed})", fontsize=11
    )
    return fig


def _platform_figure(story: Storyboard, plt):
    arms = list(story.spec.design.arm_names)
    colour = _arm_colours(arms)
    extras = story.result.extras
    status = story.result.status[0]
    fig, (gantt, success, alloc) = plt.subplots(3, 1, figsize=(9, 9), sharex=True, constrained_layout=True)
    for k, arm in enumerate(arms):
        opened, closed, decided = extras["opened_at"][0, k], extras["closed_at"][0, k], extras["decided_at"][0, k]
        if np.isnan(opened):
            continue
        end = closed if not np.isnan(closed) else story.summary["duration_months"]
        gantt.barh(k, end - opened, left=opened, color=colour[arm], alpha=0.8, height=0.6)
        if not np.isnan(decided):
            from .results import STATUS_NAMES

            gantt.plot(decided, k, marker="D", color="black", ms=5)
            gantt.annotate(
                STATUS_NAMES[status[k]], (decided, k), xytext=(5, -3), textcoords="offset points", fontsize=8
            )
    gantt.set_yticks(range(len(arms)), arms, fontsize=8)
    gantt.set_ylabel("arm")
    gantt.invert_yaxis()
    gantt.set_title("arms randomizing (bar) and decisions (diamond)", fontsize=10)
    sig = story.signatures
    if sig is not None and not sig.empty:
        best = sig.groupby(["analysis", "month", "arm"], as_index=False)["success"].max()
        for arm in arms:
            a = best[best["arm"] == arm]
            if not a.empty:
                success.plot(a["month"], a["success"], marker="o", ms=3, color=colour[arm], label=arm)
        graduate, drop = float(sig["graduate_at"].iloc[0]), float(sig["drop_below"].iloc[0])
        success.axhline(graduate, color="green", ls="--", lw=1, label=f"graduate ({graduate:g})")
        if np.isfinite(drop):
            success.axhline(drop, color="red", ls=":", lw=1, label=f"drop ({drop:g})")
    success.set_ylabel("graduation statistic\n(best signature)")
    success.set_ylim(0, 1)
    success.legend(fontsize=7, ncol=2, loc="upper left")
    al = story.allocations
    if al is not None and not al.empty:
        mean = al.groupby(["month", "arm"], as_index=False)["probability"].mean()
        for arm in arms:
            a = mean[mean["arm"] == arm]
            alloc.step(a["month"], a["probability"], where="post", color=colour[arm], label=arm)
    alloc.set_ylabel("allocation probability\n(mean over strata)")
    alloc.set_xlabel("months since the platform opened")
    alloc.set_ylim(0, 1)
    fig.suptitle(
        f"{story.spec.design.name} on {story.spec.scenario.name}: platform {story.index} (seed {story.seed})",
        fontsize=11,
    )
    return fig


# ------------------------------------------------------------------------------ text


def _fmt(x: float, digits: int = 3) -> str:
    return "" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def format_story(story: Storyboard) -> str:
    """The storyboard as text: one table per interim analysis and how the trial ended."""
    out = [
        f"trial {story.index} of a run of {story.n_sims} (seed {story.seed}): "
        f"design {story.spec.design.name} on scenario {story.spec.scenario.name}"
    ]
    if story.timeline == "calendar":
        out += _format_platform(story)
    elif story.timeline == "events":
        out += _format_events(story)
    else:
        out += _format_looks(story)
    out.append("")
    out.append(
        "end: "
        + "; ".join(
            f"{k.replace('_', ' ')} {(', '.join(v) or 'none') if isinstance(v, list) else _num(v)}"
            for k, v in story.summary.items()
        )
    )
    return "\n".join(out)


def _num(v) -> str:
    return f"{v:.1f}" if isinstance(v, float) else str(v)


def _format_looks(story: Storyboard) -> list[str]:
    df = story.analyses
    out = []
    stratified = df["stratum"].nunique() > 1 or df["stratum"].iloc[0] != "all"
    for look, part in df.groupby("look", sort=True):
        first = part.iloc[0]
        out.append("")
        out.append(f"look {look}: {first['patients_randomized']} randomized, {first['patients_followed']} with outcome")
        table = pd.DataFrame(
            {
                **({"stratum": part["stratum"]} if stratified else {}),
                "arm": part["arm"],
                "n": part["randomized"],
                "followed": part["followed"],
                "events": part["events"],
                "mean [95% CrI]": [
                    f"{m:.3f} [{lo:.3f}, {hi:.3f}]"
                    for m, lo, hi in zip(part["post_mean"], part["post_lower"], part["post_upper"])
                ],
                "P(best)": [_fmt(v) for v in part["p_best"]],
                "P(>control)": [_fmt(v) for v in part["p_better_than_control"]],
                "alloc next": [_fmt(v) for v in part["allocation_next"]],
                "decision": part["decision"],
            }
        )
        out.append(table.to_string(index=False))
    return out


def _format_events(story: Storyboard) -> list[str]:
    """Analyses of a test statistic at event counts: one line each."""
    out = [""]
    gate = story.summary.get("phase2")
    if gate:  # a seamless design's go/no-go analysis on another endpoint comes first
        out.append(
            f"phase II analysis of {gate['endpoint']} at month {gate['month']:.1f}: {gate['patients_randomized']} "
            f"randomized, {gate['events']} {gate['endpoint']} events, Z = {gate['z']:.3f} (go at or above "
            f"{gate['go_z']:.3f}): {'go' if gate['go'] else 'no-go, futile'}"
        )
    for _, r in story.analyses.iterrows():
        futility = "" if not np.isfinite(r["futility_z"]) else f", futility at or below {r['futility_z']:.3f}"
        decision = f": {r['decision']}" if r["decision"] else ""
        out.append(
            f"analysis {r['look']} at month {r['month']:.1f}: {r['patients_randomized']} randomized, "
            f"{r['events']} events, Z = {r['z']:.3f} (efficacy at or above {r['efficacy_z']:.3f}{futility})"
            f"{decision}"
        )
    return out


def _format_platform(story: Storyboard) -> list[str]:
    df, sig = story.analyses, story.signatures
    out = []
    for number, part in df.groupby("analysis", sort=True):
        first = part.iloc[0]
        kind = "final analysis" if first["final"] else "analysis"
        skipped = "" if first["counted"] else " (no decisions: too few new outcomes)"
        out.append("")
        out.append(f"{kind} {number} at month {first['month']:.1f}{skipped}")
        per_arm = part.groupby("arm", sort=False).agg(
            n=("patients", "sum"), events=("events", "sum"), status=("status", "first"), decision=("decision", "first")
        )
        per_arm = per_arm[per_arm["n"] > 0]
        if sig is not None and not sig.empty:
            wide = sig[sig["analysis"] == number].pivot(index="arm", columns="signature", values="success")
            wide = wide.reindex(columns=list(dict.fromkeys(sig["signature"])))
            wide.columns = [f"P[{c}]" for c in wide.columns]
            per_arm = per_arm.join(wide.map(_fmt), how="left").fillna("")
        out.append(per_arm.reset_index().to_string(index=False))
    return out
