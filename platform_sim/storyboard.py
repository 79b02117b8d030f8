"""One simulated trial from its first patient to its last decision.

:func:`replay` reruns the seeded chunk that holds trial ``index`` of a run (``n_sims``
trials, ``seed``, ``chunk_size``) with a :class:`~platform_sim.trace.Trace` on that
trial. The chunk draws exactly what it drew in the run, so the replayed trial is the
run's trial: the same patients, the same randomization and the same decisions. Its
record (the run's per-trial results) comes with it, so the two can be checked against
each other.

The storyboard holds tidy tables:

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
from dataclasses import dataclass, field, fields

import numpy as np
import pandas as pd
from scipy import special

from .config import Spec
from .population import MISSING, REASON_NAMES
from .posterior import beta_interval, prob_best, prob_greater
from .results import STATUS_NAMES, STOP_NAMES
from .runner import DEFAULT_CHUNK_SIZE, chunk_sizes, run_chunk
from .streams import Streams
from .trace import Trace

LN2 = math.log(2.0)


@dataclass
class Storyboard:
    """One simulated trial, replayed."""

    spec: Spec
    seed: int
    index: int
    n_sims: int
    chunk_size: int
    result: object  # TrialResults or PlatformResults of this one trial (leading axis of length 1)
    analyses: pd.DataFrame
    patients: pd.DataFrame
    signatures: pd.DataFrame | None = None
    allocations: pd.DataFrame | None = None
    summary: dict = field(default_factory=dict)  # how the trial ended, in a few numbers

    @property
    def platform(self) -> bool:
        return self.spec.design.platform is not None

    def analysis_data(self, by: list[str] | None = None) -> pd.DataFrame:
        """The randomized patients' data for a final analysis: ``arm``, ``group`` and ``response``
        (binary endpoints) or ``time`` / ``event`` (progression-free survival, months). The group is
        the patient's stratum, or with ``by`` the combination of the listed characteristics as
        screening reported them ('unknown' without a result)."""
        p = self.patients[self.patients["arm"] != ""]
        if by:
            unknown = [m for m in by if f"reported_{m}" not in p]
            if unknown:
                names = [c[len("reported_"):] for c in p.columns if c.startswith("reported_")]
                raise ValueError(f"unknown characteristic(s) {unknown}; the scenario has {names}")
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


def replay(spec: Spec, seed: int, index: int, n_sims: int, chunk_size: int = DEFAULT_CHUNK_SIZE,
           chunks=None) -> Storyboard:
    """Trial ``index`` of the run ``run(spec, n_sims, seed, chunk_size=chunk_size)`` (or of the run
    made of ``chunks``), with its analyses."""
    locate(index, n_sims, chunk_size, chunks)  # checks that the run has this trial
    # a trial's numbers depend only on (seed, index): it is simulated on its own
    trace = Trace(0)
    one = run_chunk(spec, Streams(seed).for_trials([index]), trace)
    kw = dict(spec=spec, seed=seed, index=index, n_sims=n_sims, chunk_size=chunk_size, result=one)
    if spec.design.platform is not None:
        return _platform_story(trace, **kw)
    return _look_story(trace, **kw)


def _slice(results, row: int):
    """The results of one trial (every per-trial array cut to ``row:row+1``)."""
    out = {}
    for f in fields(results):
        v = getattr(results, f.name)
        if v is None or isinstance(v, tuple):
            out[f.name] = v
        elif hasattr(v, "__dataclass_fields__"):
            out[f.name] = _slice(v, row)
        else:
            out[f.name] = v[row:row + 1]
    return type(results)(**out)


# ------------------------------------------------------------------------- patients


def _levels(spec: Spec, cohort_row, positions: np.ndarray) -> dict[str, np.ndarray]:
    """True and reported level names of every characteristic for the cohort positions."""
    pop = spec.patients.population
    cols: dict[str, np.ndarray] = {}
    for i, name in enumerate(pop.names):
        levels = np.array(list(pop.levels[i]) + [""], dtype=object)
        true = cohort_row["profile"][positions, i]
        seen = cohort_row["observed"][positions, i]
        cols[name] = levels[np.where(true == MISSING, len(levels) - 1, true)]
        cols[f"reported_{name}"] = levels[np.where(seen == MISSING, len(levels) - 1, seen)]
    return cols


def _cohort_row(enrolled, row: int) -> dict[str, np.ndarray]:
    c = enrolled.cohort
    return {"arrival": c.arrival[row], "profile": c.profile[row], "observed": c.observed[row],
            "reason": c.reason[row], "randomized_at": c.randomized_at[row]}


def _screened_frame(spec: Spec, enrolled, row: int, n_screened: int, arm_of: dict[int, int],
                    stratum_of: dict[int, str]) -> pd.DataFrame:
    """Screened patients 0..n_screened-1 of the trial; ``arm_of`` / ``stratum_of`` map cohort
    positions of randomized patients to their arm index and stratum name."""
    cr = _cohort_row(enrolled, row)
    pos = np.arange(n_screened)
    names = list(spec.design.arm_names)
    arm_idx = np.array([arm_of.get(int(p), -1) for p in pos])
    frame = pd.DataFrame({
        "patient": pos,
        "arrival_months": cr["arrival"][pos],
        "ready_months": cr["randomized_at"][pos],
        "screening": np.array(REASON_NAMES, dtype=object)[cr["reason"][pos]],
        **_levels(spec, cr, pos),
        "stratum": [stratum_of.get(int(p), "") for p in pos],
        "arm": np.array(names + [""], dtype=object)[np.where(arm_idx >= 0, arm_idx, len(names))],
    })
    return frame


def _look_patients(spec: Spec, trace: Trace, story_strata: bool, n_screened: int) -> pd.DataFrame:
    """Patients of a look-based trial, with outcomes for the randomized ones."""
    from .compiled import CompiledDesign

    design = CompiledDesign.from_spec(spec)
    enrolled, row = trace.enrolled, trace.row
    order = enrolled.screened_index[row]
    arm_of: dict[int, int] = {}
    stratum_of: dict[int, str] = {}
    pool_of: dict[int, int] = {}  # cohort position -> position among the randomizable patients
    look_of: dict[int, int] = {}
    names = spec.strata.names if story_strata else None
    for ev in trace.events:
        if story_strata:
            for ix, s, k in zip(ev["index"], ev["strata"], ev["arms"]):
                if ix < 0 or k < 0:
                    continue
                p = int(order[ix])
                arm_of[p], stratum_of[p], pool_of[p], look_of[p] = int(k), names[s], int(ix), ev["look"]
        else:
            for j, k in enumerate(ev["arms"]):
                ix = ev["batch_start"] + j
                p = int(order[ix])
                arm_of[p], stratum_of[p], pool_of[p], look_of[p] = int(k), "all", ix, ev["look"]
    frame = _screened_frame(spec, enrolled, row, n_screened, arm_of, stratum_of)
    treat = np.array(list(design.treatments) + [""], dtype=object)
    col = np.array([design.arm_treatment[arm_of[p]] if p in arm_of else -1 for p in frame["patient"]])
    frame["treatment"] = treat[np.where(col >= 0, col, len(treat) - 1)]
    frame["randomized_before_look"] = [look_of.get(int(p), -2) + 1 for p in frame["patient"]]  # -1: not randomized
    resp = np.full(len(frame), -1)
    for i, p in enumerate(frame["patient"]):
        if p in arm_of:
            resp[i] = int(enrolled.outcomes[row, pool_of[p], design.arm_treatment[arm_of[p]]])
    frame["response"] = resp
    months = spec.patients.outcomes.assessment_months(spec.design.endpoint.name)
    frame["outcome_due_months"] = np.where(resp >= 0, frame["ready_months"] + months, np.nan)
    frame.loc[resp < 0, "stratum"] = ""
    return frame


# --------------------------------------------------------------------- look-based story


def _status_names(codes) -> np.ndarray:
    return np.array(STATUS_NAMES, dtype=object)[np.asarray(codes, dtype=int)]


def _look_story(trace: Trace, *, spec: Spec, result, **kw) -> Storyboard:
    from .compiled import CompiledDesign

    design = CompiledDesign.from_spec(spec)
    stratified = spec.strata is not None
    strata = list(spec.strata.names) if stratified else ["all"]
    arms = list(spec.design.arm_names)
    hib = design.higher_is_better
    rows = []
    prev_status = None
    for ev in trace.events:
        look = int(ev["look"])
        a, b, st = ev["a"], ev["b"], ev["status"]
        if not stratified:
            a, b, st = a[None], b[None], st[None]
            n, y, rand = ev["n"][None], ev["y"][None], ev["randomized"][None]
            alloc, nxt = ev["alloc"][None], ev["alloc_next"][None]
        else:
            n, y, rand, alloc, nxt = ev["n"], ev["y"], ev["randomized"], ev["alloc"], ev["alloc_next"]
        before = prev_status if prev_status is not None else _initial_status(spec, design, len(strata))
        in_trial = np.isin(before, (0, 1))  # ACTIVE, CONTROL
        pb = prob_best(a, b, in_trial)
        pb = np.where(in_trial, pb, np.nan)
        rate_a, rate_b = (a, b) if hib else (b, a)
        mean = rate_a / (rate_a + rate_b)
        lo, hi = beta_interval(rate_a, rate_b, 0.95)
        for s in range(len(strata)):
            # the control of the day before this look's decisions (-1: none in this stratum)
            c_day = int(np.flatnonzero(before[s] == 1)[0]) if (before[s] == 1).any() else -1
            for k, arm in enumerate(arms):
                if stratified and not spec.strata.arm_in[s, k]:
                    continue
                vs = np.nan
                if c_day >= 0 and k != c_day and in_trial[s, k]:
                    vs = float(prob_greater(a[s, k], b[s, k], a[s, c_day], b[s, c_day]))
                set_here = st[s, k] != before[s, k]
                rows.append({
                    "look": look + 1,
                    "patients_randomized": int(design.randomized_n[look]),
                    "patients_followed": int(design.followed_n[look]),
                    "stratum": strata[s], "arm": arm,
                    "randomized": int(rand[s, k]), "followed": int(n[s, k]), "events": int(y[s, k]),
                    "post_mean": float(mean[s, k]), "post_lower": float(lo[s, k]), "post_upper": float(hi[s, k]),
                    "p_best": float(pb[s, k]), "p_better_than_control": vs,
                    "allocation": float(alloc[s, k]), "allocation_next": float(nxt[s, k]),
                    "status": STATUS_NAMES[int(st[s, k])],
                    "decision": STATUS_NAMES[int(st[s, k])] if set_here else "",
                })
        prev_status = st.copy()
    analyses = pd.DataFrame(rows)
    res = result
    n_screened = int(res.n_screened[0])
    patients = _look_patients(spec, trace, stratified, n_screened)
    summary = {
        "looks": int(res.stop_look[0]) + 1,
        "stop_reason": STOP_NAMES[int(res.stop_reason[0])],
        "patients_randomized": int(res.n[0].sum()),
        "patients_screened": n_screened,
        "duration_months": float(res.duration_months[0]),
        "declared_superior": [arms[k] for k in np.flatnonzero(res.declared_superior[0])],
    }
    return Storyboard(spec=spec, result=result, analyses=analyses, patients=patients, summary=summary, **kw)


def _initial_status(spec: Spec, design, n_strata: int) -> np.ndarray:
    from .results import ACTIVE, CONTROL, INELIGIBLE

    st = np.full((n_strata, design.n_arms), ACTIVE, dtype=np.int8)
    if spec.strata is not None:
        st[~spec.strata.arm_in] = INELIGIBLE
        if design.control >= 0:
            st[spec.strata.controlled & spec.strata.arm_in[:, design.control], design.control] = CONTROL
    elif design.control >= 0:
        st[:, design.control] = CONTROL
    return st


# ----------------------------------------------------------------------- platform story


def _platform_story(trace: Trace, *, spec: Spec, result, **kw) -> Storyboard:
    from .timeline import (
        PLATFORM_STATUS,
        PlatformDesign,
        _control_posterior,
        _observe,
        _posterior,
        _prob_better,
    )

    pd_ = PlatformDesign.from_spec(spec)
    arms, strata, sigs = list(pd_.arm_names), list(pd_.strata_names), list(pd_.signature_names)
    rows, sig_rows, alloc_rows = [], [], []
    number = 0
    for ev in trace.events:
        t = float(ev["t"])
        status = ev["status"]
        if ev["kind"] == "allocation":
            for s, stratum in enumerate(strata):
                for k, arm in enumerate(arms):
                    alloc_rows.append({"month": t, "stratum": stratum, "arm": arm,
                                       "probability": float(ev["probs"][s, k]), "status": PLATFORM_STATUS[status[k]]})
            continue
        number += 1
        n, y, x = ev["n"], ev["y"], ev["x"]  # (K, S)
        cn, cy, cx = ev["cn"], ev["cy"], ev["cx"]
        a, b = _posterior(pd_, n[None], y[None], x[None])
        ac, bc = _control_posterior(pd_, cn[None], cy[None], cx[None])
        p_better = _prob_better(pd_, a, b, ac, bc)[0]
        a, b = a[0], b[0]
        est, lo, hi = _estimate(pd_, a, b)
        decided = ev["graduate"] | ev["drop"] | ev["settle"]
        for k, arm in enumerate(arms):
            for s, stratum in enumerate(strata):
                rows.append({
                    "analysis": number, "month": t, "final": bool(ev["final"]), "counted": bool(ev["counted"]),
                    "stratum": stratum, "arm": arm, "patients": int(n[k, s]), "events": int(round(y[k, s])),
                    "months_at_risk" if pd_.survival else "followed": float(x[k, s]) if pd_.survival else int(n[k, s]),
                    "estimate": float(est[k, s]), "lower": float(lo[k, s]), "upper": float(hi[k, s]),
                    "control_patients": int(cn[k, s]), "control_events": int(round(cy[k, s])),
                    "p_better_than_control": float(p_better[k, s]) if k != pd_.control else np.nan,
                    "status": PLATFORM_STATUS[status[k]],
                    "decision": PLATFORM_STATUS[status[k]] if decided[k] else "",
                })
            if k == pd_.control:
                continue
            for g, sig in enumerate(sigs):
                sig_rows.append({
                    "analysis": number, "month": t, "arm": arm, "signature": sig,
                    "success": float(ev["success"][k, g]), "graduate_at": pd_.graduate,
                    "drop_below": pd_.drop, "eligible": bool(ev["live"][k]),
                    "decision": PLATFORM_STATUS[status[k]] if decided[k] else "",
                })
    analyses = pd.DataFrame(rows)
    # patients: every screened patient until enrolment ended, with arm, PFS and assessments
    enrolled, row = trace.enrolled, trace.row
    order = trace.order  # randomizable position (sorted by arrival) -> enrolled position
    assigned, arrive, stratum = trace.data["assigned"], trace.data["arrive"], trace.data["stratum"]
    end = float(result.enrolment_end[0])
    final_t = float(result.duration[0])
    time = np.full((1, arrive.size), np.nan)
    event = np.zeros((1, arrive.size), dtype=bool)
    outcomes = enrolled.outcomes[row][order].astype(np.float32)
    dropout = trace.data["dropout"]
    _observe(arrive[None], assigned[None], outcomes[None], dropout[None], pd_.arm_treatment,
             np.array([final_t]), pd_.assess, pd_.survival, pd_.read_at, time, event)
    cohort_pos = enrolled.screened_index[row][order]
    arm_of, stratum_of, idx_of = {}, {}, {}
    for i in np.flatnonzero(arrive <= end):
        p = int(cohort_pos[i])
        idx_of[p] = i
        if assigned[i] >= 0:
            arm_of[p] = int(assigned[i])
        if stratum[i] >= 0:
            stratum_of[p] = strata[stratum[i]]
    n_screened = int(result.n_screened[0])
    frame = _screened_frame(spec, enrolled, row, n_screened, arm_of, stratum_of)
    treat = np.array(list(pd_.treatments) + [""], dtype=object)
    pos = frame["patient"].to_numpy()
    ix = np.array([idx_of.get(int(p), -1) for p in pos])
    has = ix >= 0
    k = np.where(has, assigned[np.maximum(ix, 0)], -1)
    frame["randomizable"] = has
    frame["treatment"] = treat[np.where(k >= 0, pd_.arm_treatment[np.maximum(k, 0)], len(treat) - 1)]
    on = k >= 0
    frame["randomized_months"] = np.where(on, arrive[np.maximum(ix, 0)], np.nan)
    if pd_.survival:
        true = outcomes[np.maximum(ix, 0), pd_.arm_treatment[np.maximum(k, 0)]]
        frame["pfs_months"] = np.where(on, true, np.nan)
        frame["dropout_months"] = np.where(on, dropout[np.maximum(ix, 0)], np.nan)
        visits, seen, last = _assessments(pd_, frame["randomized_months"].to_numpy(), frame["pfs_months"].to_numpy(),
                                          frame["dropout_months"].to_numpy(), final_t)
        frame["assessments"] = visits
        frame["progression_seen_months"] = seen
        frame["last_assessment_months"] = last
        frame["time"] = np.where(on, time[0, np.maximum(ix, 0)], np.nan)
        frame["event"] = np.where(on, event[0, np.maximum(ix, 0)], False).astype(int)
    else:
        true = outcomes[np.maximum(ix, 0), pd_.arm_treatment[np.maximum(k, 0)]]
        frame["response"] = np.where(on, true, -1).astype(int)
        frame["outcome_due_months"] = np.where(on, frame["randomized_months"] + pd_.read_at, np.nan)
        frame["outcome_seen"] = np.where(on, ~np.isnan(time[0, np.maximum(ix, 0)]) & (frame["outcome_due_months"] <= final_t), False)
    res = result
    summary = {
        "analyses": int(res.n_looks[0]),
        "enrolment_end_months": end,
        "duration_months": final_t,
        "patients_randomized": int(res.n[0].sum()),
        "patients_screened": n_screened,
        "graduated": [arms[k] for k in np.flatnonzero(res.status[0] == 3)],
        "dropped": [arms[k] for k in np.flatnonzero(res.status[0] == 4)],
    }
    return Storyboard(spec=spec, result=result, analyses=analyses, patients=frame,
                      signatures=pd.DataFrame(sig_rows), allocations=pd.DataFrame(alloc_rows), summary=summary, **kw)


def _estimate(pd_, a, b):
    """Posterior median PFS (months) with its 95% interval, or the response rate's mean and interval."""
    if pd_.survival:
        med = LN2 * b / special.gammaincinv(a, 0.5)
        lo = LN2 * b / special.gammaincinv(a, 0.975)
        hi = LN2 * b / special.gammaincinv(a, 0.025)
        return med, lo, hi
    lo, hi = beta_interval(a, b, 0.95)
    return a / (a + b), lo, hi


