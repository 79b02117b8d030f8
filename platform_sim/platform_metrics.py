"""Operating characteristics of a platform over calendar time, with Monte Carlo standard errors.

The effect of an arm is its log hazard ratio against the control on progression-free
survival (negative: the arm delays progression) or its rate difference on a binary
endpoint (positive: better). The *true* effect in a signature (a union of strata) is
exact: on survival, log(H_arm(m) / H_control(m)), the ratio of the cumulative hazards
of the signature's patients at the control's median m (the log hazard ratio itself
when every patient of the signature has the same baseline and hazard ratio; prognostic markers make
the curves mixtures and pull it toward 0); on a binary endpoint, the difference of the exact rates.
Patients are placed in strata by their *reported* profile, so the truth averages over
the true profiles of the patients each signature actually takes. It is computed at
calendar time 0; a scenario's time trend moves it afterwards.

An arm *works* in a signature when its true effect reaches ``working_hazard_ratio``
(survival) or the design's clinically relevant difference (binary), and is *null* there
when it is no better than the control. A graduation in a signature where the arm is
null is a false positive.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import optimize, stats

from .config import Spec
from .metrics import _pm
from .summary import Summary
from .timeline import DROPPED, GRADUATED, INCONCLUSIVE, PlatformDesign, PlatformResults

_NULL_TOL = 1e-9


def signature_truth(spec: Spec) -> pd.DataFrame:
    """Exact true effect of every experimental arm in every signature: columns arm, signature,
    share (of randomizable patients), effect, works, null."""
    from .strata import reported_distribution

    pd_ = PlatformDesign.from_spec(spec)
    vp = spec.patients
    d = spec.design
    ep = d.endpoint.name
    treatments = [a.treatment for a in d.arms]
    plan = spec.strata
    if plan is None:
        codes, prob = vp.population.distribution(vp._relevant_markers(ep, treatments))
        member = np.ones((prob.size, 1), dtype=bool)
    else:
        codes, observed, prob = reported_distribution(vp.population, plan.markers, vp._relevant_markers(ep, treatments))
        mask = plan.classifier(observed)
        member = ((mask[:, None] >> np.arange(pd_.n_strata, dtype=np.uint32)) & 1).astype(bool)
    rows = []
    c = pd_.control
    for g, name in enumerate(pd_.signature_names):
        w = prob * member[:, pd_.signatures[g]].any(axis=1)
        share = float(w.sum())
        for k, arm in enumerate(d.arms):
            if k == c:
                continue
            effect = math.nan if share <= 0 else _true_effect(spec, pd_, treatments[k], treatments[c], codes, w)
            if pd_.survival:
                works = effect <= math.log(d.platform.working_hazard_ratio) + _NULL_TOL
                null = effect >= -_NULL_TOL
            else:
                works = effect >= d.clinically_relevant_difference - _NULL_TOL
                null = effect <= _NULL_TOL
            rows.append({"arm": arm.name, "signature": name, "share": share, "effect": effect,
                         "works": bool(works), "null": bool(null)})
    return pd.DataFrame(rows)


def _true_effect(spec, pd_: PlatformDesign, treatment: str, control: str, codes, w) -> float:
    out = spec.patients.outcomes
    ep = spec.design.endpoint.name
    w = w / w.sum()
    if not pd_.survival:
        return out.expected(ep, treatment, codes, w) - out.expected(ep, control, codes, w)

    def surv(t, tr):
        return float(w @ np.exp(-out.cumulative_hazard(ep, tr, codes, t)))

    hi = 1.0
    while surv(hi, control) > 0.5:
        hi *= 2.0
    m = optimize.brentq(lambda t: surv(t, control) - 0.5, 0.0, hi, xtol=1e-12)
    return math.log(math.log(surv(m, treatment)) / math.log(0.5))


def _arm_entries(results: PlatformResults, pd_: PlatformDesign, overall: pd.DataFrame):
    """Per-trial values of each experimental arm's characteristics (NaN where the arm never entered)."""
    z = stats.norm.isf(pd_.alpha)
    for k, arm in enumerate(pd_.arm_names):
        if k == pd_.control:
            continue
        entered = ~np.isnan(results.opened_at[:, k])
        true = float(overall.loc[arm, "effect"])

        def when(x):
            return np.where(entered, x, np.nan)

        yield "arm", arm, "p_entered", "p", entered
        yield "arm", arm, "p_graduated", "p", results.status[:, k] == GRADUATED
        yield "arm", arm, "p_dropped", "p", results.status[:, k] == DROPPED
        yield "arm", arm, "p_inconclusive", "p", results.status[:, k] == INCONCLUSIVE
        yield "arm", arm, "mean_n", "mean", when(results.n[:, k])
        yield "arm", arm, "entered_month", "mean", when(results.opened_at[:, k])
        yield "arm", arm, "months_to_decision", "mean", when(results.decided_at[:, k] - results.opened_at[:, k])
        yield "arm", arm, "estimate_at_decision", "mean", when(results.effect_at_decision[:, k])
        yield "arm", arm, "bias_at_decision", "mean", when(results.effect_at_decision[:, k] - true)
        yield "arm", arm, "estimate_concurrent", "mean", when(results.effect_concurrent[:, k])
        yield "arm", arm, "bias_concurrent", "mean", when(results.effect_concurrent[:, k] - true)
        yield "arm", arm, "estimate_all", "mean", when(results.effect_all[:, k])
        yield "arm", arm, "bias_all", "mean", when(results.effect_all[:, k] - true)
        # a z statistic that is NaN (no final test) counts as not rejecting, as before
        yield "arm", arm, "p_reject_concurrent", "p", when(results.z_concurrent[:, k] < -z)
        yield "arm", arm, "p_reject_all", "p", when(results.z_all[:, k] < -z)
        yield "arm", arm, "final_estimate", "mean", when(results.estimate[:, k])


