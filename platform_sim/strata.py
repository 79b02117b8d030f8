"""Strata of a design made concrete for a scenario: classification, exact truth and routing.

Patients are classified by the profile screening *reported*. The exact joint
distribution of true and reported profiles among randomizable patients is
enumerated (true profiles from the population's tables; a screening path, tissue or
plasma, with its exact probability; each assayed marker reported correctly, wrongly
or not at all with the assay's sensitivity, specificity and failure rate), so the
share of patients in each stratum and each treatment's true rate in each stratum
are exact, misclassification included. They are computed with every stratum open:
a stratum's composition changes when a higher-priority stratum closes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from . import _kernel_cache  # noqa: F401  (the shipped kernels' cache locator, before any decorator)
from .config.base import MAX_STRATA, Problem
from .config.models import Design, Scenario
from .population import MISSING, PopulationModel, screening_paths

NO_STRATUM = -1
UNBOUNDED = np.iinfo(np.int64).max // 4


def stratum_names(design: Design, population: PopulationModel) -> list[str]:
    st = design.strata
    if st.groups is not None:
        return [g.name for g in st.groups]
    combos = [[]]
    for m in st.by:
        combos = [c + [f"{m}={lv}"] for c in combos for lv in population.levels[population.index[m]]]
    return [",".join(c) for c in combos]


def name_problems(design: Design, population: PopulationModel) -> list[Problem]:
    """Strata markers and levels the scenario's population does not define."""
    st = design.strata
    problems = []
    known = population.names
    if st.by is not None:
        for i, m in enumerate(st.by):
            if m not in population.index:
                problems.append(
                    Problem(
                        f"design.strata.by[{i}]",
                        f"the scenario's population has no characteristic {m!r}; it has {known}",
                        m,
                    )
                )
    else:
        for i, g in enumerate(st.groups):
            if g.when == "other":
                continue
            for m, lv in g.when.items():
                path = f"design.strata.groups[{i}].when.{m}"
                if m not in population.index:
                    problems.append(
                        Problem(path, f"the scenario's population has no characteristic {m!r}; it has {known}", m)
                    )
                    continue
                levels = population.levels[population.index[m]]
                for x in [lv] if isinstance(lv, str) else lv:
                    if x not in levels:
                        problems.append(Problem(path, f"{m!r} has no level {x!r}; its levels are {levels}", x))
    if st.by is not None and not problems:
        n_strata = int(np.prod([len(population.levels[population.index[m]]) for m in st.by], dtype=np.float64))
        if n_strata > MAX_STRATA:
            problems.append(
                Problem(
                    "design.strata.by",
                    f"defines {n_strata} strata (one per combination of the "
                    f"markers' levels); at most {MAX_STRATA} are supported",
                    st.by,
                )
            )
    if st.enrichment is not None and not problems:
        m = st.by[0]
        levels = population.levels[population.index[m]]
        if len(levels) != 2:
            problems.append(Problem("design.strata.by", f"enrichment needs a two-level marker; {m!r} has {levels}", m))
        elif st.enrichment.positive not in levels:
            problems.append(
                Problem(
                    "design.strata.enrichment.positive",
                    f"{m!r} has no level {st.enrichment.positive!r}; its levels are {levels}",
                    st.enrichment.positive,
                )
            )
    return problems


