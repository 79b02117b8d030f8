"""Scenario suites (platform_sim.config.suites) and the shipped suite ``core``.

The structure of each core scenario is checked from the scenario itself, with the exact
computations the simulator uses for its truth: the distribution of true profiles among randomizable
patients (strata.reported_distribution) and each treatment's exact rate over a set of profiles
(OutcomesModel.expected) or per profile (OutcomesModel.probability). No simulation.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import yaml

from platform_sim.config import (
    ConfigError,
    Scenario,
    Suite,
    expand_scenarios,
    load_file,
    load_suite,
    resolve,
    shipped_names,
    shipped_suites,
)
from platform_sim.outcomes import VirtualPatients
from platform_sim.spec import Spec
from platform_sim.strata import reported_distribution

ROOT = Path(__file__).resolve().parents[1]
CORE = load_suite("core")
DESIGNS = ["allcomer_fixed", "allcomer_rar", "lungmap_umbrella", "battle_stratified_rar", "adaptive_enrichment"]
# the designs that use every treatment of the PIONeeR-like scenarios
FULL_TREATMENT_DESIGNS = ["pioneer_rar", "pioneer_platform"]
ENDPOINT = "dcr12"  # the endpoint every suite design analyses
EXACT = 1e-12


# --------------------------------------------------------------------------- loading


def test_core_suite_loads_with_the_null_first():
    assert "core" in shipped_suites()
    assert CORE.name == "core"
    assert CORE.scenarios[0] == CORE.null_scenario == "pioneer_null"
    assert len(CORE.scenarios) == 7 and len(set(CORE.scenarios)) == 7
    assert CORE.designs == DESIGNS
    assert all(name in shipped_names("scenario") for name in CORE.scenarios)
    assert len(CORE.description.split()) > 100  # a paragraph on what each scenario asks
    assert all(name in CORE.description for name in CORE.scenarios)
    assert load_suite(ROOT / "scenarios" / "suites" / "core.yaml") == CORE


def test_a_suite_file_is_not_a_scenario():
    assert "core" not in shipped_names("scenario")
    with pytest.raises(ConfigError, match="is neither a design"):
        load_file(ROOT / "scenarios" / "suites" / "core.yaml")


def test_expand_scenarios_replaces_each_suite_by_its_scenarios():
    assert expand_scenarios(["trop2_adc", "atm_ceralasertib"]) == ["trop2_adc", "atm_ceralasertib"]
    assert expand_scenarios(["suite:core"]) == CORE.scenarios
    assert expand_scenarios(["trop2_adc", "suite:core", "control_drift"]) == [
        "trop2_adc",
        *CORE.scenarios,
        "control_drift",
    ]
    # a scenario named again is run once, at its first place
    assert expand_scenarios(["mixed_portfolio", "suite:core"]) == ["mixed_portfolio", *CORE.scenarios[:-1]]
    path = str(ROOT / "scenarios" / "suites" / "core.yaml")
    assert expand_scenarios([f"suite:{path}"]) == CORE.scenarios
    assert expand_scenarios([]) == []


def test_expand_scenarios_names_unknown_suites_and_lists_the_shipped_ones():
    with pytest.raises(ConfigError) as err:
        expand_scenarios(["trop2_adc", "suite:cor", "suite:", "suite:nothing"])
    lines = str(err.value).splitlines()
    assert len(lines) == 3, lines
    assert "'cor'" in lines[0] and "suite:cor" in lines[0] and "shipped suites: ['core'" in lines[0]
    assert "needs a suite name" in lines[1] and "core" in lines[1]
    assert "'nothing'" in lines[2]


def write_suite(tmp_path: Path, name: str = "mine.yaml", **changes) -> Path:
    data = yaml.safe_load((ROOT / "scenarios" / "suites" / "core.yaml").read_text())
    data.update(changes)
    data = {k: v for k, v in data.items() if v is not None}
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as err:
        load_suite(path)
    return [p.format() for p in err.value.problems]


def test_a_suite_entry_that_is_no_scenario_or_design_is_named(tmp_path):
    path = write_suite(tmp_path, scenarios=["pioneer_null", "trop2_ad", "missing.yaml"], designs=["allcomer_fixd"])
    found = problems(path)
    assert len(found) == 3, found
    assert found[0].startswith(f"{path}: suite.scenarios[1]: ") and "shipped scenario" in found[0]
    assert "'trop2_ad'" in found[0] and "trop2_adc" in found[0]  # the shipped names are listed
    assert found[1].startswith(f"{path}: suite.scenarios[2]: ") and "'missing.yaml'" in found[1]
    assert found[2].startswith(f"{path}: suite.designs[0]: ") and "'allcomer_fixd'" in found[2]


@pytest.mark.parametrize(
    "changes,field,words",
    [
        ({"null_scenario": "trop2_adc"}, "suite.null_scenario", "is not one of the suite's scenarios"),
        ({"scenarios": ["trop2_adc", "pioneer_null"]}, "suite.null_scenario", "must come first"),
        (
            {"scenarios": ["pioneer_null", "trop2_adc", "trop2_adc"]},
            "suite.scenarios",
            "entry 2, 'trop2_adc', is listed twice",
        ),
        ({"designs": ["allcomer_rar", ""]}, "suite.designs", "entry 1 is empty"),
        ({"designs": []}, "suite.designs", "at least 1 item"),
        ({"description": None}, "suite.description", "Field required"),
        ({"null": "pioneer_null"}, "suite.null", "Extra inputs are not permitted"),
    ],
)
def test_a_malformed_suite_is_reported_at_its_field(tmp_path, changes, field, words):
    path = write_suite(tmp_path, **changes)
    found = problems(path)
    assert any(p.startswith(f"{path}: {field}: ") and words in p for p in found), found


def test_a_suite_file_can_list_scenario_files_next_to_it(tmp_path):
    (tmp_path / "own").mkdir()
    own = tmp_path / "own" / "my_null.yaml"
    own.write_text(
        (ROOT / "scenarios" / "pioneer_null.yaml").read_text().replace("name: pioneer_null", "name: my_null")
    )
    path = write_suite(tmp_path, null_scenario="own/my_null.yaml", scenarios=["own/my_null.yaml", "trop2_adc"])
    suite = load_suite(path)
    assert suite.scenarios == [str(own.resolve()), "trop2_adc"] and suite.null_scenario == str(own.resolve())
    assert resolve(suite.scenarios[0], "scenario") == own.resolve()
    assert expand_scenarios([f"suite:{path}"]) == suite.scenarios


def test_the_suite_model_checks_itself():
    Suite(name="x", description="d", null_scenario="a", scenarios=["a", "b"], designs=["c"])
    with pytest.raises(ValueError, match="entry 1 is empty"):
        Suite(name="x", description="d", null_scenario="a", scenarios=["a", " "], designs=["c"])
    with pytest.raises(ValueError, match="must come first"):
        Suite(name="x", description="d", null_scenario="a", scenarios=["b", "a"], designs=["c"])


# --------------------------------------------------------------------------- every design runs on every scenario


@pytest.mark.parametrize("design", DESIGNS + FULL_TREATMENT_DESIGNS)
@pytest.mark.parametrize("scenario", CORE.scenarios)
def test_every_suite_scenario_validates_with_every_suite_design(design, scenario):
    spec = Spec.load(design, scenario)  # raises ConfigError on any problem of the pair
    if design in DESIGNS:
        assert spec.design.endpoint.name == ENDPOINT
    assert spec.design.endpoint.name in spec.scenario.endpoints
    assert set(spec.scenario.endpoints) == {"pfs", "dcr12", "orr"}
    assert spec.scenario.endpoints["dcr12"].of == "pfs"


# --------------------------------------------------------------------------- the truth of each scenario


class Truth:
    """Exact true values of a scenario among randomizable patients, by true profile."""

    def __init__(self, name: str):
        self.scenario: Scenario = load_file(resolve(name, "scenario"), "scenario")
        self.patients = VirtualPatients(self.scenario)
        self.population = self.patients.population
        self.by = list(self.scenario.yardstick.by or [])
        self.treatments = list(self.scenario.treatments)
        self.control = "docetaxel"
        relevant = set(self.by)
        for ep in ("dcr12", "orr"):
            relevant |= set(self.patients._relevant_markers(ep, self.treatments))
        self.codes, _, self.prob = reported_distribution(self.population, [], sorted(relevant))

    def level_mask(self, marker: str, level: str) -> np.ndarray:
        i = self.population.index[marker]
        return self.codes[:, i] == self.population.levels[i].index(level)

    def subgroups(self) -> dict[str, np.ndarray]:
        """Every combination of the yardstick's characteristics: label -> mask of profiles."""
        levels = [self.population.levels[self.population.index[b]] for b in self.by]
        out = {}
        for combo in itertools.product(*levels):
            mask = np.ones(len(self.prob), dtype=bool)
            for b, lv in zip(self.by, combo):
                mask &= self.level_mask(b, lv)
            out[", ".join(f"{b}={lv}" for b, lv in zip(self.by, combo)) or "all"] = mask
        return out

    def share(self, mask: np.ndarray) -> float:
        return float(self.prob[mask].sum())

    def rate(self, treatment: str, mask: np.ndarray | None = None, ep: str = ENDPOINT) -> float:
        """Exact rate (binary, landmark) or median (months, time-to-event) over the profiles of ``mask``."""
        mask = np.ones(len(self.prob), dtype=bool) if mask is None else mask
        return self.patients.outcomes.expected(ep, treatment, self.codes[mask], self.prob[mask])

    def effect(self, treatment: str, mask: np.ndarray | None = None, ep: str = ENDPOINT) -> float:
        return self.rate(treatment, mask, ep) - self.rate(self.control, mask, ep)

    def hazard_ratios(self, treatment: str) -> np.ndarray:
        """Per profile: the ratio of the treatment's to the control's cumulative PFS hazard up to the
        week-12 landmark, -log P(dcr12 | treatment) / -log P(dcr12 | control)."""
        out = self.patients.outcomes
        return np.log(out.probability(ENDPOINT, treatment, self.codes)) / np.log(
            out.probability(ENDPOINT, self.control, self.codes)
        )

    def odds_ratios(self, treatment: str) -> np.ndarray:
        """Per profile: the treatment's odds of response over the control's."""
        out = self.patients.outcomes
        p, q = out.probability("orr", treatment, self.codes), out.probability("orr", self.control, self.codes)
        return (p / (1 - p)) / (q / (1 - q))

    def kind(self, treatment: str) -> str:
        """What the treatment does against the control, from its per-profile hazard ratios:
        null, allcomer (one hazard ratio below 1 for everyone), subgroup_only (below 1 for some,
        1 for the others), graded (below 1 for everyone, not the same), harmful (above 1 for some)."""
        hr = self.hazard_ratios(treatment)
        better, equal = hr < 1 - EXACT, np.abs(hr - 1) <= EXACT
        if equal.all():
            return "null"
        if not (better | equal).all():
            return "harmful"
        if better.all():
            return "allcomer" if np.ptp(hr) <= EXACT else "graded"
        return "subgroup_only"

    def active(self) -> dict[str, str]:
        """The treatments other than the control that are not null, with their kind."""
        kinds = {t: self.kind(t) for t in self.treatments if t != self.control}
        return {t: k for t, k in kinds.items() if k != "null"}

    def positive(self) -> tuple[str, np.ndarray, np.ndarray]:
        """The yardstick's one two-level characteristic: its name and the masks of its second
        (positive) and first level."""
        assert len(self.by) == 1, self.by
        marker = self.by[0]
        levels = self.population.levels[self.population.index[marker]]
        assert len(levels) == 2
        return marker, self.level_mask(marker, levels[1]), self.level_mask(marker, levels[0])