def _assessments(pd_, start, pfs, dropout, t):
    """Tumour assessments of each patient (every ``pd_.assess`` months from randomization) up to the
    final analysis date t, read the way the engine reads them: (number of assessments, date
    progression was seen (NaN: not seen), date of the last assessment (NaN: none yet))."""
    from .timeline import _seen

    n = np.zeros(start.size, dtype=int)
    seen = np.full(start.size, np.nan)
    last = np.full(start.size, np.nan)
    for i in np.flatnonzero(~np.isnan(start)):
        has, ev, x, when = _seen(float(pfs[i]), float(dropout[i]), float(start[i]), float(t), pd_.assess, True, 0.0)
        if has and ev:
            seen[i] = last[i] = when
        elif x > 0:
            last[i] = start[i] + x
        if not np.isnan(last[i]):
            n[i] = int(round((last[i] - start[i]) / pd_.assess))
    return n, seen, last


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
    """The run's per-trial record of the replayed trial (the row ``trials.parquet`` of the run holds)."""
    if story.platform:
        from .platform_metrics import trials_frame
    else:
        from .metrics import trials_frame
    frame = trials_frame(story.result, story.spec)
    frame["trial"] = story.index
    return frame


# ------------------------------------------------------------------------------ figure


def history_figure(story: Storyboard):
    """The trial's history in one matplotlib figure (allocation, estimates and decisions over the
    analyses, or over calendar months for a platform)."""
    import matplotlib.pyplot as plt

    if story.platform:
        return _platform_figure(story, plt)
    return _look_figure(story, plt)


