"""Operating characteristics on small hand-built batches of trials where every number is known."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from platform_sim import metrics
from platform_sim.summary import _Stat
from platform_sim.config import Scenario, Spec
from platform_sim.results import (
    ACTIVE,
    CONTROL,
    EQUIVALENT,
    FUTILE,
    INFERIOR,
    STATUS_NAMES,
    STOP_EQUIVALENCE,
    STOP_MAX,
    STOP_NAMES,
    STOP_SUPERIORITY,
    SUPERIOR,
    TrialResults,
)

NAN = math.nan
# The last stop code: every comparator of the control dropped (its constant's name has changed; the code has not).
STOP_DROPPED = len(STOP_NAMES) - 1


def make_results(n, status, declared, prob_best, post_mean, stop_look, stop_reason, final_control, responders=None):
    """A TrialResults from the fields metrics use; the rest filled consistently."""
    n = np.asarray(n, dtype=np.int64)
    t, k = n.shape
    j = 17
    return TrialResults(
        n=n,
        responders=np.asarray(responders if responders is not None else n // 4, dtype=np.int64),
        n_followed=n.copy(),
        status=np.asarray(status, dtype=np.int8),
        status_look=np.full((t, k), -1, dtype=np.int16),
        declared_superior=np.asarray(declared, dtype=bool),
        post_mean=np.asarray(post_mean, dtype=float),
        post_lower=np.zeros((t, k)),
        post_upper=np.ones((t, k)),
        prob_best=np.asarray(prob_best, dtype=float),
        final_alloc=np.full((t, k), 1.0 / k),
        alloc_history=np.full((t, j, k), 1.0 / k),
        stop_look=np.asarray(stop_look, dtype=np.int16),
        stop_reason=np.asarray(stop_reason, dtype=np.int8),
        final_control=np.asarray(final_control, dtype=np.int8),
    )


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


@pytest.fixture(scope="module")
def batch():
    return make_results(
        N, STATUS, DECLARED, PROB_BEST, POST_MEAN,
        stop_look=[5, 16, 16, 8],
        stop_reason=[STOP_SUPERIORITY, STOP_MAX, STOP_MAX, STOP_DROPPED],
        final_control=[3, 2, 0, 1],
        responders=RESPONDERS,
    )


@pytest.fixture(scope="module")
def arms(batch, spec):
    return metrics.arm_table(batch, spec)


@pytest.fixture(scope="module")
def trial(batch, spec):
    return metrics.trial_table(batch, spec).loc["trial"]


def se(p, t=4):
    return math.sqrt(p * (1 - p) / t)


# --------------------------------------------------------------------------- truth


def test_truth_with_control_lower_is_better(spec):
    tr = metrics.truth(spec)
    assert list(tr.index) == ["A", "B", "C", "D"]
    assert tr["true_rate"].tolist() == pytest.approx([0.25, 0.30, 0.22, 0.19])
    assert tr["improvement"].tolist() == pytest.approx([0.0, -0.05, 0.03, 0.06])
    assert tr["truly_better"].tolist() == [False, False, True, True]  # C reaches delta exactly
    assert tr["truly_null"].tolist() == [False, True, False, False]


def test_truth_with_control_higher_is_better(spec):
    tr = metrics.truth(variant(spec, direction="higher_is_better"))
    assert tr["improvement"].tolist() == pytest.approx([0.0, 0.05, -0.03, -0.06])
    assert tr["truly_better"].tolist() == [False, True, False, False]
    assert tr["truly_null"].tolist() == [False, False, True, True]


def test_truth_grey_zone_and_zero_delta(spec):
    tr = metrics.truth(variant(spec, delta=0.04))  # C is better by .03 < .04: neither better nor null
    assert tr["truly_better"].tolist() == [False, False, False, True]
    assert tr["truly_null"].tolist() == [False, True, False, False]
    tied = metrics.truth(variant(spec, delta=0.0, rates={"B": 0.25}))  # B ties the control: null, not better
    assert tied["truly_better"].tolist() == [False, False, True, True]
    assert tied["truly_null"].tolist() == [False, True, False, False]


def test_truth_without_control(spec):
    lower = metrics.truth(variant(spec, control=None))
    # improvement = margin over the best other arm
    assert lower["improvement"].tolist() == pytest.approx([-0.06, -0.11, -0.03, 0.03])
    assert lower["truly_better"].tolist() == [False, False, False, True]
    assert lower["truly_null"].tolist() == [True, True, True, False]
    higher = metrics.truth(variant(spec, control=None, direction="higher_is_better"))
    assert higher["truly_better"].tolist() == [False, True, False, False]
    assert higher["truly_null"].tolist() == [True, False, True, True]
    grey = metrics.truth(variant(spec, control=None, delta=0.04))  # D best by only .03
    assert grey["truly_better"].tolist() == [False] * 4
    assert grey["truly_null"].tolist() == [True, True, True, False]


# --------------------------------------------------------------------------- selection strategies


def test_selection_strategies_on_batch(batch):
    assert metrics.superior_or_none(batch).tolist() == [3, 2, -1, 1]
    assert metrics.best_remaining(batch).tolist() == [3, 2, 3, 1]
    assert metrics.control_if_active(batch).tolist() == [3, 2, 0, 1]


def test_selection_strategies_edge_cases():
    # 3 arms, no control: (0) two superior arms -> higher P(best); (1) everything dropped;
    # (2) nothing superior, prob_best NaN on the dropped arm that would otherwise win;
    # (3) final control declared superior but another arm SUPERIOR too -> the SUPERIOR arm.
    r = make_results(
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
        stop_reason=[STOP_SUPERIORITY, STOP_DROPPED, STOP_MAX, STOP_MAX],
        final_control=[-1, -1, -1, 0],
    )
    assert metrics.superior_or_none(r).tolist() == [1, -1, -1, 2]
    assert metrics.best_remaining(r).tolist() == [1, -1, 2, 2]
    assert metrics.control_if_active(r).tolist() == [1, -1, -1, 2]
    assert set(metrics.SELECTION_STRATEGIES) == {"superior_or_none", "best_remaining", "control_if_active"}


def test_control_declared_superior_but_replaced_is_not_selected():
    # the final control C was declared superior; superior_or_none selects it even when its status is not CONTROL,
    # while control_if_active without a declaration needs status CONTROL.
    r = make_results(
        n=[[10, 10, 10]] * 2,
        status=[[INFERIOR, ACTIVE, INFERIOR], [INFERIOR, ACTIVE, CONTROL]],
        declared=[[0, 0, 1], [0, 0, 0]],
        prob_best=[[NAN, 1.0, NAN], [NAN, 0.4, 0.6]],
        post_mean=np.full((2, 3), 0.2),
        stop_look=[16, 16],
        stop_reason=[STOP_MAX, STOP_MAX],
        final_control=[2, 2],
    )
    assert metrics.superior_or_none(r).tolist() == [2, -1]
    assert metrics.control_if_active(r).tolist() == [2, 2]
    assert metrics.best_remaining(r).tolist() == [2, 2]


# --------------------------------------------------------------------------- arm table


def test_arm_table_proportions(arms):
    assert list(arms.index) == ["A", "B", "C", "D"]
    assert arms["p_superior"].tolist() == [0.0, 0.25, 0.25, 0.25]
    assert arms["p_superior_mcse"].tolist() == pytest.approx([0.0, se(0.25), se(0.25), se(0.25)])
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
    # the textbook case: p = 0.5 over 4 trials has MCSE sqrt(.25/4) = 0.25
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
    mcse = arms[[c + "_mcse" for c in q_cols]].to_numpy()
    assert np.isfinite(mcse).all() and (mcse >= 0).all()
    assert (np.diff(arms[q_cols].to_numpy(), axis=1) >= 0).all()


def test_arm_table_shares_responders_selection(arms):
    assert arms.loc["A", "alloc_share"] == pytest.approx((0.2 + 0.3 + 0.2 + 1 / 3) / 4)
    assert arms["alloc_share"].sum() == pytest.approx(1.0)
    assert arms.loc["B", "mean_responders"] == pytest.approx((15 + 30 + 30 + 52) / 4)
    assert arms["p_selected_best_remaining"].tolist() == [0.0, 0.25, 0.25, 0.5]
    assert arms["p_selected_superior_or_none"].tolist() == [0.0, 0.25, 0.25, 0.25]
    assert arms["p_selected_control_if_active"].tolist() == [0.25, 0.25, 0.25, 0.25]
    assert arms["truly_better"].tolist() == [False, False, True, True]
    assert arms["true_rate"].tolist() == pytest.approx([0.25, 0.30, 0.22, 0.19])


def test_arm_table_every_metric_has_mcse(arms):
    value_cols = [c for c in arms.columns if not c.endswith("_mcse")]
    truth_cols = ["true_rate", "improvement", "truly_better", "truly_null"]
    for c in value_cols:
        if c not in truth_cols:
            assert f"{c}_mcse" in arms.columns, c
            assert list(arms.columns).index(f"{c}_mcse") == list(arms.columns).index(c) + 1


def test_arm_table_rejects_wrong_arm_count(spec):
    r = make_results(
        n=[[1, 1, 1]], status=[[ACTIVE] * 3], declared=[[0, 0, 0]], prob_best=[[0.3, 0.3, 0.4]],
        post_mean=[[0.2] * 3], stop_look=[16], stop_reason=[STOP_MAX], final_control=[-1],
    )
    with pytest.raises(ValueError, match="3 arms"):
        metrics.arm_table(r, spec)


# --------------------------------------------------------------------------- trial table


def test_trial_table_decisions(trial):
    assert trial["n_trials"] == 4
    assert trial["p_any_superior"] == 0.75
    assert trial["p_any_superior_mcse"] == pytest.approx(se(0.75))
    assert trial["p_stopped_early"] == 0.5
    assert trial["p_stopped_early_mcse"] == pytest.approx(0.25)
    assert trial["p_inconclusive_at_max"] == 0.25  # T1 ran to max but C was declared superior on the way
    assert [trial[f"p_stop_{s}"] for s in STOP_NAMES] == [0.5, 0.25, 0.0, 0.25]
    assert trial["p_stop_equivalence_mcse"] == 0.0


def test_trial_table_sample_size(trial):
    totals = [500, 1000, 1000, 600]
    assert trial["mean_n_total"] == 775.0
    assert trial["sd_n_total"] == pytest.approx(np.std(totals, ddof=1))
    assert trial["mean_n_total_mcse"] == pytest.approx(np.std(totals, ddof=1) / 2)
    assert trial["n_total_q50"] == 800.0
    assert trial["n_total_q50_mcse"] == pytest.approx((1000 - 500) / 3.92)


def test_fwer_and_power(trial):
    assert trial["fwer"] == 0.25  # B (truly worse than A) declared superior in T3
    assert trial["fwer_mcse"] == pytest.approx(se(0.25))
    assert trial["power"] == 0.5  # D in T0, C in T1
    assert trial["power_mcse"] == pytest.approx(0.25)


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


def test_idp_higher_is_better(batch, spec):
    # same selections, rates .25/.30/.22/.19 with higher better: best .30 (B), worst .19 (D)
    t = metrics.trial_table(batch, variant(spec, direction="higher_is_better")).loc["trial"]
    assert t["idp_best_remaining"] == pytest.approx(100 * (0.225 - 0.19) / 0.11)
    assert t["fwer"] == 0.5  # C and D are now null: declared in T0 and T1
    assert t["power"] == 0.25  # B declared in T3


def test_nan_when_undefined(batch, spec):
    all_better = metrics.trial_table(batch, variant(spec, rates={"B": 0.20, "C": 0.20, "D": 0.20})).loc["trial"]
    assert math.isnan(all_better["fwer"]) and math.isnan(all_better["fwer_mcse"])
    assert all_better["power"] == 0.75
    all_equal = metrics.trial_table(batch, variant(spec, rates={"B": 0.25, "C": 0.25, "D": 0.25})).loc["trial"]
    assert math.isnan(all_equal["power"]) and math.isnan(all_equal["power_mcse"])
    assert all_equal["fwer"] == 0.75
    assert math.isnan(all_equal["idp_best_remaining"])
    assert all_equal["bias_best_remaining"] == pytest.approx((-0.10 - 0.05 - 0.04 + 0.01) / 4)


def test_no_selection_at_all_gives_nan_accuracy(spec):
    r = make_results(
        n=[[10, 10, 10, 10]] * 2,
        status=[[INFERIOR, FUTILE, INFERIOR, EQUIVALENT]] * 2,
        declared=np.zeros((2, 4)),
        prob_best=np.full((2, 4), NAN),
        post_mean=np.full((2, 4), 0.2),
        stop_look=[2, 3],
        stop_reason=[STOP_EQUIVALENCE, STOP_DROPPED],
        final_control=[-1, -1],
    )
    t = metrics.trial_table(r, spec).loc["trial"]
    for s in metrics.SELECTION_STRATEGIES:
        assert t[f"p_no_selection_{s}"] == 1.0
        assert math.isnan(t[f"bias_{s}"]) and math.isnan(t[f"rmse_{s}"]) and math.isnan(t[f"idp_{s}"])
    assert t["p_stopped_early"] == 1.0
    assert t["p_inconclusive_at_max"] == 0.0
    assert t["fwer"] == 0.0


def test_mcse_helpers():
    assert metrics._proportion(np.array([1, 0, 1, 0])) == (0.5, 0.25)
    m, s = metrics._mean([1.0, 3.0, NAN])  # NaN ignored
    assert (m, s) == (2.0, pytest.approx(1.0))
    assert math.isnan(metrics._mean([5.0])[1])

    def stat(kind, x):
        s = _Stat(kind)
        s.add(x)
        return s

    assert stat("mean", [1.0, 3.0]).sd() == (pytest.approx(math.sqrt(2)), pytest.approx(1.0))
    q, qse = stat("dist", np.arange(1, 101)).quantile(0.5)
    # ranks floor(50 - 9.8) = 40 .. ceil(50 + 9.8) = 60 -> (60 - 40) / 3.92
    assert q == 50.5 and qse == pytest.approx(20 / 3.92)
    q, qse = stat("dist", [7]).quantile(0.95)
    assert (q, qse) == (7.0, 0.0)
    r, rse = stat("rmse", [0.1, -0.1, 0.1]).rmse()
    assert r == pytest.approx(0.1) and rse == 0.0


# --------------------------------------------------------------------------- frames, files, table


def test_summary_frame(batch, spec):
    sf = metrics.summary_frame(batch, spec)
    assert len(sf) == 5
    assert sf["level"].tolist() == ["arm"] * 4 + ["trial"]
    assert sf["arm"].tolist() == ["A", "B", "C", "D", ""]
    assert list(sf.columns[:2]) == ["level", "arm"]
    mcse = [c for c in sf.columns if c.endswith("_mcse")]
    assert "p_superior_mcse" in mcse and "fwer_mcse" in mcse and "idp_best_remaining_mcse" in mcse
    assert math.isnan(sf.loc[4, "p_superior"]) and math.isnan(sf.loc[0, "fwer"])
    assert sf.loc[4, "fwer"] == 0.25 and sf.loc[3, "p_selected_best_remaining"] == 0.5


def test_trials_frame(batch, spec):
    tf = metrics.trials_frame(batch, spec)
    assert len(tf) == 4
    assert tf["trial"].tolist() == [0, 1, 2, 3]
    assert tf["n_total"].tolist() == [500, 1000, 1000, 600]
    assert isinstance(tf["stop_reason"].dtype, pd.CategoricalDtype)
    assert tf["stop_reason"].tolist() == [STOP_NAMES[c] for c in (STOP_SUPERIORITY, STOP_MAX, STOP_MAX, STOP_DROPPED)]
    assert list(tf["stop_reason"].cat.categories) == list(STOP_NAMES)
    assert tf["final_control"].tolist() == ["D", "C", "A", "B"]
    assert isinstance(tf["status_B"].dtype, pd.CategoricalDtype)
    assert list(tf["status_B"].cat.categories) == list(STATUS_NAMES)
    assert tf["status_B"].tolist() == ["inferior", "futile", "equivalent", "control"]
    assert tf["declared_superior_D"].tolist() == [True, False, False, False]
    assert tf["n_C"].tolist() == [150, 400, 300, 100]
    assert tf["responders_D"].tolist() == [38, 38, 76, 19]
    assert tf["post_mean_A"].tolist() == pytest.approx([0.26, 0.27, 0.25, 0.28])
    assert math.isnan(tf.loc[0, "prob_best_A"]) and tf.loc[2, "prob_best_D"] == 0.6


def test_trials_frame_without_control_has_empty_final_control(spec):
    r = make_results(
        n=[[10, 10, 10, 10]], status=[[ACTIVE] * 4], declared=[[0, 0, 0, 0]], prob_best=[[0.25] * 4],
        post_mean=[[0.2] * 4], stop_look=[16], stop_reason=[STOP_MAX], final_control=[-1],
    )
    tf = metrics.trials_frame(r, variant(spec, control=None))
    assert tf["final_control"].tolist() == [""]


def test_writers(batch, spec, tmp_path):
    p = metrics.write_summary(batch, spec, tmp_path / "summary.csv")
    back = pd.read_csv(p, keep_default_na=False, na_values=[""])
    assert len(back) == 5 and back.loc[4, "fwer"] == 0.25
    p = metrics.write_trials(batch, spec, tmp_path / "trials.csv")
    assert pd.read_csv(p)["stop_reason"].tolist() == [STOP_NAMES[c] for c in (STOP_SUPERIORITY, STOP_MAX, STOP_MAX, STOP_DROPPED)]


def test_format_table(batch, spec):
    text = metrics.format_table(batch, spec, digits=3)
    lines = text.splitlines()
    assert any(l.startswith("p_superior") and "0.250 ± 0.217" in l for l in lines)
    assert any(l.startswith("mean_n") and "200.0 ± 40.8" in l for l in lines)
    assert any(l.startswith("true_rate") and "0.190" in l for l in lines)
    assert "A (control)" in text
    assert any(l.startswith("fwer") and l.endswith("0.250 ± 0.217") for l in lines)
    assert any(l.startswith("idp_best_remaining") and "68.2 ± 23.6" in l for l in lines)
    assert any(l.startswith("power") and "0.500 ± 0.250" in l for l in lines)
    assert len(lines) < 30


def test_trials_parquet_keeps_categories(batch, spec, tmp_path):
    pytest.importorskip("pyarrow")
    p = metrics.write_trials(batch, spec, tmp_path / "trials.parquet")
    back = pd.read_parquet(p)
    assert isinstance(back["status_A"].dtype, pd.CategoricalDtype)
    assert back["final_control"].tolist() == ["D", "C", "A", "B"]
    assert back["n_total"].tolist() == [500, 1000, 1000, 600]