def _signature_entries(results: PlatformResults, pd_: PlatformDesign, truth: pd.DataFrame):
    idx = {a: k for k, a in enumerate(pd_.arm_names)}
    gidx = {g: i for i, g in enumerate(pd_.signature_names)}
    for arm, sig in zip(truth.arm, truth.signature):
        yield "signature", (arm, sig), "p_graduated", "p", results.graduated_in[:, idx[arm]] == gidx[sig]


class Summarizer:
    """Reduces batches of :class:`~platform_sim.timeline.PlatformResults` to a
    :class:`~platform_sim.summary.Summary`; the exact truth (slow: it integrates over the reported
    profiles) is computed once, here."""

    def __init__(self, spec: Spec):
        self.spec = spec
        self.design = PlatformDesign.from_spec(spec)
        self.truth = signature_truth(spec)
        self.overall = self.truth[self.truth.signature == _overall_name(self.design)].set_index("arm")
        self.cells = signature_cells(spec) if self.design.n_strata > 1 else None

    def __call__(self, results: PlatformResults) -> Summary:
        summary = Summary()
        summary.add(results.n_trials, _arm_entries(results, self.design, self.overall))
        summary.add(0, _signature_entries(results, self.design, self.truth))
        values = trial_values(results, self.spec, self)
        summary.add(0, (("trial", name, "value", _kind(x), x) for name, x in values.items()))
        return summary


def _kind(x) -> str:
    return "p" if np.asarray(x).dtype == bool else "mean"


def summarize(results: PlatformResults, spec: Spec) -> Summary:
    """The :class:`~platform_sim.summary.Summary` of ``results``: what every table below is built from."""
    return Summarizer(spec)(results)


def _as_summary(results: PlatformResults | Summary, spec: Spec) -> Summary:
    return results if isinstance(results, Summary) else summarize(results, spec)