def _arm_colours(arms):
    import matplotlib

    cmap = matplotlib.colormaps["tab10"]
    return {arm: cmap(i % 10) for i, arm in enumerate(arms)}


def _look_figure(story: Storyboard, plt):
    df = story.analyses
    strata = list(dict.fromkeys(df["stratum"]))
    arms = list(story.spec.design.arm_names)
    colour = _arm_colours(arms)
    fig, axes = plt.subplots(2, len(strata), figsize=(max(6.5, 4.2 * len(strata)), 6.8), squeeze=False,
                             sharex=True, constrained_layout=True)
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
                top.annotate(r["decision"], (r["patients_randomized"], r["post_mean"]), fontsize=7,
                             xytext=(4, 6), textcoords="offset points", color=colour[arm])
                top.plot(r["patients_randomized"], r["post_mean"], marker="*", ms=11, color=colour[arm])
        top.set_title(f"stratum {stratum}" if len(strata) > 1 else "all patients", fontsize=10)
        top.set_ylabel(f"posterior {endpoint} rate\n(mean, 95% CrI)")
        top.set_ylim(0, 1)
        bottom.set_ylabel("allocation probability\nafter the look")
        bottom.set_xlabel("patients randomized at the look")
        bottom.set_ylim(0, 1)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=min(len(arms), 4), fontsize=8)
    fig.suptitle(f"{story.spec.design.name} on {story.spec.scenario.name}: trial {story.index} (seed {story.seed})",
                 fontsize=11)
    return fig


