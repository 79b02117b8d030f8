"""The design, the scenario and the truth in words and tables (page fragments of a report)."""

from __future__ import annotations

import math

import numpy as np

from ..config import Spec
from .html import bullets, details, fmt, heading, key_values, para, setting, table


def _threshold(value) -> str:
    if value is None:
        return "off"
    if isinstance(value, list):
        return "per look: " + ", ".join(setting(v) for v in value)
    return setting(value)


def _flatten(prefix: str, value, out: list[tuple[str, str]]) -> None:
    if value is None:
        return
    if isinstance(value, dict):
        for k, v in value.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
    elif isinstance(value, list) and any(isinstance(v, dict) for v in value):
        for i, v in enumerate(value):
            _flatten(f"{prefix}[{i}]", v, out)
    elif isinstance(value, list):
        out.append((prefix, "[" + ", ".join(setting(v) if not isinstance(v, str) else v for v in value) + "]"))
    else:
        out.append((prefix, setting(value)))


def all_settings(model, title: str) -> str:
    """Every setting of a design or scenario as a flat key/value table, folded away."""
    rows: list[tuple[str, str]] = []
    _flatten("", model.model_dump(exclude={"description"}), rows)
    return details(title, key_values(rows))


def _is_survival(spec: Spec) -> bool:
    return spec.scenario.endpoints[spec.design.endpoint.name].kind == "time_to_event"


def _prior(spec: Spec, arm) -> str:
    d = spec.design
    if d.platform is not None and _is_survival(spec):
        hp = d.platform.hazard_prior
        return f"Gamma({setting(hp.shape)}, {setting(hp.rate)}) on the monthly hazard" if hp is not None else ""
    p = arm.prior or d.prior
    return f"Beta({setting(p.a)}, {setting(p.b)})" if p is not None else ""


def _arms(spec: Spec) -> str:
    d, s = spec.design, spec.scenario
    platform = d.platform is not None
    header = ["arm", "treatment", "role", "cap (patients)", "prior"] + (["available from (month)"] if platform else [])
    header.append("treatment in the scenario")
    rows = []
    for arm in d.arms:
        role = "control" if arm.name == d.control else ("experimental" if d.control is not None else "arm")
        cap = setting(arm.max_n) if arm.max_n is not None else "none"
        row = [arm.name, arm.treatment, role, cap, _prior(spec, arm)]
        if platform:
            row.append(setting(arm.enter_months or 0))
        t = s.treatments.get(arm.treatment)
        row.append(" ".join((t.description if t is not None else "").split()))
        rows.append(row)
    return table(header, rows, "Arms", numeric=[False] * len(header))


def _randomization(spec: Spec) -> list[str]:
    d = spec.design
    r = d.randomization
    platform = d.platform is not None
    out = []
    if r.method == "fixed":
        ratios = ", ".join(f"{k} {setting(v)}" for k, v in (r.ratios or {}).items()) or "equal"
        out.append(f"Fixed randomization in proportion to the ratios ({ratios}); the shares of dropped arms go to "
                   "the remaining arms.")
    else:
        target = ("p = P(arm better than control) in the patient's stratum" if platform else
                  "p = P(arm best) among the active arms")
        soft = ("c = n / (2N) (Thall and Wathen)" if r.softening == "thall_wathen"
                else f"c = {_threshold(r.softening)}")
        out.append(f"Response-adaptive randomization in proportion to p^c, where {target} and {soft}, after equal "
                   f"randomization until {r.burn_in_n} patients have outcomes (burn-in).")
        limits = []

        def limit(value) -> str:
            if isinstance(value, dict):
                return "(" + ", ".join(f"{arm} {setting(v)}" for arm, v in value.items()) + ")"
            return setting(value)

        if r.min_allocation is not None:
            limits.append(f"at least {limit(r.min_allocation)}")
        if r.max_allocation is not None:
            limits.append(f"at most {limit(r.max_allocation)}")
        if limits:
            out.append("Allocation limits per arm: " + " and ".join(limits)
                       + (" (rescaled as arms drop)." if r.rescale_limits else "."))
    out.append("Scheme: " + ("simple (each patient drawn independently)." if r.scheme == "simple" else
                             "block (each arm gets ⌊np⌋ or ⌈np⌉ of the n patients between looks)."))
    ca = d.control_allocation
    if ca is not None:
        if ca.rule == "fixed":
            share = (", ".join(f"{k} active arms: {setting(v)}" for k, v in ca.share.items())
                     if isinstance(ca.share, dict) else setting(ca.share))
            out.append(f"Control allocation: a fixed share of {share}.")
        elif ca.rule == "sqrt_k":
            out.append("Control allocation: control : each other arm = √k : 1 with k active experimental arms.")
        else:
            out.append("Control allocation: the control gets the share of the best-allocated other arm.")
    return out