def arm_table(results: PlatformResults | Summary, spec: Spec) -> pd.DataFrame:
    """One row per experimental arm: entry, decisions, sample size, timing, final estimates and their
    bias against concurrent and against all controls, and the frequentist final test's rejection rate
    with each (its type I error when the arm is null). ``results`` is a batch of platforms or the
    :class:`~platform_sim.summary.Summary` of a run."""
    pd_ = PlatformDesign.from_spec(spec)
    truth = signature_truth(spec)
    overall = truth[truth.signature == _overall_name(pd_)].set_index("arm")
    table = _as_summary(results, spec).table("arm")
    arms = list(table.index)
    head = pd.DataFrame({"true_effect": overall.loc[arms, "effect"].astype(float).to_numpy(),
                         "works": overall.loc[arms, "works"].astype(bool).to_numpy(),
                         "null": overall.loc[arms, "null"].astype(bool).to_numpy()}, index=table.index)
    table = pd.concat([head, table], axis=1)
    table.index = pd.Index(arms, name="arm")
    return table


def _overall_name(pd_: PlatformDesign) -> str:
    full = np.flatnonzero(pd_.signatures.all(axis=1))
    return pd_.signature_names[full[0]] if full.size else pd_.signature_names[0]


def signature_table(results: PlatformResults | Summary, spec: Spec) -> pd.DataFrame:
    """Per arm x signature: the true effect, whether the arm works / is null there, and
    P(graduated in that signature)."""
    truth = signature_truth(spec)
    table = _as_summary(results, spec).table("signature")
    truth["p_graduated"] = table["p_graduated"].to_numpy()
    truth["p_graduated_mcse"] = table["p_graduated_mcse"].to_numpy()
    return truth.set_index(["arm", "signature"])


def trial_values(results: PlatformResults, spec: Spec, known: Summarizer | None = None) -> dict[str, np.ndarray]:
    """Per-trial values the trial table averages (``known``: a summarizer holding the truth already)."""
    pd_ = PlatformDesign.from_spec(spec) if known is None else known.design
    truth = signature_truth(spec) if known is None else known.truth
    K, S = pd_.n_arms, pd_.n_strata
    G = len(pd_.signature_names)
    works = np.zeros((K, G), dtype=bool)
    null = np.zeros((K, G), dtype=bool)
    for arm, sig, w, n0 in zip(truth.arm, truth.signature, truth.works, truth.null):
        works[pd_.arm_names.index(arm), pd_.signature_names.index(sig)] = w
        null[pd_.arm_names.index(arm), pd_.signature_names.index(sig)] = n0
    g = results.graduated_in.astype(np.int64)
    graduated = g >= 0
    k_idx = np.arange(K)[None, :]
    false_pos = graduated & null[k_idx, np.maximum(g, 0)]
    true_pos = graduated & works[k_idx, np.maximum(g, 0)]
    # patients on arm x stratum cells where the arm works in that stratum
    stratum_sig = [int(np.flatnonzero(pd_.signatures[:, s] & (pd_.signatures.sum(axis=1) == 1))[0])
                   if (pd_.signatures[:, s] & (pd_.signatures.sum(axis=1) == 1)).any() else -1 for s in range(S)]
    if S == 1:
        stratum_sig = [pd_.signature_names.index(_overall_name(pd_))]
    works_s = np.zeros((K, S), dtype=bool)
    null_s = np.zeros((K, S), dtype=bool)
    cell = (signature_cells(spec) if S > 1 else None) if known is None else known.cells
    for s in range(S):
        if stratum_sig[s] >= 0:
            works_s[:, s] = works[:, stratum_sig[s]]
            null_s[:, s] = null[:, stratum_sig[s]]
        elif cell is not None:
            works_s[:, s], null_s[:, s] = cell[0][:, s], cell[1][:, s]
    works_s[pd_.control] = False
    null_s[pd_.control] = False
    n_work = (results.n_stratum * works_s[None]).sum(axis=(1, 2))
    n_null = (results.n_stratum * null_s[None]).sum(axis=(1, 2))
    experimental = np.delete(results.n, pd_.control, axis=1).sum(axis=1)
    any_works = works.any()
    return {
        "duration_months": results.duration,
        "enrolment_months": results.enrolment_end,
        "p_any_graduation": np.isfinite(results.first_graduation),
        "months_to_first_graduation": results.first_graduation,
        "arms_evaluated": (~np.isnan(results.opened_at)).sum(axis=1) - 1,
        "n_looks": results.n_looks,
        "n_screened": results.n_screened,
        "n_randomized": results.n.sum(axis=1),
        "n_not_assigned": results.n_not_assigned,
        "n_lost_in_screening": results.n_screened - results.n_randomizable,
        "n_on_working_arms": n_work,
        "n_on_null_arms": n_null,
        "share_on_working_arms": np.where(experimental > 0, n_work / np.maximum(experimental, 1), np.nan),
        "fwer": false_pos.any(axis=1),
        "power": true_pos.any(axis=1) if any_works else np.full(results.n_trials, np.nan),
    }