def _platform_figure(story: Storyboard, plt):
    arms = list(story.spec.design.arm_names)
    colour = _arm_colours(arms)
    res = story.result
    fig, (gantt, success, alloc) = plt.subplots(3, 1, figsize=(9, 9), sharex=True, constrained_layout=True)
    for k, arm in enumerate(arms):
        opened, closed, decided = res.opened_at[0, k], res.closed_at[0, k], res.decided_at[0, k]
        if np.isnan(opened):
            continue
        end = closed if not np.isnan(closed) else story.summary["duration_months"]
        gantt.barh(k, end - opened, left=opened, color=colour[arm], alpha=0.8, height=0.6)
        if not np.isnan(decided):
            from .timeline import PLATFORM_STATUS

            gantt.plot(decided, k, marker="D", color="black", ms=5)
            gantt.annotate(PLATFORM_STATUS[res.status[0, k]], (decided, k), xytext=(5, -3),
                           textcoords="offset points", fontsize=8)
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
        pd_ = story.spec.design.platform.graduation
        success.axhline(pd_.graduate, color="green", ls="--", lw=1, label=f"graduate ({pd_.graduate:g})")
        if pd_.drop is not None:
            success.axhline(pd_.drop, color="red", ls=":", lw=1, label=f"drop ({pd_.drop:g})")
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
    fig.suptitle(f"{story.spec.design.name} on {story.spec.scenario.name}: platform {story.index} (seed {story.seed})",
                 fontsize=11)
    return fig