def _decisions(spec: Spec) -> list[str]:
    d = spec.design
    dec = d.decisions
    if dec is None:
        return []
    vs = "P(arm better than control)" if d.control is not None else "P(best) among the active arms"
    out = [f"Superiority: an arm is declared effective when {vs} > {_threshold(dec.superiority)}"
           + (" and becomes the new control." if d.control is not None else "; the trial stops.")]
    out.append(f"Inferiority: an arm is dropped when {vs} < {_threshold(dec.inferiority)}.")
    if dec.futility is not None:
        f = dec.futility
        out.append(f"Futility: an arm is dropped when P(arm better than control by at least {setting(f.delta)}) < "
                   f"{setting(f.threshold)}" + (" (against the first control only)." if f.only_first_control else "."))
    if dec.equivalence is not None:
        e = dec.equivalence
        out.append(f"Equivalence: when P(|difference| < {setting(e.margin)}) > {setting(e.probability)}, "
                   + ("the arm is dropped as equivalent to the control." if d.control is not None
                      else "the trial stops (all active arms within the margin)."))
    out.append(f"Clinically relevant difference δ = {setting(d.clinically_relevant_difference)}: an arm at least δ "
               "better than the reference counts toward power; one no better counts toward the false-positive rate.")
    return out


def _looks(spec: Spec) -> str:
    d = spec.design
    looks = d.looks
    dec = d.decisions

    def per_look(value, j):
        if value is None:
            return "off"
        return setting(value[j]) if isinstance(value, list) else setting(value)

    rows = [[j + 1, looks.randomized_n[j], looks.followed[j], per_look(dec.superiority, j),
             per_look(dec.inferiority, j)] for j in range(looks.n_looks)]
    return table(["look", "patients randomized", "patients with outcomes", "superiority threshold",
                  "inferiority threshold"], rows, "Interim analyses (looks)")


def _platform(spec: Spec) -> list[str]:
    pf = spec.design.platform
    it, g = pf.interims, pf.graduation
    open_arms = setting(pf.max_open_arms) if pf.max_open_arms else "all"
    controls = ("the control patients randomized while it was open (concurrent controls)"
                if pf.controls == "concurrent" else "all control patients")
    out = [
        (f"Enrolment for at most {setting(pf.max_duration_months)} months, then {setting(pf.follow_up_months)} "
         f"months of follow-up before the final analysis of undecided arms; at most {open_arms} experimental arms "
         f"open at once; tumour assessments every {setting(pf.assessment_weeks)} weeks; each arm is compared with "
         f"{controls}."),
    ]
    if it.trigger == "calendar":
        out.append(f"Interim analyses every {setting(it.every_months)} months (the first at month "
                   f"{setting(it.first)}).")
    elif it.trigger == "enrolled":
        out.append(f"An interim analysis every {setting(it.every_enrolled)} newly randomized patients.")
    else:
        out.append(f"An interim analysis every {setting(it.every_observed)} newly observed outcomes.")
    if it.min_new_outcomes:
        out.append(f"An analysis is skipped when fewer than {it.min_new_outcomes} outcomes are new since the last one.")
    if g.by == "predictive":
        events = g.confirmatory_events or g.confirmatory_n
        success = (f"the predictive probability that a 1:1 confirmatory trial of {g.confirmatory_n} patients"
                   + (f" ({events} events)" if _is_survival(spec) else "")
                   + f" is positive at one-sided α = {setting(g.alpha)}")
    else:
        success = "P(arm better than control)"
    out.append(f"Graduation: an arm graduates when {success} reaches {setting(g.graduate)} in any signature"
               + (f", and is dropped when it is below {setting(g.drop)} in every signature"
                  if g.drop is not None else "")
               + f", once it has {g.min_n} patients.")
    if _is_survival(spec):
        out.append(f"An arm works when its true hazard ratio is at most {setting(pf.working_hazard_ratio)}.")
    return out