def signature_cells(spec: Spec):
    """(works, null) per arm x stratum from each stratum's own exact truth."""
    from .strata import reported_distribution

    pd_ = PlatformDesign.from_spec(spec)
    plan = spec.strata
    vp = spec.patients
    treatments = [a.treatment for a in spec.design.arms]
    codes, observed, prob = reported_distribution(vp.population, plan.markers,
                                                  vp._relevant_markers(spec.design.endpoint.name, treatments))
    mask = plan.classifier(observed)
    K, S = pd_.n_arms, pd_.n_strata
    works = np.zeros((K, S), dtype=bool)
    null = np.zeros((K, S), dtype=bool)
    c = pd_.control
    for s in range(S):
        w = prob * (((mask >> np.uint32(s)) & 1) == 1)
        if w.sum() <= 0:
            continue
        for k in range(K):
            if k == c:
                continue
            e = _true_effect(spec, pd_, treatments[k], treatments[c], codes, w)
            if pd_.survival:
                works[k, s] = e <= math.log(spec.design.platform.working_hazard_ratio) + _NULL_TOL
                null[k, s] = e >= -_NULL_TOL
            else:
                works[k, s] = e >= spec.design.clinically_relevant_difference - _NULL_TOL
                null[k, s] = e <= _NULL_TOL
    return works, null


def trial_table(results: PlatformResults | Summary, spec: Spec) -> pd.DataFrame:
    """Platform-level operating characteristics: one row per metric, value and MCSE."""
    table = _as_summary(results, spec).table("trial")
    table.index.name = "metric"
    return table.rename(columns={"value_mcse": "mcse"})


def summary_frame(results: PlatformResults | Summary, spec: Spec) -> pd.DataFrame:
    """The content of ``summary.csv`` for a platform: one row per arm (level 'arm', the columns of
    :func:`arm_table`) then one row per platform metric (level 'trial', columns metric, value, mcse)."""
    results = _as_summary(results, spec)
    arms = arm_table(results, spec)
    arms.insert(0, "arm", arms.index.astype(str))
    arms.insert(0, "level", "arm")
    trial = trial_table(results, spec).reset_index()
    trial.insert(0, "arm", "")
    trial.insert(0, "level", "trial")
    return pd.concat([arms.reset_index(drop=True), trial], ignore_index=True)