# ------------------------------------------------------------------------------ text


def _fmt(x: float, digits: int = 3) -> str:
    return "" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def format_story(story: Storyboard) -> str:
    """The storyboard as text: one table per interim analysis and how the trial ended."""
    out = [f"trial {story.index} of a run of {story.n_sims} (seed {story.seed}, chunk size {story.chunk_size}): "
           f"design {story.spec.design.name} on scenario {story.spec.scenario.name}"]
    if story.platform:
        out += _format_platform(story)
    else:
        out += _format_looks(story)
    out.append("")
    out.append("end: " + "; ".join(f"{k.replace('_', ' ')} {(', '.join(v) or 'none') if isinstance(v, list) else _num(v)}"
                                   for k, v in story.summary.items()))
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
        table = pd.DataFrame({
            **({"stratum": part["stratum"]} if stratified else {}),
            "arm": part["arm"], "n": part["randomized"], "followed": part["followed"], "events": part["events"],
            "mean [95% CrI]": [f"{m:.3f} [{lo:.3f}, {hi:.3f}]" for m, lo, hi in
                               zip(part["post_mean"], part["post_lower"], part["post_upper"])],
            "P(best)": [_fmt(v) for v in part["p_best"]],
            "P(>control)": [_fmt(v) for v in part["p_better_than_control"]],
            "alloc next": [_fmt(v) for v in part["allocation_next"]],
            "decision": part["decision"],
        })
        out.append(table.to_string(index=False))
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
        per_arm = part.groupby("arm", sort=False).agg(n=("patients", "sum"), events=("events", "sum"),
                                                      status=("status", "first"), decision=("decision", "first"))
        per_arm = per_arm[per_arm["n"] > 0]
        if sig is not None and not sig.empty:
            wide = sig[sig["analysis"] == number].pivot(index="arm", columns="signature", values="success")
            wide = wide.reindex(columns=list(dict.fromkeys(sig["signature"])))
            wide.columns = [f"P[{c}]" for c in wide.columns]
            per_arm = per_arm.join(wide.map(_fmt), how="left").fillna("")
        out.append(per_arm.reset_index().to_string(index=False))
    return out
