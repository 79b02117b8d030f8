"""The final Bayesian analysis of one trial (platform_sim.bayes.final_analysis).

1. Parameter recovery: patient-level data simulated from the model with known parameters and
   many patients per cell; every posterior mean lies within 4 posterior sd of the truth (the
   shrinkage of the interactions moves a mean by well under one sd at these sizes), for a
   binary endpoint (three arms, three groups, one empty arm x group cell) and a survival
   endpoint with censoring (control not listed first).
   The prior on the interactions is checked in both sampling forms (centred, non-centred).
2. Output: the effects table's rows, labels and tallies, the NetCDF round trip and the forest
   plot's rows and labels.
3. ``diagnostics`` on hand-built InferenceData: chains that disagree, divergences and
   autocorrelated chains are flagged; independent draws are not.
4. Input validation (no PyMC needed).
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

from platform_sim.bayes.final_analysis import (
    ESS_PER_CHAIN_MIN,
    R_HAT_MAX,
    FinalAnalysisPrior,
    cell_table,
    diagnostics,
    fit_final_analysis,
    forest_plot,
    save_netcdf,
)
from platform_sim.config import ConfigError

SAMPLER = {"draws": 300, "tune": 300, "chains": 2, "cores": 1, "seed": 11}
Z = 4.0  # posterior sd allowed between a posterior mean and the truth

# binary truth: control log odds per group and the log odds ratios of the arms by group
BINARY_ARMS = ["control", "A", "B"]
BINARY_GROUPS = ["kras+", "stk11+", "other"]
CONTROL_LOGIT = {"kras+": -1.2, "stk11+": -1.8, "other": -0.9}
LOG_OR = {
    ("A", "kras+"): 0.9,
    ("A", "stk11+"): 0.1,
    ("A", "other"): 0.4,
    ("B", "kras+"): -0.2,
    ("B", "stk11+"): 0.5,
}
EMPTY_CELL = ("B", "other")  # arm B enrolled nobody in this group
BINARY_N = 500  # patients per non-empty cell

# survival truth: control hazard per month per group, log hazard ratios
SURVIVAL_ARMS = ["X", "SOC"]
SURVIVAL_GROUPS = ["pos", "neg"]
CONTROL_HAZARD = {"pos": 0.25, "neg": 0.15}
LOG_HR = {("X", "pos"): -0.7, ("X", "neg"): -0.1}
SURVIVAL_N = 600


def _binary_data(seed: int = 2024) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frames = []
    for arm in BINARY_ARMS:
        for group in BINARY_GROUPS:
            if (arm, group) == EMPTY_CELL:
                continue
            logit = CONTROL_LOGIT[group] + LOG_OR.get((arm, group), 0.0)
            response = (rng.random(BINARY_N) < expit(logit)).astype(int)
            frames.append(pd.DataFrame({"arm": arm, "group": group, "response": response}))
    return pd.concat(frames, ignore_index=True).sample(frac=1.0, random_state=1, ignore_index=True)


def _survival_data(seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frames = []
    for arm in SURVIVAL_ARMS:
        for group in SURVIVAL_GROUPS:
            hazard = CONTROL_HAZARD[group] * np.exp(LOG_HR.get((arm, group), 0.0))
            pfs = rng.exponential(1.0 / hazard, SURVIVAL_N)
            follow_up = rng.uniform(2.0, 18.0, SURVIVAL_N)  # administrative censoring
            frames.append(
                pd.DataFrame(
                    {
                        "arm": arm,
                        "group": group,
                        "time": np.minimum(pfs, follow_up),
                        "event": (pfs <= follow_up).astype(int),
                    }
                )
            )
    return pd.concat(frames, ignore_index=True)


@pytest.fixture(scope="module")
def binary_fit():
    pytest.importorskip("pymc")
    data = _binary_data()
    return data, fit_final_analysis(
        data, arms=BINARY_ARMS, groups=BINARY_GROUPS, control="control", endpoint="binary", **SAMPLER
    )


@pytest.fixture(scope="module")
def survival_fit():
    pytest.importorskip("pymc")
    data = _survival_data()
    return data, fit_final_analysis(
        data, arms=SURVIVAL_ARMS, groups=SURVIVAL_GROUPS, control="SOC", endpoint="survival", **SAMPLER
    )


def _assert_recovered(posterior, name: str, truth: float, **sel) -> None:
    draws = posterior[name].sel(sel).values.ravel() if sel else posterior[name].values.ravel()
    mean, sd = draws.mean(), draws.std(ddof=1)
    assert abs(mean - truth) < Z * sd, f"{name}{sel}: posterior mean {mean:.3f} (sd {sd:.3f}), truth {truth:.3f}"


# ---------------------------------------------------------------------------------------------
# 1. parameter recovery


def test_binary_recovers_known_parameters(binary_fit):
    _, fit = binary_fit
    post = fit.idata.posterior
    assert fit.divergences == 0, fit.warnings
    assert fit.reference_group == "kras+"
    _assert_recovered(post, "alpha", CONTROL_LOGIT["kras+"])
    for group in BINARY_GROUPS[1:]:
        _assert_recovered(post, "delta", CONTROL_LOGIT[group] - CONTROL_LOGIT["kras+"], other_group=group)
    for (arm, group), truth in LOG_OR.items():
        _assert_recovered(post, "effect", truth, arm=arm, group=group)
    # beta is the arm's equally weighted average over the groups where it has patients
    for arm in ("A", "B"):
        average = np.mean([v for (a, _), v in LOG_OR.items() if a == arm])
        _assert_recovered(post, "beta", average, arm=arm)
    # the deviations sum to zero over those groups
    observed = [g for g in BINARY_GROUPS if ("B", g) != EMPTY_CELL]
    np.testing.assert_allclose(post["gamma"].sel(arm="B", group=observed).sum("group"), 0.0, atol=1e-9)
    np.testing.assert_allclose(post["gamma"].sel(arm="A").sum("group"), 0.0, atol=1e-9)
    # the posterior is much narrower than the prior (the test has power)
    assert float(post["effect"].sel(arm="A", group="kras+").std()) < 0.1 * FinalAnalysisPrior().effect_sd


def test_survival_recovers_known_parameters_with_censoring(survival_fit):
    data, fit = survival_fit
    post = fit.idata.posterior
    assert 0.1 < 1.0 - data["event"].mean() < 0.9  # censoring is present
    assert fit.divergences == 0, fit.warnings
    assert fit.control == "SOC"
    assert list(post.coords["arm"].values) == ["X"]
    _assert_recovered(post, "alpha", np.log(CONTROL_HAZARD["pos"]))
    _assert_recovered(post, "delta", np.log(CONTROL_HAZARD["neg"] / CONTROL_HAZARD["pos"]), other_group="neg")
    for (arm, group), truth in LOG_HR.items():
        _assert_recovered(post, "effect", truth, arm=arm, group=group)
    row = fit.effects.set_index("group").loc["pos"]
    assert row["prob_benefit"] == pytest.approx(float((post["effect"].sel(arm="X", group="pos") < 0).mean()))
    assert row["ratio"] == pytest.approx(np.exp(float(post["effect"].sel(arm="X", group="pos").median())))
    # the tallies are the data's
    exposure = fit.idata.constant_data["exposure"].sel(all_arms="X", group="neg").item()
    mask = (data["arm"] == "X") & (data["group"] == "neg")
    assert exposure == pytest.approx(data.loc[mask, "time"].sum())


def test_auto_parameterization_follows_the_information_in_the_cells(binary_fit, survival_fit):
    # 500 patients per binary cell: a log odds ratio's standard error is about 0.17, above
    # CENTRED_SE_FRACTION * tau_sd, so non-centred; 600 per survival cell with ~75% events:
    # about 0.07, centred
    assert "gamma_z" in binary_fit[1].idata.posterior and "gamma_contrast" not in binary_fit[1].idata.posterior
    assert "gamma_contrast" in survival_fit[1].idata.posterior and "gamma_z" not in survival_fit[1].idata.posterior


def test_prior_on_interactions_is_the_documented_one_in_both_forms():
    """Given tau, gamma / tau is Normal with covariance I - J / G_k over an arm's G_k groups with
    patients (a zero-sum vector), variance 1 + 1 / G_k (a new group's deviation) in a group
    without, and independent between arms and between those two parts. Checked on prior draws
    of the centred and the non-centred forms: as they share the likelihood, the same prior means
    the same posterior."""
    pm = pytest.importorskip("pymc")
    from platform_sim.bayes.final_analysis import build_model

    cells = cell_table(_binary_data(), arms=BINARY_ARMS, groups=BINARY_GROUPS, control="control", endpoint="binary")
    with_patients = {"A": BINARY_GROUPS, "B": [g for g in BINARY_GROUPS if ("B", g) != EMPTY_CELL]}
    labels = [(a, g) for a in ("A", "B") for g in BINARY_GROUPS]
    expected = np.zeros((len(labels), len(labels)))
    for i, (arm_i, group_i) in enumerate(labels):
        for j, (arm_j, group_j) in enumerate(labels):
            if arm_i != arm_j:
                continue
            groups = with_patients[arm_i]
            if group_i in groups and group_j in groups:
                expected[i, j] = float(i == j) - 1 / len(groups)
            elif i == j:
                expected[i, j] = 1 + 1 / len(groups)
    draws = 4000
    # sd of a sample covariance of normal draws: sqrt((s_ii s_jj + s_ij^2) / draws)
    allowed = Z * np.sqrt((np.outer(np.diag(expected), np.diag(expected)) + expected**2) / draws)
    for form in ("centred", "non-centred"):
        model, _ = build_model(cells, control="control", endpoint="binary", parameterization=form)
        prior = pm.sample_prior_predictive(draws=draws, model=model, var_names=["gamma", "tau"], random_seed=8).prior
        ratio = (prior["gamma"] / prior["tau"]).stack(sample=("chain", "draw"))
        values = np.array([ratio.sel(arm=a, group=g).values for a, g in labels])
        covariance = values @ values.T / draws  # the mean is 0 by construction
        assert np.all(np.abs(covariance - expected) < allowed + 1e-12), (form, np.round(covariance, 3))
        for arm, groups in with_patients.items():
            np.testing.assert_allclose(ratio.sel(arm=arm, group=groups).sum("group"), 0.0, atol=1e-9)


def test_a_single_group_has_no_interactions():
    pytest.importorskip("pymc")
    data = _binary_data().assign(group="all")
    fit = fit_final_analysis(
        data, arms=BINARY_ARMS, groups=["all"], control=None, endpoint="binary", draws=100, tune=100, chains=2, seed=1
    )
    post = fit.idata.posterior
    assert "tau" not in post and "gamma" not in post and "delta" not in post
    np.testing.assert_array_equal(post["effect"].sel(group="all").values, post["beta"].values)
    assert list(zip(fit.effects["arm"], fit.effects["group"])) == [("A", "all"), ("B", "all")]
    assert fit.effects["n"].tolist() == [3 * BINARY_N, 2 * BINARY_N]


# ---------------------------------------------------------------------------------------------
# 2. output


def test_effects_table_rows_and_tallies(binary_fit):
    data, fit = binary_fit
    effects = fit.effects
    expected = [(a, g) for a in BINARY_ARMS[1:] for g in BINARY_GROUPS]
    assert list(zip(effects["arm"], effects["group"])) == expected
    for column in (
        "n",
        "events",
        "n_control",
        "events_control",
        "mean",
        "sd",
        "lower",
        "upper",
        "mcse_mean",
        "prob_benefit",
        "mcse_prob_benefit",
        "ratio",
        "ratio_lower",
        "ratio_upper",
    ):
        assert column in effects.columns
    counts = data.groupby(["arm", "group"])["response"].agg(["size", "sum"])
    for row in effects.itertuples():
        if (row.arm, row.group) == EMPTY_CELL:
            assert row.n == 0 and row.events == 0
        else:
            assert (row.n, row.events) == tuple(counts.loc[(row.arm, row.group)])
        assert (row.n_control, row.events_control) == tuple(counts.loc[("control", row.group)])
        assert row.lower < row.mean < row.upper
        assert row.ratio_lower == pytest.approx(np.exp(row.lower))
    # an empty cell is informed by the hierarchical prior only: far wider than its neighbours
    sd = effects.set_index(["arm", "group"])["sd"]
    assert sd[EMPTY_CELL] > 3 * sd[("B", "kras+")]
    assert set(fit.summary.index) >= {"alpha", "tau", "beta[A]", "delta[stk11+]", "effect[B, other]"}
    assert {"r_hat", "ess_bulk", "ess_tail"} <= set(fit.summary.columns)
    assert fit.max_r_hat == pytest.approx(fit.summary["r_hat"].max(), abs=0.005)  # summary rounds to 2 decimals


def test_netcdf_round_trip(binary_fit, tmp_path):
    import arviz as az

    _, fit = binary_fit
    path = save_netcdf(fit, tmp_path / "out" / "final.nc")
    assert path.exists()
    assert [p.name for p in path.parent.iterdir()] == ["final.nc"]  # no temporary file left behind
    back = az.from_netcdf(path)
    np.testing.assert_array_equal(back.posterior["effect"].values, fit.idata.posterior["effect"].values)
    assert list(back.posterior["effect"].coords["group"].values) == BINARY_GROUPS
    assert back.posterior.attrs["endpoint"] == "binary" and back.posterior.attrs["control"] == "control"
    np.testing.assert_array_equal(back.constant_data["patients"].values, fit.idata.constant_data["patients"].values)


def test_forest_plot_rows_labels_and_axis(binary_fit):
    import matplotlib.pyplot as plt

    _, fit = binary_fit
    figure = forest_plot(fit)
    try:
        ax = figure.axes[0]
        labels = [t.get_text() for t in ax.get_yticklabels()]
        assert len(labels) == len(fit.effects)
        assert sorted(labels) == sorted(
            f"{r.arm} | {r.group} ({'prior only' if r.n == 0 else f'n = {r.n}'})" for r in fit.effects.itertuples()
        )
        assert ax.get_xlabel() == "log odds ratio vs control (control)"
        assert any(np.allclose(line.get_xdata(), 0.0) for line in ax.lines)
    finally:
        plt.close(figure)


# ---------------------------------------------------------------------------------------------
# 3. diagnostics on hand-built draws


def _idata(posterior: dict, diverging=None):
    import arviz as az

    dims = {"beta": ["arm"]}
    coords = {"arm": ["A", "B"]}
    stats = None if diverging is None else {"diverging": diverging}
    return az.from_dict(posterior=posterior, sample_stats=stats, dims=dims, coords=coords)


def test_diagnostics_silent_on_independent_draws():
    pytest.importorskip("arviz")
    rng = np.random.default_rng(0)
    idata = _idata(
        {"alpha": rng.normal(size=(2, 1000)), "beta": rng.normal(size=(2, 1000, 2))}, np.zeros((2, 1000), bool)
    )
    checks = diagnostics(idata, ["alpha", "beta"])
    assert checks.warnings == []
    assert checks.divergences == 0
    assert checks.max_r_hat < R_HAT_MAX
    assert checks.min_ess_bulk > 2 * ESS_PER_CHAIN_MIN


def test_diagnostics_flags_chains_that_disagree():
    pytest.importorskip("arviz")
    rng = np.random.default_rng(1)
    beta = rng.normal(size=(2, 1000, 2))
    beta[1, :, 1] += 3.0  # chain 2 of beta[B] sits elsewhere
    checks = diagnostics(_idata({"alpha": rng.normal(size=(2, 1000)), "beta": beta}), ["alpha", "beta"])
    assert checks.max_r_hat > 1.5
    (message,) = [w for w in checks.warnings if w.startswith("r_hat")]
    assert "beta[B]" in message and "beta[A]" not in message and "alpha" not in message


def test_diagnostics_counts_divergences():
    pytest.importorskip("arviz")
    rng = np.random.default_rng(2)
    diverging = np.zeros((2, 1000), bool)
    diverging[0, [5, 50, 500]] = True
    diverging[1, 999] = True
    checks = diagnostics(_idata({"alpha": rng.normal(size=(2, 1000))}, diverging), ["alpha"])
    assert checks.divergences == 4
    assert any(w.startswith("4 divergent transitions") for w in checks.warnings)


def test_diagnostics_flags_low_effective_sample_size():
    pytest.importorskip("arviz")
    rng = np.random.default_rng(3)
    chains = np.empty((2, 1000))
    chains[:, 0] = rng.normal(size=2)
    for t in range(1, 1000):  # AR(1) with lag-1 correlation 0.98: ESS about 1000 * 0.01
        chains[:, t] = 0.98 * chains[:, t - 1] + np.sqrt(1 - 0.98**2) * rng.normal(size=2)
    checks = diagnostics(_idata({"alpha": chains}), None)
    assert checks.min_ess_bulk < 2 * ESS_PER_CHAIN_MIN
    assert any(w.startswith("ess_bulk") and "alpha" in w for w in checks.warnings)


# ---------------------------------------------------------------------------------------------
# 4. input validation


def _problems(data, **overrides) -> str:
    arguments = {"arms": ["C", "A"], "groups": ["g1", "g2"], "control": "C", "endpoint": "binary"}
    arguments.update(overrides)
    with pytest.raises(ConfigError) as caught:
        fit_final_analysis(data, **arguments)
    return str(caught.value)


BINARY_OK = pd.DataFrame({"arm": ["C", "C", "A", "A"], "group": ["g1", "g2", "g1", "g2"], "response": [0, 1, 1, 0]})
SURVIVAL_OK = pd.DataFrame({"arm": ["C", "A"], "group": ["g1", "g1"], "time": [3.5, 7.0], "event": [1, 0]})


def test_importing_the_module_does_not_import_pymc():
    code = "import sys, platform_sim.bayes.final_analysis; print('pymc' in sys.modules, 'arviz' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "False"]


def test_cell_table_tallies_by_arm_and_group():
    cells = cell_table(BINARY_OK, arms=["C", "A"], groups=["g1", "g2", "g3"], control=None, endpoint="binary")
    assert list(zip(cells["arm"], cells["group"])) == [(a, g) for a in ("C", "A") for g in ("g1", "g2", "g3")]
    assert cells["patients"].tolist() == [1, 1, 0, 1, 1, 0]
    assert cells["events"].tolist() == [0, 1, 0, 1, 0, 0]
    cells = cell_table(SURVIVAL_OK, arms=["C", "A"], groups=["g1"], control="C", endpoint="survival")
    assert cells["exposure"].tolist() == [3.5, 7.0]


@pytest.mark.parametrize(
    ("data", "overrides", "expected"),
    [
        (BINARY_OK.drop(columns="response"), {}, "data: is missing column(s) response"),
        (
            SURVIVAL_OK.drop(columns="event"),
            {"endpoint": "survival", "groups": ["g1"]},
            "data: is missing column(s) event",
        ),
        (BINARY_OK.assign(arm=["C", "C", "A", "D"]), {}, "data.arm: has values not listed in arms (C, A) (got ['D'])"),
        (
            BINARY_OK.assign(group=["g1", "g2", "g1", "g9"]),
            {},
            "data.group: has values not listed in groups (g1, g2) (got ['g9'])",
        ),
        (BINARY_OK.assign(response=[0, 1, 2, 0]), {}, "data.response: must be 0 or 1 (1 rows are not) (got 2)"),
        (BINARY_OK.assign(response=[0, 1, np.nan, 0]), {}, "data.response: must be 0 or 1"),
        (
            SURVIVAL_OK.assign(time=[3.5, 0.0]),
            {"endpoint": "survival", "groups": ["g1"]},
            "data.time: must be a positive number of months (1 rows are not) (got 0.0)",
        ),
        (
            SURVIVAL_OK.assign(time=[np.inf, 1.0]),
            {"endpoint": "survival", "groups": ["g1"]},
            "data.time: must be a positive number of months",
        ),
        (
            SURVIVAL_OK.assign(event=[1, -1]),
            {"endpoint": "survival", "groups": ["g1"]},
            "data.event: must be 0 or 1 (1 rows are not) (got -1)",
        ),
        (
            BINARY_OK,
            {"arms": ["C", "A", "B"]},
            "data.arm: has no patients on listed arm(s); leave them out of arms (got ['B'])",
        ),
        (BINARY_OK, {"control": "X"}, "control: is not one of the arms (C, A) (got 'X')"),
        (BINARY_OK, {"endpoint": "orr"}, "endpoint: must be one of binary, survival (got 'orr')"),
        (BINARY_OK, {"arms": ["C"]}, "arms: needs a control and at least one other arm"),
        (BINARY_OK, {"groups": ["g1", "g1", "g2"]}, "groups: names must be unique (got ['g1'])"),
        (BINARY_OK.iloc[:0], {}, "data: has no patients"),
        (BINARY_OK, {"draws": 0}, "draws: must be a whole number >= 1 (got 0)"),
        (BINARY_OK, {"target_accept": 1.0}, "target_accept: must lie strictly between 0 and 1 (got 1.0)"),
    ],
)
def test_bad_input_is_named(data, overrides, expected):
    assert expected in _problems(data, **overrides)


def test_every_problem_is_reported_at_once():
    bad = BINARY_OK.assign(arm=["C", "C", "A", "D"], response=[0, 1, 5, 0])
    message = _problems(bad, draws=-1)
    assert "draws:" in message and "data.arm:" in message and "data.response:" in message


def test_bad_prior_is_named():
    with pytest.raises(ConfigError, match=r"prior\.tau_sd: must be a positive number \(got 0\)"):
        FinalAnalysisPrior(tau_sd=0)