class Classifier:
    """Maps reported profiles to the bit mask of the strata a patient matches."""

    def __init__(self, design: Design, population: PopulationModel):
        st = design.strata
        self.by = None
        self.other = -1
        if st.by is not None:
            self.by = [population.index[m] for m in st.by]
            self.radix = [len(population.levels[i]) for i in self.by]
        else:
            self.conditions = []
            for s, g in enumerate(st.groups):
                if g.when == "other":
                    self.other = s
                    self.conditions.append(None)
                    continue
                conds = []
                for m, lv in g.when.items():
                    i = population.index[m]
                    wanted = [lv] if isinstance(lv, str) else lv
                    conds.append((i, np.array([x in wanted for x in population.levels[i]])))
                self.conditions.append(conds)

    def __call__(self, observed: np.ndarray) -> np.ndarray:
        """``observed`` (..., C) reported codes -> (...) uint32 bit masks (bit s: matches stratum s)."""
        shape = observed.shape[:-1]
        if self.by is not None:
            index = np.zeros(shape, dtype=np.int64)
            complete = np.ones(shape, dtype=bool)
            for i, r in zip(self.by, self.radix):
                code = observed[..., i].astype(np.int64)
                complete &= code >= 0
                index = index * r + np.maximum(code, 0)
            return np.where(complete, np.left_shift(np.uint32(1), index.astype(np.uint32)), np.uint32(0)).astype(
                np.uint32
            )
        mask = np.zeros(shape, dtype=np.uint32)
        for s, conds in enumerate(self.conditions):
            if conds is None:
                hit = np.ones(shape, dtype=bool)
            else:
                hit = np.ones(shape, dtype=bool)
                for i, levels in conds:
                    code = observed[..., i]
                    hit &= (code >= 0) & levels[np.maximum(code, 0)]
            mask |= np.where(hit, np.uint32(1 << s), np.uint32(0)).astype(np.uint32)
        return mask


def route_shares(mask: np.ndarray, n_strata: int, other: int, random: bool) -> np.ndarray:
    """(..., S) share of patients with each match mask routed to each stratum, every stratum open."""
    bits = ((mask[..., None] >> np.arange(n_strata, dtype=np.uint32)) & 1).astype(bool)
    specific = bits.copy()
    if other >= 0:
        specific[..., other] = False
    has = specific.any(axis=-1)
    if random:
        share = specific / np.maximum(specific.sum(axis=-1, keepdims=True), 1)
    else:
        first = np.argmax(specific, axis=-1)
        share = np.zeros(bits.shape)
        np.put_along_axis(share, first[..., None], 1.0, axis=-1)
        share *= has[..., None]
    if other >= 0:
        share[..., other] = np.where(has, 0.0, bits[..., other])
    return share


def reported_distribution(population: PopulationModel, markers: list[str], true_markers: list[str]):
    """Exact joint distribution of true and reported profiles among randomizable patients.

    Returns true codes (R, C), reported codes (R, C) (MISSING where there is no result) and
    probabilities (R,) summing to 1. ``markers``: what is reported (with their closure);
    ``true_markers``: further characteristics whose true values are needed. Patients are screened
    the way a design classifying by ``markers`` screens them: with the assays when a marker needs
    one (:meth:`~platform_sim.population.PopulationModel.needs_assay`), else on clinical
    characteristics alone."""
    reported = population.closure(markers)
    needed = population.closure(set(markers) | set(true_markers))
    codes, prob = population.distribution(sorted(needed))
    paths = screening_paths(population.config, population.needs_assay(markers))
    n_char = len(population.names)
    show = np.isin(np.arange(n_char), [population.index[n] for n in reported])
    parts_true, parts_obs, parts_p = [], [], []
    for path, weight in paths.items():
        if weight <= 0:
            continue
        true = codes.copy()
        obs = np.where(show, codes, MISSING).astype(np.int8)
        p = prob * weight
        for plan in population._plans:
            if plan.name not in reported or (plan.tissue is None and plan.liquid is None):
                continue
            i = population.index[plan.name]
            acc = {"tissue": plan.tissue, "liquid": plan.liquid}.get(path)
            if acc is None:
                obs[:, i] = MISSING
                continue
            sens, spec, fail = acc
            value = true[:, i].astype(np.int64)
            if len(population.levels[i]) == 2:
                options = [
                    (MISSING, np.full(p.shape, fail)),
                    (1, (1 - fail) * np.where(value == 1, sens, 1 - spec)),
                    (0, (1 - fail) * np.where(value == 1, 1 - sens, spec)),
                ]
            else:
                options = [(MISSING, np.full(p.shape, fail)), (None, np.full(p.shape, 1 - fail))]
            new_true, new_obs, new_p = [], [], []
            for code, q in options:
                o = obs.copy()
                o[:, i] = value if code is None else code
                new_true.append(true)
                new_obs.append(o)
                new_p.append(p * q)
            true, obs, p = np.concatenate(new_true), np.concatenate(new_obs), np.concatenate(new_p)
            keep = p > 0
            true, obs, p = true[keep], obs[keep], p[keep]
        population._derive(obs, obs, observed=True, needed=reported)
        parts_true.append(true)
        parts_obs.append(obs)
        parts_p.append(p)
    p = np.concatenate(parts_p)
    return np.concatenate(parts_true), np.concatenate(parts_obs), p / p.sum()