def _signatures(spec: Spec) -> str:
    from ..timeline import PlatformDesign

    pd_ = PlatformDesign.from_spec(spec)
    rows = [[name, ", ".join(s for s, member in zip(pd_.strata_names, pd_.signatures[g]) if member)]
            for g, name in enumerate(pd_.signature_names)]
    return table(["signature", "strata"], rows, "Graduation signatures (unions of strata)")


def _strata(spec: Spec) -> list[str]:
    st = spec.design.strata
    plan = spec.strata
    if st is None or plan is None:
        return []
    out = [heading(3, "Strata")]
    arms = spec.design.arm_names
    if st.by is not None:
        out.append(para(f"One stratum per combination of the reported levels of {', '.join(st.by)}; every arm "
                        "randomizes in every stratum. Shares are of the randomizable patients."))
        rows = [[name, fmt(plan.prevalence[s], 3), ", ".join(a for k, a in enumerate(arms) if plan.arm_in[s, k])]
                for s, name in enumerate(plan.names)]
        out.append(table(["stratum", "share", "arms"], rows, "Strata"))
    else:
        out.append(para("Sub-studies in priority order; a patient goes to the first open sub-study whose condition "
                        "matches the reported profile" + (" (or to one of the matching ones at random)."
                                                          if st.overlap == "random" else ".")))
        rows = []
        for s, g in enumerate(st.groups):
            when = "any patient no other sub-study takes" if g.when == "other" else "; ".join(
                f"{m} = {'/'.join(v) if isinstance(v, list) else v}" for m, v in g.when.items())
            rows.append([g.name, when, ", ".join(g.arms), fmt(plan.prevalence[s], 3),
                         setting(g.cap) if g.cap is not None else "none",
                         ", ".join(str(x) for x in g.looks) if g.looks else "every look",
                         setting(g.reference_rate) if g.reference_rate is not None else "the control",
                         ", ".join(str(x) for x in g.responder_boundaries) if g.responder_boundaries else ""])
        out.append(table(["sub-study", "takes", "arms", "share", "cap (patients)", "stages (patients)",
                          "compared with", "responder boundaries"], rows, "Sub-studies",
                         numeric=[False, False, False, True, False, False, False, False]))
    if plan.unclassified > 0:
        out.append(para(f"{plan.unclassified:.3f} of the randomizable patients fall in no stratum and are not "
                        "randomized."))
    notes = []
    if spec.design.platform is not None:
        notes.append("Analysis: posteriors per arm and stratum; a signature's decision uses the patients of its "
                     "strata.")
    elif st.analysis == "hierarchical":
        b = st.borrowing
        prior = (f" (μ ~ Beta({setting(b.mu_a)}, {setting(b.mu_b)}), log κ ~ Normal({setting(b.log_kappa_mean)}, "
                 f"{setting(b.log_kappa_sd)}))" if b is not None else " (default hyperprior)")
        notes.append(f"Analysis: hierarchical beta-binomial borrowing across strata{prior}.")
    else:
        notes.append("Analysis: each stratum on its own (independent beta posteriors).")
    if st.suspension is not None:
        notes.append(f"Suspension: an arm takes no patients of a stratum while P(rate > "
                     f"{setting(st.suspension.reference)}) < {setting(st.suspension.below)} there.")
    if st.enrichment is not None:
        e = st.enrichment
        notes.append(f"Enrichment: an arm futile in the negative stratum (P(better than control by "
                     f"{setting(e.delta)}) < {setting(e.futility)}) but promising in {e.positive} (P(better than "
                     f"control) > {setting(e.promising)}) is restricted to the positive stratum; futile in both, it is "
                     "dropped.")
    out.append(bullets(notes))
    return out


def describe_design(spec: Spec, level: int = 3) -> str:
    """The design in words and tables."""
    d, s = spec.design, spec.scenario
    ep = s.endpoints[d.endpoint.name]
    direction = "higher is better" if d.endpoint.higher_is_better else "lower is better"
    parts = []
    if d.description:
        parts.append(para(" ".join(d.description.split())))
    parts.append(para(f"Endpoint: {d.endpoint.name} ({ep.kind}"
                      + (f": {' '.join(ep.description.split())}" if ep.description else "") + f"); {direction}."))
    parts.append(_arms(spec))
    parts.append(heading(level, "Randomization"))
    parts.append(bullets(_randomization(spec)))
    if d.platform is None:
        parts.append(heading(level, "Looks and decision rules"))
        parts.append(_looks(spec))
        parts.append(bullets(_decisions(spec)))
    else:
        parts.append(heading(level, "Calendar, analyses and graduation"))
        parts.append(bullets(_platform(spec)))
        parts.append(_signatures(spec))
    parts.extend(_strata(spec))
    parts.append(all_settings(d, f"All settings of design {d.name}"))
    return "".join(parts)