def core_scenario(position: int) -> Truth:
    return Truth(CORE.scenarios[position])


def test_the_null_scenario_has_every_treatment_equal_to_the_control_in_every_subgroup():
    truth = Truth(CORE.null_scenario)
    assert len(truth.by) >= 1
    assert truth.active() == {}
    for label, mask in truth.subgroups().items():
        assert truth.share(mask) > 0, label
        for ep in ("dcr12", "orr", "pfs"):
            control = truth.rate(truth.control, mask, ep)
            for t in truth.treatments:
                assert truth.rate(t, mask, ep) == pytest.approx(control, rel=EXACT), (label, ep, t)


def test_the_allcomer_drug_has_the_same_effect_in_every_subgroup():
    truth = core_scenario(1)
    ((drug, kind),) = truth.active().items()
    assert kind == "allcomer"
    hr = truth.hazard_ratios(drug)
    assert np.ptp(hr) <= EXACT and hr[0] < 1  # one PFS hazard ratio, the same for every patient profile
    assert np.ptp(truth.odds_ratios(drug)) <= EXACT  # and one response odds ratio
    subgroups = truth.subgroups()
    assert len(subgroups) > 1
    for label, mask in subgroups.items():
        assert truth.share(mask) > 0, label
        assert truth.effect(drug, mask) > 0, label  # better than the control in every subgroup


