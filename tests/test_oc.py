"""Operating characteristics on small hand-built batches of trials where every number is known."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from platform_sim import oc
from platform_sim.config import Scenario
from platform_sim.families.looks import (
    SELECTION_STRATEGIES,
    LookResults,
    best_remaining,
    control_if_active,
    look_truth,
    superior_or_none,
    to_trial_results,
)
from platform_sim.results import (
    ACTIVE,
    CONTROL,
    EQUIVALENT,
    FUTILE,
    INFERIOR,
    STATUS_NAMES,
    STOP_ARMS_DROPPED,
    STOP_EQUIVALENCE,
    STOP_MAX,
    STOP_NAMES,
    STOP_SUPERIORITY,
    SUPERIOR,
    TrialResults,
    Truth,
)
from platform_sim.spec import Spec
from platform_sim.text import format_run

NAN = math.nan
J = 17  # looks of the benchmark design


def make_looks(n, status, declared, prob_best, post_mean, stop_look, stop_reason, final_control, responders=None):
    """The interim loop's record of a batch, from the fields the operating characteristics use."""
    n = np.asarray(n, dtype=np.int64)
    t, k = n.shape
    declared = np.asarray(declared, dtype=bool)
    return LookResults(
        n=n,
        responders=np.asarray(responders if responders is not None else n // 4, dtype=np.int64),
        n_followed=n.copy(),
        status=np.asarray(status, dtype=np.int8),
        status_look=np.full((t, k), -1, dtype=np.int16),
        declared_superior=declared,
        declared_look=np.where(declared, np.asarray(stop_look, dtype=np.int16)[:, None], -1).astype(np.int16),
        post_mean=np.asarray(post_mean, dtype=float),
        post_lower=np.zeros((t, k)),
        post_upper=np.ones((t, k)),
        prob_best=np.asarray(prob_best, dtype=float),
        final_alloc=np.full((t, k), 1.0 / k),
        alloc_history=np.full((t, J, k), 1.0 / k),
        stop_look=np.asarray(stop_look, dtype=np.int16),
        stop_reason=np.asarray(stop_reason, dtype=np.int8),
        final_control=np.asarray(final_control, dtype=np.int8),
    )


def common(spec: Spec, looks: LookResults) -> TrialResults:
    """The batch in the common results type: looks 2 months apart, 1.5 patients screened per patient
    randomized, durations of 3 months per look."""
    t = looks.n.shape[0]
    month = np.broadcast_to(2.0 * (np.arange(J) + 1), (t, J))
    screened = (1.5 * looks.n.sum(axis=1)).astype(np.int64)
    duration = 3.0 * (looks.stop_look + 1)
    return to_trial_results(looks, spec.compiled.rules, np.arange(t), month, screened, duration)


# --------------------------------------------------------------------------- specs


@pytest.fixture(scope="module")
def spec():
    """4 arms A (control), B, C, D; lower is better; rates .25/.30/.22/.19; delta .03; 17 looks."""
    return Spec.load("benchmark_four_arm", "benchmark_four_arm")


def variant(spec, *, control="keep", direction=None, delta=None, rates=None):
    update = {}
    if control != "keep":
        update["control"] = control
        if control is None:
            update["control_allocation"] = None
    if direction is not None:
        update["endpoint"] = spec.design.endpoint.model_copy(update={"direction": direction})
    if delta is not None:
        update["clinically_relevant_difference"] = delta
    design = spec.design.model_copy(update=update)
    scenario = spec.scenario
    if rates is not None:
        data = scenario.model_dump()
        for name, r in rates.items():
            data["treatments"][name]["rates"]["event"] = r
        scenario = Scenario.model_validate(data)
    return Spec.from_models(design, scenario)


def truth_of(spec) -> Truth:
    return look_truth(spec.compiled.rules, spec.compiled.rules.true_rates, spec.design.clinically_relevant_difference)


# --------------------------------------------------------------------------- the hand-built batch
#
# Four trials on the benchmark spec (A control, lower is better, rates .25/.30/.22/.19):
#   T0: D superior, trial stopped for superiority at look 5.
#   T1: C beat A earlier and is the final control; ran to the last look (16); D still active with higher P(best).
#   T2: nothing superior; A is the control, C and D active (D has the highest P(best)); B equivalent.
#   T3: B (truly worse!) beat A and became control; the rest dropped; stopped at look 8 (no comparator left).

N = [[100, 50, 150, 200], [300, 100, 400, 200], [200, 100, 300, 400], [200, 200, 100, 100]]
STATUS = [
    [INFERIOR, INFERIOR, ACTIVE, SUPERIOR],
    [INFERIOR, FUTILE, CONTROL, ACTIVE],
    [CONTROL, EQUIVALENT, ACTIVE, ACTIVE],
    [INFERIOR, CONTROL, FUTILE, INFERIOR],
]
DECLARED = [[0, 0, 0, 1], [0, 0, 1, 0], [0, 0, 0, 0], [0, 1, 0, 0]]
PROB_BEST = [[NAN, NAN, 0.1, 0.9], [NAN, NAN, 0.4, 0.6], [0.1, NAN, 0.3, 0.6], [NAN, 1.0, NAN, NAN]]
POST_MEAN = [
    [0.26, 0.31, 0.23, 0.15],
    [0.27, 0.33, 0.20, 0.18],
    [0.25, 0.29, 0.22, 0.21],
    [0.28, 0.26, 0.24, 0.20],
]
RESPONDERS = [[25, 15, 33, 38], [75, 30, 88, 38], [50, 30, 66, 76], [50, 52, 22, 19]]
STOP_LOOK = [5, 16, 16, 8]


@pytest.fixture(scope="module")
def looks():
    return make_looks(
        N,
        STATUS,
        DECLARED,
        PROB_BEST,
        POST_MEAN,
        stop_look=STOP_LOOK,
        stop_reason=[STOP_SUPERIORITY, STOP_MAX, STOP_MAX, STOP_ARMS_DROPPED],
        final_control=[3, 2, 0, 1],
        responders=RESPONDERS,
    )


@pytest.fixture(scope="module")
def batch(spec, looks):
    return common(spec, looks)


@pytest.fixture(scope="module")
def table(spec, batch):
    return oc.frame(oc.summarize(batch, spec.truth))


@pytest.fixture(scope="module")
def arms(table, spec):
    return oc.arm_table(table, spec.truth)


@pytest.fixture(scope="module")
def trial(table):
    t = oc.trial_table(table)
    return {m: t.at[m, "value"] for m in t.index} | {f"{m}_mcse": t.at[m, "mcse"] for m in t.index}


def se(p, t=4):
    return math.sqrt(p * (1 - p) / t)


# --------------------------------------------------------------------------- truth


def test_truth_with_control_lower_is_better(spec):
    tr = spec.truth
    assert tr.arms == ("A", "B", "C", "D") and tr.subgroups == ("all",)
    assert tr.value[:, 0].tolist() == pytest.approx([0.25, 0.30, 0.22, 0.19])
    improvement = tr.effect[:, 0] * tr.effect_better
    assert improvement.tolist() == pytest.approx([0.0, -0.05, 0.03, 0.06])
    assert tr.works[:, 0].tolist() == [False, False, True, True]  # C reaches delta exactly
    assert tr.null[:, 0].tolist() == [False, True, False, False]
    assert [tr.role(k, 0) for k in range(4)] == ["control", "null", "works", "works"]
    assert truth_of(spec).works.tolist() == tr.works.tolist()


def test_truth_with_control_higher_is_better(spec):
    tr = variant(spec, direction="higher_is_better").truth
    assert (tr.effect[:, 0] * tr.effect_better).tolist() == pytest.approx([0.0, 0.05, -0.03, -0.06])
    assert tr.works[:, 0].tolist() == [False, True, False, False]
    assert tr.null[:, 0].tolist() == [False, False, True, True]


def test_truth_grey_zone_and_zero_delta(spec):
    tr = variant(spec, delta=0.04).truth  # C is better by .03 < .04: neither works nor null
    assert tr.works[:, 0].tolist() == [False, False, False, True]
    assert tr.null[:, 0].tolist() == [False, True, False, False]
    assert tr.role(2, 0) == "grey zone"
    tied = variant(spec, delta=0.0, rates={"B": 0.25}).truth  # B ties the control: null, not works
    assert tied.works[:, 0].tolist() == [False, False, True, True]
    assert tied.null[:, 0].tolist() == [False, True, False, False]


def test_truth_without_control(spec):
    lower = variant(spec, control=None).truth
    # the effect is the margin over the best other arm
    assert (lower.effect[:, 0] * lower.effect_better).tolist() == pytest.approx([-0.06, -0.11, -0.03, 0.03])
    assert lower.works[:, 0].tolist() == [False, False, False, True]
    assert lower.null[:, 0].tolist() == [True, True, True, False]
    assert lower.reference[:, 0].tolist() == pytest.approx([0.19, 0.19, 0.19, 0.22])
    higher = variant(spec, control=None, direction="higher_is_better").truth
    assert higher.works[:, 0].tolist() == [False, True, False, False]
    assert higher.null[:, 0].tolist() == [True, False, True, True]
    grey = variant(spec, control=None, delta=0.04).truth  # D best by only .03
    assert grey.works[:, 0].tolist() == [False] * 4
    assert grey.null[:, 0].tolist() == [True, True, True, False]


# --------------------------------------------------------------------------- selection strategies


def test_selection_strategies_on_batch(looks, batch):
    assert superior_or_none(looks).tolist() == [3, 2, -1, 1]
    assert best_remaining(looks).tolist() == [3, 2, 3, 1]
    assert control_if_active(looks).tolist() == [3, 2, 0, 1]
    assert batch.selections["best_remaining"].tolist() == [3, 2, 3, 1]


def test_selection_strategies_edge_cases():
    # 3 arms, no control: (0) two superior arms -> higher P(best); (1) everything dropped;
    # (2) nothing superior, prob_best NaN on the dropped arm that would otherwise win;
    # (3) final control declared superior but another arm SUPERIOR too -> the SUPERIOR arm.
    r = make_looks(
        n=[[10, 10, 10]] * 4,
        status=[
            [SUPERIOR, SUPERIOR, INFERIOR],
            [INFERIOR, FUTILE, EQUIVALENT],
            [ACTIVE, FUTILE, ACTIVE],
            [CONTROL, INFERIOR, SUPERIOR],
        ],
        declared=[[1, 1, 0], [0, 0, 0], [0, 0, 0], [1, 0, 1]],
        prob_best=[[0.3, 0.7, NAN], [NAN, NAN, NAN], [0.2, NAN, 0.8], [0.9, NAN, 0.1]],
        post_mean=np.full((4, 3), 0.2),
        stop_look=[3, 3, 16, 16],
        stop_reason=[STOP_SUPERIORITY, STOP_ARMS_DROPPED, STOP_MAX, STOP_MAX],
        final_control=[-1, -1, -1, 0],
    )
    assert superior_or_none(r).tolist() == [1, -1, -1, 2]
    assert best_remaining(r).tolist() == [1, -1, 2, 2]
    assert control_if_active(r).tolist() == [1, -1, -1, 2]
    assert set(SELECTION_STRATEGIES) == {"superior_or_none", "best_remaining", "control_if_active"}


def test_control_declared_superior_but_replaced_is_not_selected():
    r = make_looks(
        n=[[10, 10, 10]] * 2,
        status=[[INFERIOR, ACTIVE, INFERIOR], [INFERIOR, ACTIVE, CONTROL]],
        declared=[[0, 0, 1], [0, 0, 0]],
        prob_best=[[NAN, 1.0, NAN], [NAN, 0.4, 0.6]],
        post_mean=np.full((2, 3), 0.2),
        stop_look=[16, 16],
        stop_reason=[STOP_MAX, STOP_MAX],
        final_control=[2, 2],
    )
    assert superior_or_none(r).tolist() == [2, -1]
    assert control_if_active(r).tolist() == [2, 2]
    assert best_remaining(r).tolist() == [2, 2]


# --------------------------------------------------------------------------- arm level


def test_arm_table_proportions(arms):
    assert list(arms.index) == ["A", "B", "C", "D"]
    assert arms["p_claimed"].tolist() == [0.0, 0.25, 0.25, 0.25]
    assert arms["p_claimed_mcse"].tolist() == pytest.approx([0.0, se(0.25), se(0.25), se(0.25)])
    assert arms.loc["A", "p_inferior"] == 0.75
    assert arms.loc["B", "p_inferior"] == 0.25
    assert arms.loc["B", "p_futile"] == 0.25
    assert arms.loc["B", "p_equivalent"] == 0.25
    assert arms.loc["B", "p_dropped"] == 0.5  # inferior or futile, not equivalent
    # the textbook case: p = 0.5 over 4 trials has MCSE sqrt(.25/4) = 0.25
    assert arms.loc["B", "p_dropped_mcse"] == pytest.approx(0.25)
    assert arms.loc["C", "p_dropped"] == 0.25
    assert arms.loc["D", "p_dropped"] == 0.25
    assert arms.loc["A", "p_dropped"] == 0.75
    assert arms["p_active_at_end"].tolist() == [0.25, 0.25, 0.75, 0.50]
    assert arms.loc["D", "p_active_at_end_mcse"] == pytest.approx(0.25)


def test_arm_table_sample_size(arms):
    assert arms.loc["A", "mean_n"] == 200.0
    sd_a = math.sqrt(20000 / 3)
    assert arms.loc["A", "mean_n_mcse"] == pytest.approx(sd_a / 2)
    assert arms.loc["A", "sd_n"] == pytest.approx(sd_a)
    assert arms.loc["A", "sd_n_mcse"] == pytest.approx(sd_a / math.sqrt(6))
    assert arms.loc["A", "n_q50"] == 200.0
    # q = .5, T = 4: ranks floor(2 - 1.96) = 1 .. ceil(2 + 1.96) = 4 -> (300 - 100) / 3.92
    assert arms.loc["A", "n_q50_mcse"] == pytest.approx(200 / 3.92)
    # q = .05: ranks clipped to 1 .. ceil(0.2 + 1.96 sqrt(.19)) = 2 -> (200 - 100) / 3.92
    assert arms.loc["A", "n_q05_mcse"] == pytest.approx(100 / 3.92)
    assert arms.loc["D", "n_q25"] == pytest.approx(np.quantile([200, 200, 400, 100], 0.25))
    q_cols = [f"n_q{q}" for q in ("05", "25", "50", "75", "95")]
    assert (np.diff(arms[q_cols].to_numpy(), axis=1) >= 0).all()


def test_arm_table_shares_events_selection_and_truth(arms):
    assert arms.loc["A", "alloc_share"] == pytest.approx((0.2 + 0.3 + 0.2 + 1 / 3) / 4)
    assert arms["alloc_share"].sum() == pytest.approx(1.0)
    assert arms.loc["B", "events"] == pytest.approx((15 + 30 + 30 + 52) / 4)
    assert arms["p_selected_best_remaining"].tolist() == [0.0, 0.25, 0.25, 0.5]
    assert arms["p_selected_superior_or_none"].tolist() == [0.0, 0.25, 0.25, 0.25]
    assert arms["p_selected_control_if_active"].tolist() == [0.25, 0.25, 0.25, 0.25]
    assert arms["role"].tolist() == ["control", "null", "works", "works"]
    assert arms["true_value"].tolist() == pytest.approx([0.25, 0.30, 0.22, 0.19])


def test_every_estimate_has_an_mcse_and_an_interval(table):
    assert table[["value", "mcse", "lower", "upper"]].notna().all(axis=1).sum() > 0.9 * len(table)
    finite = table[np.isfinite(table["value"])]
    assert (finite["lower"] <= finite["value"] + 1e-12).all() and (finite["value"] <= finite["upper"] + 1e-12).all()


def test_proportions_have_jeffreys_intervals_never_zero_width(table):
    """A proportion of 0 has a Jeffreys interval [0, upper] with upper > 0, not 0 ± 0."""
    row = table[(table.level == "arm") & (table.arm == "A") & (table.metric == "p_claimed")].iloc[0]
    assert row.value == 0 and row.mcse == 0 and row.lower == 0
    from scipy.stats import beta

    assert row.upper == pytest.approx(beta.ppf(0.975, 0.5, 4.5)) and row.upper > 0.3
    p = table[(table.level == "trial") & (table.metric == "fwer")].iloc[0]
    assert (p.lower, p.upper) == pytest.approx(tuple(beta.ppf([0.025, 0.975], 1.5, 3.5)))


# --------------------------------------------------------------------------- trial level


def test_trial_level_decisions(trial):
    assert trial["p_any_claim"] == 0.75
    assert trial["p_any_claim_mcse"] == pytest.approx(se(0.75))
    assert trial["p_stopped_early"] == 0.5
    assert trial["p_stopped_early_mcse"] == pytest.approx(0.25)
    assert trial["p_inconclusive_at_max"] == 0.25  # T1 ran to max but C was declared superior on the way
    assert [trial[f"p_stop_{s}"] for s in STOP_NAMES] == [0.5, 0.25, 0.0, 0.25]
    assert trial["p_stop_equivalence_mcse"] == 0.0
    assert trial["n_looks"] == pytest.approx((6 + 17 + 17 + 9) / 4)


def test_trial_level_sample_size_screening_and_time(trial):
    totals = [500, 1000, 1000, 600]
    assert trial["mean_n_randomized"] == 775.0
    assert trial["sd_n_randomized"] == pytest.approx(np.std(totals, ddof=1))
    assert trial["mean_n_randomized_mcse"] == pytest.approx(np.std(totals, ddof=1) / 2)
    assert trial["n_randomized_q50"] == 800.0
    assert trial["n_randomized_q50_mcse"] == pytest.approx((1000 - 500) / 3.92)
    assert trial["n_screened"] == pytest.approx(1.5 * 775)
    assert trial["n_not_randomized"] == pytest.approx(0.5 * 775)
    assert trial["duration_months"] == pytest.approx(3.0 * (6 + 17 + 17 + 9) / 4)
    # claims at looks 5 (T0), 16 (T1) and 8 (T3): 2 months per look, counted from 1
    assert trial["months_to_first_claim"] == pytest.approx((12 + 34 + 18) / 3)
    assert trial["months_to_first_true_claim"] == pytest.approx((12 + 34) / 2)  # B's claim in T3 is false


def test_fwer_power_and_correct_findings(trial):
    assert trial["fwer"] == 0.25  # B (truly worse than A) declared superior in T3
    assert trial["fwer_mcse"] == pytest.approx(se(0.25))
    assert trial["power"] == 0.5  # D in T0, C in T1
    assert trial["power_mcse"] == pytest.approx(0.25)
    # every working arm (C and D) claimed and no false claim: never here
    assert trial["p_correct_finding"] == 0.0


def test_patients_on_effective_and_null_arms(trial):
    # C and D work, B is null
    assert trial["n_on_effective_arms"] == pytest.approx(np.mean([350, 600, 700, 200]))
    assert trial["n_on_null_arms"] == pytest.approx(np.mean([50, 100, 100, 200]))
    experimental = np.array([400, 700, 800, 400])
    assert trial["share_on_effective_arms"] == pytest.approx(np.mean(np.array([350, 600, 700, 200]) / experimental))
    assert trial["responders"] == pytest.approx(np.mean(np.array(RESPONDERS).sum(axis=1)))


def test_bias_rmse_idp_best_remaining(trial):
    # selected: D (post .15, true .19), C (.20, .22), D (.21, .19), B (.26, .30)
    e = np.array([-0.04, -0.02, 0.02, -0.04])
    assert trial["p_no_selection_best_remaining"] == 0.0
    assert trial["bias_best_remaining"] == pytest.approx(-0.02)
    assert trial["bias_best_remaining_mcse"] == pytest.approx(math.sqrt(0.0008) / 2)
    assert trial["rmse_best_remaining"] == pytest.approx(math.sqrt(0.001))
    assert trial["rmse_best_remaining_mcse"] == pytest.approx(
        math.sqrt(np.var(e**2, ddof=1) / 4) / (2 * math.sqrt(0.001))
    )
    # lower is better: best .19, worst .30; mean selected rate .225 -> 100 * .075 / .11
    assert trial["idp_best_remaining"] == pytest.approx(100 * 0.075 / 0.11)
    assert trial["idp_best_remaining_mcse"] == pytest.approx(100 * math.sqrt(0.0027) / 2 / 0.11)


def test_bias_idp_other_strategies(trial):
    # superior_or_none: T2 selects nothing; D .15-.19, C .20-.22, B .26-.30
    assert trial["p_no_selection_superior_or_none"] == 0.25
    assert trial["p_no_selection_superior_or_none_mcse"] == pytest.approx(se(0.25))
    assert trial["bias_superior_or_none"] == pytest.approx((-0.04 - 0.02 - 0.04) / 3)
    assert trial["idp_superior_or_none"] == pytest.approx(100 * (0.30 - (0.19 + 0.22 + 0.30) / 3) / 0.11)
    # control_if_active: T2 keeps A (post .25, true .25)
    assert trial["p_no_selection_control_if_active"] == 0.0
    assert trial["bias_control_if_active"] == pytest.approx((-0.04 - 0.02 + 0.0 - 0.04) / 4)
    assert trial["idp_control_if_active"] == pytest.approx(100 * (0.30 - (0.19 + 0.22 + 0.25 + 0.30) / 4) / 0.11)


def _trial(spec, looks) -> dict:
    t = oc.trial_table(oc.frame(oc.summarize(common(spec, looks), spec.truth)))
    return {m: t.at[m, "value"] for m in t.index} | {f"{m}_mcse": t.at[m, "mcse"] for m in t.index}


def test_idp_higher_is_better(looks, spec):
    # same selections, rates .25/.30/.22/.19 with higher better: best .30 (B), worst .19 (D)
    t = _trial(variant(spec, direction="higher_is_better"), looks)
    assert t["idp_best_remaining"] == pytest.approx(100 * (0.225 - 0.19) / 0.11)
    assert t["fwer"] == 0.5  # C and D are now null: declared in T0 and T1
    assert t["power"] == 0.25  # B declared in T3


def test_nan_when_undefined(looks, spec):
    all_better = _trial(variant(spec, rates={"B": 0.20, "C": 0.20, "D": 0.20}), looks)
    assert math.isnan(all_better["fwer"]) and math.isnan(all_better["fwer_mcse"])
    assert all_better["power"] == 0.75
    all_equal = _trial(variant(spec, rates={"B": 0.25, "C": 0.25, "D": 0.25}), looks)
    assert math.isnan(all_equal["power"]) and math.isnan(all_equal["power_mcse"])
    assert all_equal["fwer"] == 0.75
    assert math.isnan(all_equal["idp_best_remaining"])
    assert all_equal["bias_best_remaining"] == pytest.approx((-0.10 - 0.05 - 0.04 + 0.01) / 4)
    assert math.isnan(all_equal["months_to_first_true_claim"])


def test_no_selection_at_all_gives_nan_accuracy(spec):
    r = make_looks(
        n=[[10, 10, 10, 10]] * 2,
        status=[[INFERIOR, FUTILE, INFERIOR, EQUIVALENT]] * 2,
        declared=np.zeros((2, 4)),
        prob_best=np.full((2, 4), NAN),
        post_mean=np.full((2, 4), 0.2),
        stop_look=[2, 3],
        stop_reason=[STOP_EQUIVALENCE, STOP_ARMS_DROPPED],
        final_control=[-1, -1],
    )
    t = _trial(spec, r)
    for s in SELECTION_STRATEGIES:
        assert t[f"p_no_selection_{s}"] == 1.0
        assert math.isnan(t[f"bias_{s}"]) and math.isnan(t[f"rmse_{s}"]) and math.isnan(t[f"idp_{s}"])
    assert t["p_stopped_early"] == 1.0
    assert t["p_inconclusive_at_max"] == 0.0
    assert t["fwer"] == 0.0
    assert math.isnan(t["months_to_first_claim"])


# --------------------------------------------------------------------------- claims per subgroup


def _two_strata_truth() -> Truth:
    """Two arms (control, X) over strata pos and neg; X works in pos (the all-patients effect is a
    grey zone) and is null in neg."""
    membership = np.array([[True, False], [False, True], [True, True]])
    value = np.array([[0.3, 0.3, 0.3], [0.5, 0.3, 0.36]])
    reference = np.broadcast_to(value[0], (2, 3)).copy()
    effect = value - reference
    works = np.array([[False] * 3, [True, False, False]])
    null = np.array([[False] * 3, [False, True, False]])
    judged = np.array([[False] * 3, [True] * 3])
    return Truth(
        ("control", "X"),
        ("pos", "neg", "all"),
        ("pos", "neg"),
        membership,
        np.array([0.3, 0.7, 1.0]),
        value,
        reference,
        effect,
        works,
        null,
        judged,
        np.array([[False, False], [True, False]]),
        np.array([[False, False], [False, True]]),
        0,
        "rate",
        "rate difference",
        1.0,
    )


def _two_strata_results(claims) -> TrialResults:
    t = len(claims)
    claimed = np.zeros((t, 2, 3), dtype=bool)
    for i, subs in enumerate(claims):
        for g in subs:
            claimed[i, 1, g] = True
    n = np.broadcast_to(np.array([[10, 20], [10, 20]]), (t, 2, 2)).astype(np.int64)
    return TrialResults(
        trial=np.arange(t),
        arms=("control", "X"),
        strata=("pos", "neg"),
        subgroups=("pos", "neg", "all"),
        membership=np.array([[True, False], [False, True], [True, True]]),
        stop_names=("end",),
        n=n,
        events=n // 2,
        claimed=claimed,
        claim_month=np.where(claimed, 6.0, np.nan),
        status=np.broadcast_to(np.array([CONTROL, ACTIVE], dtype=np.int8), (t, 2)).copy(),
        stop_reason=np.zeros(t, dtype=np.int8),
        n_screened=np.full(t, 40),
        duration_months=np.full(t, 12.0),
    )


def test_claims_are_judged_in_the_subgroup_they_are_made_in():
    """A claim in the positive stratum is a true positive, one in the negative stratum a false
    positive, one for all patients (grey zone) neither; overlapping subgroups (a platform's
    signatures) count an arm as found when it is claimed in one subgroup where it works."""
    truth = _two_strata_truth()
    res = _two_strata_results([[0], [1], [2], [0, 1], []])
    v = oc.trial_values(res, truth)
    assert v["power"].tolist() == [True, False, False, True, False]
    assert v["fwer"].tolist() == [False, True, False, True, False]
    assert v["p_any_claim"].tolist() == [True, True, True, True, False]
    assert v["p_correct_finding"].tolist() == [True, False, False, False, False]
    assert v["n_on_effective_arms"].tolist() == [10.0] * 5  # X's patients in pos
    assert v["n_on_null_arms"].tolist() == [20.0] * 5
    cells = oc.cell_values(res, truth)
    assert cells["mean_n"][0].tolist() == [[10, 20, 30], [10, 20, 30]]


def test_disjoint_strata_need_every_working_cell_claimed():
    truth = _two_strata_truth()
    disjoint = Truth(
        truth.arms,
        ("pos", "neg"),
        truth.strata,
        np.eye(2, dtype=bool),
        truth.share[:2],
        truth.value[:, :2],
        truth.reference[:, :2],
        truth.effect[:, :2],
        truth.works[:, :2],
        truth.null[:, :2],
        truth.judged[:, :2],
        truth.works_in_stratum,
        truth.null_in_stratum,
        0,
        "rate",
        "rate difference",
        1.0,
    )
    res = _two_strata_results([[0], []])
    res = TrialResults(
        **{
            **res.__dict__,
            "subgroups": ("pos", "neg"),
            "membership": np.eye(2, dtype=bool),
            "claimed": res.claimed[:, :, :2],
            "claim_month": res.claim_month[:, :, :2],
        }
    )
    assert oc.trial_values(res, disjoint)["p_correct_finding"].tolist() == [True, False]


# --------------------------------------------------------------------------- frames and text


def test_tidy_table_levels_and_columns(table):
    assert list(table.columns) == ["level", "arm", "subgroup", "metric", "value", "mcse", "lower", "upper", "n"]
    assert list(dict.fromkeys(table["level"])) == ["trial", "arm", "subgroup"]
    assert set(table.loc[table.level == "subgroup", "subgroup"]) == {"all"}
    cell = table[(table.level == "subgroup") & (table.arm == "D")].set_index("metric")
    assert cell.at["p_claimed", "value"] == 0.25
    # the final rate estimate of D: (.15 + .18 + .21 + .20) / 4 against its truth .19
    assert cell.at["rate", "value"] == pytest.approx(0.185)
    assert cell.at["bias_rate", "value"] == pytest.approx(0.185 - 0.19)


def test_trial_and_arm_frames(batch):
    tf = batch.trial_frame()
    assert tf["trial"].tolist() == [0, 1, 2, 3]
    assert tf["n_randomized"].tolist() == [500, 1000, 1000, 600]
    assert isinstance(tf["stop_reason"].dtype, pd.CategoricalDtype)
    assert tf["stop_reason"].tolist() == [
        STOP_NAMES[c] for c in (STOP_SUPERIORITY, STOP_MAX, STOP_MAX, STOP_ARMS_DROPPED)
    ]
    assert tf["claims"].tolist() == ["D@all", "C@all", "", "B@all"]
    assert tf["stop_look"].tolist() == STOP_LOOK
    af = batch.arm_frame()
    assert len(af) == 16 and af["arm"].tolist()[:4] == ["A", "B", "C", "D"]
    assert list(af["status"].cat.categories) == list(STATUS_NAMES)
    assert af.loc[af.trial == 1, "status"].tolist() == ["inferior", "futile", "control", "active"]
    assert af.loc[af.trial == 0, "claimed"].tolist() == [False, False, False, True]
    assert af.loc[af.trial == 2, "rate"].tolist() == pytest.approx([0.25, 0.29, 0.22, 0.21])
    assert np.isnan(af.loc[af.trial == 0, "prob_best"].iloc[0]) and af.loc[af.trial == 2, "prob_best"].iloc[3] == 0.6


def test_round_trip_through_arrays(batch):
    again = TrialResults.from_arrays(batch.to_arrays())
    a, b = again.to_arrays(), batch.to_arrays()
    assert a.keys() == b.keys()
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def test_terminal_table(table, spec):
    text = format_run(spec, table, digits=3)
    lines = text.splitlines()
    assert any(line.startswith("P(claimed effective)") and "0.250 ± 0.217" in line for line in lines)
    assert any(line.startswith("mean patients ") and "200.0 ± 40.8" in line for line in lines)
    assert any(line.startswith("true rate") and "0.190" in line for line in lines)
    assert "A (control)" in text
    assert any(line.startswith("FWER") and line.endswith("0.250 ± 0.217") for line in lines)
    assert any(line.startswith("ideal design percentage") and "68.2 ± 23.6" in line for line in lines)
    assert any(line.startswith("power") and "0.500 ± 0.250" in line for line in lines)
    assert "± 0.000" not in text  # a proportion of 0 or 1 shows its interval's far end instead
    assert len(lines) < 40