def describe_scenario(spec: Spec) -> str:
    """The scenario in words and tables (the truth is a separate table)."""
    s = spec.scenario
    parts = []
    if s.description:
        parts.append(para(" ".join(s.description.split())))
    pop = s.population
    parts.append(para(f"Population: {pop.name}" + (f" ({' '.join(pop.description.split())})"
                                                   if pop.description else "") + "."))
    rows = [[name, e.kind, " ".join(e.description.split())] for name, e in s.endpoints.items()]
    parts.append(table(["endpoint", "kind", "description"], rows, "Endpoints"))
    used = {a.treatment for a in spec.design.arms}
    rows = [[name, "yes" if name in used else "no", t.relative_to or "", " ".join(t.description.split())]
            for name, t in s.treatments.items()]
    parts.append(table(["treatment", "in this design", "relative to", "description"], rows, "Treatments"))
    notes = []
    if s.dropout is not None:
        notes.append(f"Dropout: {setting(s.dropout.probability)} of randomized patients leave before "
                     f"{setting(s.dropout.before_weeks)} weeks.")
    for name, trend in s.time_trend.items():
        notes.append(f"Time trend on {name}: {trend.per_year:+g} on the linear predictor per year of calendar time"
                     + (f" for {', '.join(trend.treatments)}." if trend.treatments else " for every treatment."))
    parts.append(bullets(notes))
    parts.append(all_settings(s, f"All settings of scenario {s.name} (population included)"))
    return "".join(parts)


def _role(better: bool, null: bool, control: bool = False) -> str:
    if control:
        return "control"
    return "effective" if better else "null" if null else "grey zone"


def truth_tables(spec: Spec, signatures=None) -> str:
    """The truth: per arm, per arm x stratum, or per arm x signature (``signatures``: the frame of
    :func:`platform_sim.platform_metrics.signature_truth` when already computed; it is slow)."""
    from .. import metrics

    d = spec.design
    ep = d.endpoint.name
    if d.platform is not None:
        from .. import platform_metrics

        sig = platform_metrics.signature_truth(spec) if signatures is None else signatures
        survival = _is_survival(spec)
        header = ["arm", "signature", "share", "true effect (log hazard ratio)" if survival else
                  "true effect (rate difference)"] + (["hazard ratio"] if survival else []) + ["truth"]
        rows = []
        for r in sig.itertuples():
            row = [r.arm, r.signature, fmt(r.share, 3), fmt(r.effect, 3)]
            if survival:
                row.append(fmt(math.exp(r.effect), 3) if math.isfinite(r.effect) else "NA")
            row.append("works" if r.works else "null" if r.null else "grey zone")
            rows.append(row)
        return (para("Exact true effects at calendar time 0 against the control, over the patients each signature "
                     "takes (share: of randomizable patients).")
                + table(header, rows, "True effect of each experimental arm in each signature"))
    tr = metrics.truth(spec)
    reference = "the control" if d.control is not None else "the best other arm"
    rows = [[arm, fmt(r.true_rate, 3), fmt(r.improvement, 3) if arm != d.control else "",
             _role(r.truly_better, r.truly_null, arm == d.control)] for arm, r in tr.iterrows()]
    parts = [para(f"Exact true {ep} rates over the whole population; improvement over {reference}, positive = "
                  f"better for patients; effective: at least δ = {setting(d.clinically_relevant_difference)} better."),
             table(["arm", f"true {ep} rate", "improvement", "truth"], rows, "Truth by arm")]
    if spec.strata is not None:
        st = metrics.stratum_truth(spec)
        st = st[st["eligible"]]
        rows = [[stratum, arm, fmt(r.prevalence, 3), fmt(r.true_rate, 3), fmt(r.reference, 3),
                 fmt(r.improvement, 3) if np.isfinite(r.improvement) else "", r.role]
                for (stratum, arm), r in st.iterrows()]
        parts.append(table(["stratum", "arm", "share", f"true {ep} rate", "reference rate", "improvement", "truth"],
                           rows, "Truth by arm and stratum (reference: the control there, or the sub-study's "
                                 "reference rate)"))
    return "".join(parts)


__all__ = ["all_settings", "describe_design", "describe_scenario", "truth_tables"]