def test_the_subgroup_only_drug_works_in_a_10_to_30_percent_subgroup_and_nowhere_else():
    truth = core_scenario(2)
    ((drug, kind),) = truth.active().items()
    assert kind == "subgroup_only"
    marker, positive, negative = truth.positive()
    assert 0.10 <= truth.share(positive) <= 0.30, truth.share(positive)
    hr = truth.hazard_ratios(drug)
    assert np.all(np.abs(hr[negative] - 1) <= EXACT) and np.all(hr[positive] < 1)
    assert np.all(np.abs(truth.odds_ratios(drug)[negative] - 1) <= EXACT)
    for ep in ("dcr12", "orr", "pfs"):
        assert truth.rate(drug, negative, ep) == pytest.approx(truth.rate(truth.control, negative, ep), rel=EXACT), ep
        assert truth.effect(drug, positive, ep) > 0, ep


def test_the_graded_drug_works_more_in_positives_and_still_beats_the_control_in_negatives():
    truth = core_scenario(3)
    ((drug, kind),) = truth.active().items()
    assert kind == "graded"
    marker, positive, negative = truth.positive()
    assert truth.effect(drug, positive) > truth.effect(drug, negative) > 0
    assert truth.hazard_ratios(drug)[positive].max() < truth.hazard_ratios(drug)[negative].min() < 1
    # the same subgroup as the subgroup-only scenario, so the two differ only in the negatives
    assert truth.by == core_scenario(2).by


