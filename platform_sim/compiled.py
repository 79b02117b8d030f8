"""A design paired with a scenario, turned into the arrays the engine uses."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .config import Design
from .config.models import FinalSelection, OutcomeDelay


def _per_look(value, n_looks: int) -> np.ndarray:
    """Thresholds as one value per look; NaN where the rule is disabled."""
    if value is None:
        return np.full(n_looks, np.nan)
    if isinstance(value, list):
        return np.asarray(value, dtype=float)
    return np.full(n_looks, float(value))


def control_share_table(ca, control_rule: str | None, n_arms: int) -> np.ndarray:
    """The fixed control share indexed by the number of active non-control arms (zeros unless fixed)."""
    share_by_k = np.zeros(n_arms + 1)
    if control_rule == "fixed":
        if isinstance(ca.share, dict):
            for k, v in ca.share.items():
                if k <= n_arms:
                    share_by_k[k] = v
        else:
            share_by_k[:] = ca.share
    return share_by_k


def allocation_limits(value, names, adaptive_arms, default: float) -> np.ndarray:
    """Per-arm allocation limits (one number, or a table by arm) for the adaptively allocated arms."""
    out = np.full(len(names), default, dtype=float)
    if value is None:
        return out
    for i, a in enumerate(names):
        if a in adaptive_arms:
            if isinstance(value, dict):
                if a in value:
                    out[i] = value[a]
            else:
                out[i] = value
    return out


@dataclass(frozen=True)
class CompiledDesign:
    arm_names: tuple[str, ...]
    true_rates: np.ndarray  # (K,) true endpoint rate of each arm's treatment in the population
    treatments: tuple[str, ...]  # distinct treatments of the arms, in order of first use
    arm_treatment: np.ndarray  # (K,) column of each arm's treatment in ``treatments``
    higher_is_better: bool
    prior_a: np.ndarray  # (K,)
    prior_b: np.ndarray  # (K,)
    caps: np.ndarray  # (K,) maximum patients per arm (max_n of the trial where uncapped)
    control: int  # initial control index, -1 for none
    control_rule: str | None  # fixed / sqrt_k / match_best, None: control competes like any arm
    control_share_by_k: np.ndarray  # fixed share indexed by number of active non-control arms
    randomized_n: np.ndarray  # (J,)
    followed_n: np.ndarray  # (J,) randomized_n with outcome_delay, where who is followed varies by trial
    adaptive: bool
    block: bool
    ratios: np.ndarray  # (K,) starting / fixed ratios
    softening: np.ndarray  # (J,)
    softening_thall_wathen: bool
    burn_in_n: int
    min_allocation: np.ndarray  # (K,) 0 where unlimited
    max_allocation: np.ndarray  # (K,) 1 where unlimited
    has_limits: bool
    rescale_limits: bool
    superiority: np.ndarray  # (J,) NaN: disabled
    inferiority: np.ndarray  # (J,)
    futility_threshold: float  # NaN: disabled
    futility_delta: float
    futility_only_first: bool
    equivalence_probability: float  # NaN: disabled
    equivalence_margin: float
    equivalence_only_first: bool
    limits_rule: str = "hold"  # hold: exact limits (scale then clip); clip_renormalise: clip once, renormalise
    basis: str = "prob_best"  # adaptive weights: prob_best or posterior_mean, raised to the softening power
    coin_gamma: float = float("nan")  # Hu-Zhang doubly-adaptive biased coin's gamma; NaN: no coin
    futility_on: np.ndarray | None = None  # (J,) bool: futility assessed at the look (None: at every look)
    outcome_delay: OutcomeDelay | None = None  # None: outcomes known per followed_n
    final_selection: FinalSelection | None = None

    @property
    def n_arms(self) -> int:
        return len(self.arm_names)

    @property
    def n_looks(self) -> int:
        return len(self.randomized_n)

    @property
    def max_n(self) -> int:
        return int(self.randomized_n[-1])

    @classmethod
    def from_models(cls, d: Design, true_rates) -> "CompiledDesign":
        """The rules of design ``d`` as arrays; ``true_rates``: each arm's exact population rate."""
        names = tuple(d.arm_names)
        n_arms = len(names)
        n_looks = d.looks.n_looks
        max_n = d.looks.max_n
        rnd = d.randomization
        ctrl = d.control_index
        ca = d.control_allocation
        control_rule = ca.rule if (ca is not None and ctrl is not None) else None
        share_by_k = control_share_table(ca, control_rule, n_arms)
        adaptive_arms = [a for a in names if not (control_rule is not None and a == d.control)]

        def limits(value, default):
            return allocation_limits(value, names, adaptive_arms, default)

        soft = rnd.softening
        dec = d.decisions
        treatments = tuple(dict.fromkeys(a.treatment for a in d.arms))
        return cls(
            arm_names=names,
            true_rates=np.asarray(true_rates, dtype=float),
            treatments=treatments,
            arm_treatment=np.array([treatments.index(a.treatment) for a in d.arms], dtype=np.int64),
            higher_is_better=d.endpoint.higher_is_better,
            prior_a=np.array([(a.prior or d.prior).a for a in d.arms], dtype=float),
            prior_b=np.array([(a.prior or d.prior).b for a in d.arms], dtype=float),
            caps=np.array([a.max_n if a.max_n is not None else max_n for a in d.arms], dtype=np.int64),
            control=-1 if ctrl is None else ctrl,
            control_rule=control_rule,
            control_share_by_k=share_by_k,
            randomized_n=np.asarray(d.looks.randomized_n, dtype=np.int64),
            followed_n=np.asarray(d.looks.followed, dtype=np.int64),
            adaptive=rnd.method == "adaptive",
            block=rnd.scheme == "block",
            ratios=np.array([rnd.ratios[a] if rnd.ratios else 1.0 for a in names], dtype=float),
            softening=np.zeros(n_looks) if soft in (None, "thall_wathen") else _per_look(soft, n_looks),
            softening_thall_wathen=soft == "thall_wathen",
            burn_in_n=rnd.burn_in_n,
            min_allocation=limits(rnd.min_allocation, 0.0),
            max_allocation=limits(rnd.max_allocation, 1.0),
            has_limits=rnd.min_allocation is not None or rnd.max_allocation is not None,
            rescale_limits=rnd.rescale_limits,
            superiority=_per_look(dec.superiority, n_looks),
            inferiority=_per_look(dec.inferiority, n_looks),
            futility_threshold=math.nan if dec.futility is None else dec.futility.threshold,
            futility_delta=0.0 if dec.futility is None else dec.futility.delta,
            futility_only_first=bool(dec.futility and dec.futility.only_first_control),
            equivalence_probability=math.nan if dec.equivalence is None else dec.equivalence.probability,
            equivalence_margin=0.0 if dec.equivalence is None else dec.equivalence.margin,
            equivalence_only_first=bool(dec.equivalence and dec.equivalence.only_first_control),
            limits_rule=rnd.limits,
            basis=rnd.basis,
            coin_gamma=math.nan if rnd.coin is None else float(rnd.coin.gamma),
            futility_on=(
                None
                if dec.futility is None or dec.futility.looks is None
                else np.asarray(dec.futility.looks, dtype=bool)
            ),
            outcome_delay=d.looks.outcome_delay,
            final_selection=dec.final_selection,
        )