@dataclass(frozen=True)
class StrataPlan:
    names: tuple[str, ...]
    markers: tuple[str, ...]
    arm_in: np.ndarray  # (S, K) bool: the arm randomizes in the stratum
    controlled: np.ndarray  # (S,) bool: arms are compared with the design's control
    reference: np.ndarray  # (S,) reference rate (NaN: compared with the control)
    caps: np.ndarray  # (S,) maximum patients of the stratum
    stages: np.ndarray  # (S, G) stage sizes, -1 padded; a row of -1: analysed at every look
    boundaries: np.ndarray  # (S, G) responder boundaries, -1 where none
    other: int  # the 'other' group, -1 without one
    random_overlap: bool
    prevalence: np.ndarray  # (S,) exact share of randomizable patients each stratum takes (all open)
    unclassified: float  # exact share of randomizable patients no stratum takes
    overlap_share: float  # exact share matching more than one specific stratum
    truth: np.ndarray  # (S, K) true rate of each arm's treatment in each stratum (NaN: nobody there)
    classifier: Classifier
    biomarker_result: bool  # the strata need an assay result, so patients wait for it before randomization
    enrichment: object = None  # config.strata.Enrichment
    enrichment_positive: int = -1  # index of the positive stratum
    suspension: object = None  # config.strata.Suspension

    @property
    def n_strata(self) -> int:
        return len(self.names)

    @property
    def has_stages(self) -> np.ndarray:
        return self.stages[:, 0] > 0


def compile_strata(design: Design, scenario: Scenario, patients=None) -> StrataPlan:
    """The strata of ``design`` under ``scenario`` (names already checked by :func:`name_problems`)."""
    from .outcomes import VirtualPatients

    vp = patients if patients is not None else VirtualPatients(scenario)
    pm = vp.population
    st = design.strata
    names = stratum_names(design, pm)
    n_strata = len(names)
    if n_strata > MAX_STRATA:  # reported by name_problems when the files are loaded
        raise ValueError(f"at most {MAX_STRATA} strata are supported, the design defines {n_strata}")
    arms = design.arm_names
    n_arms = len(arms)
    arm_in = np.zeros((n_strata, n_arms), dtype=bool)
    controlled = np.ones(n_strata, dtype=bool)
    reference = np.full(n_strata, np.nan)
    caps = np.full(n_strata, UNBOUNDED, dtype=np.int64)
    width = max([len(g.looks) for g in st.groups if g.looks] or [1]) if st.groups else 1
    stages = np.full((n_strata, width), -1, dtype=np.int64)
    bounds = np.full((n_strata, width), -1, dtype=np.int64)
    if st.groups is None:
        arm_in[:] = True
        controlled[:] = design.control is not None
    else:
        for s, g in enumerate(st.groups):
            arm_in[s] = [a in g.arms for a in arms]
            if g.reference_rate is not None:
                controlled[s] = False
                reference[s] = g.reference_rate
            if g.cap is not None:
                caps[s] = g.cap
            if g.looks:
                stages[s, : len(g.looks)] = g.looks
            if g.responder_boundaries:
                bounds[s, : len(g.responder_boundaries)] = g.responder_boundaries
    classifier = Classifier(design, pm)
    other = classifier.other
    random = st.overlap == "random"

    ep = design.endpoint.name
    treatments = [a.treatment for a in design.arms]
    true_codes, observed, prob = reported_distribution(pm, st.markers, vp._relevant_markers(ep, treatments))
    mask = classifier(observed)
    share = route_shares(mask, n_strata, other, random)
    weights = share * prob[:, None]
    prevalence = weights.sum(axis=0)
    specific = ((mask[:, None] >> np.arange(n_strata, dtype=np.uint32)) & 1).astype(bool)
    if other >= 0:
        specific[:, other] = False
    overlap_share = float(prob[specific.sum(axis=1) > 1].sum())
    truth = np.full((n_strata, n_arms), np.nan)
    for s in range(n_strata):
        if prevalence[s] <= 0:
            continue
        for k, t in enumerate(treatments):
            truth[s, k] = vp.outcomes.expected(ep, t, true_codes, weights[:, s])
    return StrataPlan(
        names=tuple(names),
        markers=tuple(st.markers),
        arm_in=arm_in,
        controlled=controlled,
        reference=reference,
        caps=caps,
        stages=stages,
        boundaries=bounds,
        other=other,
        random_overlap=random,
        prevalence=prevalence,
        unclassified=float(1.0 - prevalence.sum()),
        overlap_share=overlap_share,
        truth=truth,
        classifier=classifier,
        biomarker_result=pm.needs_assay(st.markers),
        enrichment=st.enrichment,
        suspension=st.suspension,
        enrichment_positive=-1
        if st.enrichment is None
        else pm.levels[pm.index[st.by[0]]].index(st.enrichment.positive),
    )