def test_the_qualitative_drug_helps_positives_and_harms_negatives():
    truth = core_scenario(4)
    ((drug, kind),) = truth.active().items()
    assert kind == "harmful"
    marker, positive, negative = truth.positive()
    for ep in ("dcr12", "orr"):
        assert truth.effect(drug, positive, ep) > 0 > truth.effect(drug, negative, ep), ep
    assert truth.rate(drug, negative, "pfs") < truth.rate(truth.control, negative, "pfs")  # shorter median PFS
    hr = truth.hazard_ratios(drug)
    assert np.all(hr[positive] < 1) and np.all(hr[negative] > 1)


ACCURACY = ("sensitivity", "specificity")


def _assay_accuracies(population: dict) -> dict[tuple[str, str, str], float]:
    return {
        (m, test, f): spec[test].get(f, 1.0)
        for m, spec in population["markers"].items()
        for test in ("tissue", "liquid")
        if spec.get(test) is not None
        for f in ACCURACY
    }


def _without_assay_accuracies(population: dict) -> dict:
    out = {k: v for k, v in population.items() if k not in ("name", "description")}
    out["markers"] = {
        m: {
            k: ({f: x for f, x in v.items() if f not in ACCURACY} if k in ("tissue", "liquid") and v else v)
            for k, v in spec.items()
        }
        for m, spec in population["markers"].items()
    }
    return out