def trials_frame(results: PlatformResults, spec: Spec, first: int = 0) -> pd.DataFrame:
    """One row per simulated platform x arm: dates, status, patients and final estimates (``trial``:
    the platform's number in the run, from ``first``)."""
    from .timeline import PLATFORM_STATUS

    pd_ = PlatformDesign.from_spec(spec)
    T, K = results.status.shape
    frame = pd.DataFrame({
        "trial": np.repeat(np.arange(first, first + T), K),
        "arm": np.tile(np.array(pd_.arm_names, dtype=object), T),
        "status": np.array(PLATFORM_STATUS, dtype=object)[results.status.ravel()],
        "opened_month": results.opened_at.ravel(),
        "closed_month": results.closed_at.ravel(),
        "decided_month": results.decided_at.ravel(),
        "graduated_in": np.where(results.graduated_in.ravel() >= 0,
                                 np.array(pd_.signature_names + ("",), dtype=object)[results.graduated_in.ravel()], ""),
        "n": results.n.ravel(),
        "events": results.events.ravel(),
        "effect_at_decision": results.effect_at_decision.ravel(),
        "effect_concurrent": results.effect_concurrent.ravel(),
        "effect_all": results.effect_all.ravel(),
        "z_concurrent": results.z_concurrent.ravel(),
        "z_all": results.z_all.ravel(),
        "prob_better": results.prob_better.ravel(),
        "estimate": results.estimate.ravel(),
        "duration_month": np.repeat(results.duration, K),
    })
    return frame


def format_platform(results: PlatformResults | Summary, spec: Spec, digits: int = 3) -> str:
    """Plain-text report: the arm block, the arm x signature graduations and the platform metrics."""
    results = _as_summary(results, spec)
    pd_ = PlatformDesign.from_spec(spec)
    arms = arm_table(results, spec)
    effect = "log hazard ratio" if pd_.survival else "rate difference"
    lines = [f"platform over calendar time: effects are {effect}s vs control "
             f"(final analysis: {'log-rank' if pd_.survival else 'two-proportion'} z at one-sided {pd_.alpha:g}); "
             f"decisions use {'concurrent' if pd_.concurrent else 'all'} controls"]
    show = [("true effect", "true_effect", None), ("P(entered)", "p_entered", "p_entered_mcse"),
            ("P(graduated)", "p_graduated", "p_graduated_mcse"), ("P(dropped)", "p_dropped", "p_dropped_mcse"),
            ("P(inconclusive)", "p_inconclusive", "p_inconclusive_mcse"), ("mean n", "mean_n", "mean_n_mcse"),
            ("entered (month)", "entered_month", "entered_month_mcse"),
            ("months to decision", "months_to_decision", "months_to_decision_mcse"),
            ("bias at decision", "bias_at_decision", "bias_at_decision_mcse"),
            ("final bias, concurrent", "bias_concurrent", "bias_concurrent_mcse"),
            ("final bias, all controls", "bias_all", "bias_all_mcse"),
            ("P(final test rejects), concurrent", "p_reject_concurrent", "p_reject_concurrent_mcse"),
            ("P(final test rejects), all controls", "p_reject_all", "p_reject_all_mcse"),
            ("final median PFS (months)" if pd_.survival else "final rate", "final_estimate", "final_estimate_mcse")]
    width = max(len(s[0]) for s in show)
    col = max(16, max(len(a) for a in arms.index) + 2)
    lines.append(" " * width + "".join(f"{a:>{col}}" for a in arms.index))
    for label, key, err in show:
        cells = [_pm(row[key], row[err] if err else None, digits) for _, row in arms.iterrows()]
        lines.append(f"{label:<{width}}" + "".join(f"{c:>{col}}" for c in cells))
    sig = signature_table(results, spec).reset_index()
    lines.append("\nP(graduated) by signature (true effect; W works, 0 null)")
    for arm, block in sig.groupby("arm", sort=False):
        cells = [f"{r.signature} {_pm(r.p_graduated, r.p_graduated_mcse, digits)} "
                 f"({r.effect:+.2f}{' W' if r.works else ''}{' 0' if r.null else ''})" for r in block.itertuples()]
        lines.append(f"  {arm}: " + "; ".join(cells))
    lines.append("")
    table = trial_table(results, spec)
    w2 = max(len(m) for m in table.index)
    for metric, row in table.iterrows():
        lines.append(f"{metric:<{w2}}  {_pm(row.value, row.mcse, digits)}")
    return "\n".join(lines)