@dataclass(frozen=True)
class ProfileStrata:
    """Who is randomized where, by true profile, exactly (every stratum open).

    ``codes`` (R, C): distinct true profiles over every characteristic of the population (those
    not asked for are 0, meaningless); ``prob`` (R,): their share of randomizable patients;
    ``weights`` (R, S): the share of randomizable patients who have profile r and are randomized in
    stratum s (screening, misclassification and routing included; a row sums to at most
    ``prob``); ``member`` (R, S): the strata a patient with profile r belongs to by the design's
    definitions, every characteristic reported correctly.
    """

    codes: np.ndarray
    prob: np.ndarray
    weights: np.ndarray
    member: np.ndarray


def profile_strata(population: PopulationModel, plan: StrataPlan | None, characteristics: list[str]) -> ProfileStrata:
    """The exact :class:`ProfileStrata` of a design's strata (``plan``; None: one stratum of all
    patients) over the true ``characteristics`` (with what they are drawn from)."""
    if plan is None:
        codes, prob = population.distribution(list(characteristics))
        return ProfileStrata(codes, prob, prob[:, None].copy(), np.ones((prob.size, 1), dtype=bool))
    true, observed, p = reported_distribution(population, list(plan.markers), list(characteristics))
    n = plan.n_strata
    weights = route_shares(plan.classifier(observed), n, plan.other, plan.random_overlap) * p[:, None]
    columns = sorted(population.closure(set(plan.markers) | set(characteristics)), key=population.index.__getitem__)
    keep = [population.index[c] for c in columns]
    key = true[:, keep]
    unique, inverse = np.unique(key, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    codes = np.zeros((unique.shape[0], true.shape[1]), dtype=true.dtype)
    codes[:, keep] = unique
    prob = np.bincount(inverse, weights=p, minlength=unique.shape[0])
    w = np.zeros((unique.shape[0], n))
    np.add.at(w, inverse, weights)
    member = route_shares(plan.classifier(codes), n, plan.other, True) > 0
    return ProfileStrata(codes, prob, w, member)


def strata_problems(design: Design, scenario: Scenario, patients=None) -> list[Problem]:
    """Problems of a stratified design under a scenario: unknown markers or levels, strata
    nobody can enter, overlapping sub-studies without a rule."""
    return checked_strata(design, scenario, patients)[1]


def _one_blas_thread():
    """Run the block with one BLAS thread. Compiling strata makes a few hundred small array products
    (the exact median PFS per stratum and arm); a multi-threaded BLAS wakes its threads for each,
    which on a machine whose cores are busy made loading the platform design take 1-2 s instead of
    0.1 s. Uses threadpoolctl (a no-op without it)."""
    from contextlib import nullcontext

    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - a dependency; kept optional for a bare environment
        return nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def checked_strata(design: Design, scenario: Scenario, patients=None) -> tuple[StrataPlan | None, list[Problem]]:
    """The strata of a stratified design under a scenario (None when its names do not resolve) and
    their problems (see :func:`strata_problems`). ``patients``: the scenario's
    :class:`~platform_sim.outcomes.VirtualPatients`, when already built."""
    pm = PopulationModel(scenario.population) if patients is None else patients.population
    problems = name_problems(design, pm)
    if problems:
        return None, problems
    with _one_blas_thread():
        plan = compile_strata(design, scenario, patients)
    st = design.strata
    for s, name in enumerate(plan.names):
        if plan.prevalence[s] <= 0:
            where = f"design.strata.groups[{s}]" if st.groups is not None else "design.strata.by"
            problems.append(
                Problem(
                    where,
                    f"stratum {name!r} has no eligible patients under scenario "
                    f"{scenario.name!r} (prevalence 0 among randomizable patients)",
                    name,
                )
            )
    if st.groups is not None and st.overlap is None and plan.overlap_share > 0:
        problems.append(
            Problem(
                "design.strata.overlap",
                f"{plan.overlap_share:.1%} of patients match more than one "
                "group under this scenario; say how to choose: 'priority' (first matching group) or "
                "'random'",
                None,
            )
        )
    return plan, problems


# --------------------------------------------------------------------------- kernels


@njit(cache=True)
def route(match, u, start, avail, ptr, can_take, headroom, n_slots, other, random, out_index, out_stratum):
    """Take the next ``n_slots`` patients each trial can randomize from its pool.

    match (N,) uint32 masks and u (N,) uniforms for random overlap of every trial's pool, trial
    t's ``avail[t]`` patients from ``start[t]`` on (T,); ptr (T,) next pool position (updated);
    can_take (T, S) strata open to enrolment; headroom (T, S) places left (updated). A patient
    goes to the first open stratum they match in priority order (or one at random among the open
    specific strata they match), the 'other' stratum when none; patients no open stratum takes
    are skipped. Scanning stops when no stratum can take anyone, or at the end of the pool.
    out_index/out_stratum (T, n_slots): pool position and stratum of each randomized patient, -1
    for unfilled slots."""
    n_trials = ptr.shape[0]
    n_strata = can_take.shape[1]
    for t in range(n_trials):
        b = 0
        p = ptr[t]
        first = start[t]
        while b < n_slots and p < avail[t]:
            any_open = False
            for s in range(n_strata):
                if can_take[t, s] and headroom[t, s] > 0:
                    any_open = True
                    break
            if not any_open:
                break
            m = match[first + p]
            chosen = -1
            if random:
                count = 0
                for s in range(n_strata):
                    if s != other and (m >> s) & 1 and can_take[t, s] and headroom[t, s] > 0:
                        count += 1
                if count > 0:
                    pick = int(u[first + p] * count)
                    for s in range(n_strata):
                        if s != other and (m >> s) & 1 and can_take[t, s] and headroom[t, s] > 0:
                            if pick == 0:
                                chosen = s
                                break
                            pick -= 1
            else:
                for s in range(n_strata):
                    if s != other and (m >> s) & 1 and can_take[t, s] and headroom[t, s] > 0:
                        chosen = s
                        break
            if chosen < 0 and other >= 0 and (m >> other) & 1 and can_take[t, other] and headroom[t, other] > 0:
                chosen = other
            p += 1
            if chosen >= 0:
                out_index[t, b] = p - 1
                out_stratum[t, b] = chosen
                headroom[t, chosen] -= 1
                b += 1
        for j in range(b, n_slots):
            out_index[t, j] = -1
            out_stratum[t, j] = -1
        ptr[t] = p


@njit(cache=True)
def deal_strata(counts, strata, u):
    """Arms of the patients of a batch: ``counts`` (T, S, K) patients per stratum and arm are dealt
    in random order to the batch's patients of each stratum (``strata`` (T, B), -1: nobody)."""
    n_trials, n_strata, n_arms = counts.shape
    out = np.full(strata.shape, -1, dtype=np.int8)
    remaining = np.empty((n_strata, n_arms), dtype=np.int64)
    total = np.empty(n_strata, dtype=np.int64)
    for t in range(n_trials):
        for s in range(n_strata):
            total[s] = 0
            for k in range(n_arms):
                remaining[s, k] = counts[t, s, k]
                total[s] += counts[t, s, k]
        for j in range(strata.shape[1]):
            s = strata[t, j]
            if s < 0 or total[s] == 0:
                continue
            x = u[t, j] * total[s]
            k = 0
            acc = remaining[s, 0]
            while (x >= acc or remaining[s, k] == 0) and k < n_arms - 1:
                k += 1
                acc += remaining[s, k]
            out[t, j] = k
            remaining[s, k] -= 1
            total[s] -= 1
    return out


@njit(cache=True)
def draw_arms_strata(u, strata, probs):
    """Simple randomization within strata: the patient in slot j of trial t (``strata`` (T, B), -1:
    nobody) gets the arm found by inverting its uniform ``u[t, j]`` over its stratum's allocation
    probabilities ``probs[t, s]`` (T, S, K). Returns (T, B) int8 arms (-1: not randomized)."""
    n_trials, width = strata.shape
    n_arms = probs.shape[2]
    out = np.full((n_trials, width), -1, dtype=np.int8)
    for t in range(n_trials):
        for j in range(width):
            s = strata[t, j]
            if s < 0:
                continue
            total = 0.0
            for k in range(n_arms):
                total += probs[t, s, k]
            if total <= 0.0:
                continue
            x = u[t, j] * total
            acc = 0.0
            pick = -1
            for k in range(n_arms):
                if probs[t, s, k] > 0.0:
                    acc += probs[t, s, k]
                    pick = k
                    if x < acc:
                        break
            out[t, j] = pick
    return out


@njit(cache=True)
def treated(rows, at, arms, arm_treatment, screened, combination):
    """The patients of a look's batch who got an arm (``arms`` (R, m) >= 0; ``at`` their pool
    positions, ``rows`` (R,) their batch rows), in order: (flat index into the batch, treatment,
    batch row, screened position, combination of levels), the last two read from the pool's
    ``screened`` and ``combination`` at each patient's position."""
    n_rows, m = arms.shape
    n = 0
    for r in range(n_rows):
        for j in range(m):
            n += arms[r, j] >= 0
    flat = np.empty(n, dtype=np.int64)
    which = np.empty(n, dtype=np.int64)
    row = np.empty(n, dtype=np.int64)
    position = np.empty(n, dtype=np.int64)
    combo = np.empty(n, dtype=np.int64)
    i = 0
    for r in range(n_rows):
        for j in range(m):
            k = arms[r, j]
            if k >= 0:
                p = at[r, j]
                flat[i], which[i], row[i] = r * m + j, arm_treatment[k], rows[r]
                position[i], combo[i] = screened[p], combination[p]
                i += 1
    return flat, which, row, position, combo


@njit(cache=True)
def tally_strata(arms, strata, outcomes, arm_treatment, n_strata, n_arms):
    """Patients and events per stratum and arm: arms, strata (T, m); outcomes (T, m, treatments)."""
    n_trials, m = arms.shape
    n = np.zeros((n_trials, n_strata, n_arms), dtype=np.int32)
    y = np.zeros((n_trials, n_strata, n_arms), dtype=np.int32)
    for t in range(n_trials):
        for j in range(m):
            k = arms[t, j]
            if k >= 0:
                s = strata[t, j]
                n[t, s, k] += 1
                if outcomes[t, j, arm_treatment[k]]:
                    y[t, s, k] += 1
    return n, y


__all__ = [
    "Classifier",
    "ProfileStrata",
    "StrataPlan",
    "checked_strata",
    "compile_strata",
    "deal_strata",
    "draw_arms_strata",
    "name_problems",
    "profile_strata",
    "reported_distribution",
    "route",
    "route_shares",
    "strata_problems",
    "stratum_names",
    "tally_strata",
    "treated",
]