def _call_accuracy(truth: Truth, marker: str) -> tuple[float, float]:
    """Exact P(reported positive | truly positive) and P(reported negative | truly negative) of
    ``marker`` among randomizable patients with a result, over every screening path."""
    pm = truth.population
    codes, observed, prob = reported_distribution(pm, [marker], [marker])
    i = pm.index[marker]
    called = observed[:, i] >= 0
    true_pos, said_pos = codes[:, i] == 1, observed[:, i] == 1
    sensitivity = prob[true_pos & called & said_pos].sum() / prob[true_pos & called].sum()
    specificity = prob[~true_pos & called & ~said_pos].sum() / prob[~true_pos & called].sum()
    return float(sensitivity), float(specificity)


def test_the_misclassification_scenario_differs_from_the_subgroup_only_one_in_assay_accuracy_only():
    exact, noisy = core_scenario(2), core_scenario(5)
    a, b = exact.scenario.model_dump(), noisy.scenario.model_dump()
    pop_a, pop_b = a.pop("population"), b.pop("population")
    for d in (a, b):
        del d["name"], d["description"]
    assert a == b  # same treatments, effects, prognosis, endpoints and yardstick
    assert _without_assay_accuracies(pop_a) == _without_assay_accuracies(pop_b)
    acc_a, acc_b = _assay_accuracies(pop_a), _assay_accuracies(pop_b)
    assert acc_a.keys() == acc_b.keys()
    changed = {k for k in acc_a if acc_a[k] != acc_b[k]}
    assert changed and all(acc_b[k] < acc_a[k] for k in changed)  # only ever lower
    assert {f for _, _, f in changed} == set(ACCURACY) and {t for _, t, _ in changed} == {"tissue", "liquid"}
    # the call that defines the subgroup is now clearly worse, both ways
    marker = exact.by[0]
    sens_a, spec_a = _call_accuracy(exact, marker)
    sens_b, spec_b = _call_accuracy(noisy, marker)
    assert sens_b < sens_a and spec_b < spec_a
    # and the truth is unchanged: the same rates in the same true subgroups
    for mask_a, mask_b in zip(exact.positive()[1:], noisy.positive()[1:]):
        assert exact.share(mask_a) == pytest.approx(noisy.share(mask_b), rel=EXACT)
        for t in exact.treatments:
            assert exact.rate(t, mask_a) == pytest.approx(noisy.rate(t, mask_b), rel=EXACT)


def test_the_mixed_portfolio_has_one_drug_of_each_kind():
    truth = core_scenario(6)
    arms = [a.treatment for a in Spec.load(DESIGNS[0], CORE.scenarios[6]).design.arms]
    kinds = sorted(truth.kind(t) for t in arms if t != truth.control)
    assert len(kinds) == 4, kinds
    three = [k for k in kinds if k in ("allcomer", "graded", "subgroup_only")]
    assert sorted(three) == ["allcomer", "graded", "subgroup_only"], kinds
    (rest,) = [k for k in kinds if k not in three]
    assert rest in ("null", "harmful"), kinds  # the fourth regimen is null, or harmful in a subgroup
    for t, kind in truth.active().items():
        if kind in ("subgroup_only", "graded"):  # its effect changes with a characteristic the yardstick names
            effects = {truth.effect(t, m) for m in truth.subgroups().values()}
            assert len(effects) > 1, t


def test_the_prevalences_the_descriptions_quote_are_exact():
    """The prevalence the descriptions quote matches the exact share among randomizable patients."""
    quoted = {"stk11_keap1_only": ("stk11_or_keap1", 0.21), "qualitative_interaction": ("trop2_nmr", 0.60)}
    for name, (marker, share) in quoted.items():
        truth = Truth(name)
        assert truth.share(truth.level_mask(marker, "positive")) == pytest.approx(share, abs=0.005), name
        assert f"{round(share * 100)}%" in truth.scenario.description.replace("\n", " ") + CORE.description, name


def test_expand_designs_replaces_each_suite_by_its_designs():
    from platform_sim.config import expand_designs

    core = load_suite("core")
    assert expand_designs(["allcomer_fixed", "suite:core"]) == list(dict.fromkeys(["allcomer_fixed"] + core.designs))
    with pytest.raises(ConfigError, match="designs"):
        expand_designs(["suite:"])
