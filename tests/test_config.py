"""Configuration loading and validation (platform_sim.config).

Every test starts from a shipped YAML file (or a documented valid variant of one),
changes exactly one thing, writes it to tmp_path and checks the reported problem:
its field path, its message, the bad value and the file it names.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from pathlib import Path

import numpy as np
import pydantic
import pytest
import yaml
from scipy import optimize

from platform_sim.config import (
    ConfigError,
    Design,
    Problem,
    Scenario,
    load_file,
    resolve,
    shipped_names,
)
from platform_sim.spec import Spec, validate_files

ROOT = Path(__file__).resolve().parents[1]
# The PIONeeR-like scenarios: one shared population (scenarios/populations/post_ici_nsclc.yaml),
# the same endpoints and the same seven treatments, so every design runs on every scenario.
PIONEER_SCENARIOS = [
    "pioneer_null",
    "pioneer_alternative",
    "s1800a_allcomer",
    "atm_ceralasertib",
    "stk11_keap1_ctla4",
    "trop2_adc",
    "phase2_optimism",
    "qualitative_interaction",
    "control_drift",
    "allcomer_effect",
    "stk11_keap1_only",
    "stk11_keap1_only_poor_assay",
    "mixed_portfolio",
]
PAIRS = [("pioneer_rar", s) for s in PIONEER_SCENARIOS] + [("benchmark_four_arm", "benchmark_four_arm")]
PIONEER_ARMS = ["docetaxel", "durva_oleclumab", "durva_monalizumab", "durva_ceralasertib"]
TREATMENTS = PIONEER_ARMS + ["durva_tremelimumab", "dato_dxd", "ramucirumab_pembrolizumab"]
MONTHS_12_WEEKS = 12 * 7 / (365.25 / 12)


# --------------------------------------------------------------------------- helpers


def shipped(kind: str, name: str) -> dict:
    return yaml.safe_load((ROOT / f"{kind}s" / f"{name}.yaml").read_text())


def pioneer() -> dict:
    return shipped("design", "pioneer_rar")


def benchmark() -> dict:
    return shipped("design", "benchmark_four_arm")


def benchmark_no_control() -> dict:
    """benchmark_four_arm without a common control (P(best) decisions); valid, see test below."""
    d = benchmark()
    del d["control"], d["control_allocation"]
    return d


def benchmark_fixed() -> dict:
    """benchmark_four_arm with fixed (equal) randomization; valid, see test below."""
    d = benchmark()
    d["randomization"] = {"method": "fixed", "scheme": "block"}
    return d


def write(tmp_path: Path, data, name: str = "file.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def problems_of(tmp_path: Path, data, name: str = "file.yaml") -> list[Problem]:
    return validate_files([write(tmp_path, data, name)])


def the_problem(problems: list[Problem], path: str) -> Problem:
    """Exactly one problem, at ``path``; its one-line format names file, path and message."""
    assert len(problems) == 1, [p.format() for p in problems]
    (p,) = problems
    assert p.path == path, p.format()
    line = p.format()
    assert "\n" not in line
    assert p.file and line.startswith(f"{p.file}: {path}: {p.message}")
    return p


def design_problem(tmp_path: Path, data: dict, path: str) -> Problem:
    p = the_problem(problems_of(tmp_path, data, "design.yaml"), path)
    assert p.file == str(tmp_path / "design.yaml")
    return p


def assert_valid(tmp_path: Path, data: dict) -> None:
    assert problems_of(tmp_path, data, "valid.yaml") == []


# --------------------------------------------------------------------------- shipped files


def test_shipped_names_are_listed():
    assert {"pioneer_rar", "benchmark_four_arm"} <= set(shipped_names("design"))
    assert {*PIONEER_SCENARIOS, "benchmark_four_arm"} <= set(shipped_names("scenario"))


@pytest.mark.parametrize(
    "kind,name",
    [("design", d) for d in ("pioneer_rar", "benchmark_four_arm")]
    + [("scenario", s) for s in (*PIONEER_SCENARIOS, "benchmark_four_arm")],
)
def test_every_shipped_file_loads_alone(kind, name):
    path = ROOT / f"{kind}s" / f"{name}.yaml"
    assert validate_files([path]) == []
    obj = load_file(path)
    assert isinstance(obj, Design if kind == "design" else Scenario)
    assert obj.name == name


@pytest.mark.parametrize("design,scenario", PAIRS)
def test_shipped_pairs_load_by_name_from_any_directory(design, scenario, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # names must resolve from the package, not only from the checkout's cwd
    assert resolve(design, "design").resolve() == (ROOT / "designs" / f"{design}.yaml").resolve()
    spec = Spec.load(design, scenario)
    assert spec.design.name == design and spec.scenario.name == scenario
    assert len(spec.compiled.rules.true_rates) == len(spec.design.arms) == 4
    assert validate_files([ROOT / "designs" / f"{design}.yaml", ROOT / "scenarios" / f"{scenario}.yaml"]) == []


def _joint(population: dict) -> list[tuple[dict, float]]:
    """Every profile (marker -> level, derived markers included) with its probability, enumerated
    directly from the population YAML's conditional tables (independently of PopulationModel)."""
    profiles = [({}, 1.0)]
    for name, m in population["markers"].items():
        levels = m.get("levels", ["negative", "positive"])
        table = m["prevalence"] if "prevalence" in m else m["probabilities"]
        out = []
        for prof, p in profiles:
            row = table
            if m.get("given"):
                key = ", ".join(prof[g] for g in m["given"])
                row = next(v for k, v in table.items() if ", ".join(x.strip() for x in k.split(",")) == key)
            probs = [1 - row, row] if "prevalence" in m else row
            out += [({**prof, name: lv}, p * q) for lv, q in zip(levels, probs) if q > 0]
        profiles = out
    for prof, _ in profiles:
        for name, d in population.get("derived", {}).items():
            hits = []
            for c in d.get("any_of") or d.get("all_of"):
                conditions = {c: ["positive"]} if isinstance(c, str) else c
                hits += [prof[m] in ([lv] if isinstance(lv, str) else lv) for m, lv in conditions.items()]
            prof[name] = "positive" if (any(hits) if "any_of" in d else all(hits)) else "negative"
    return profiles


def _collapse(profiles, markers: set[str]) -> list[tuple[dict, float]]:
    """The distribution of ``markers`` only (summing the probabilities of the other markers' levels)."""
    out: dict[tuple, float] = {}
    for prof, p in profiles:
        key = tuple(sorted((m, prof[m]) for m in markers))
        out[key] = out.get(key, 0.0) + p
    return [(dict(key), p) for key, p in out.items()]


def _named_markers(scenario: dict) -> set[str]:
    """Every marker a scenario's outcome models name."""
    models = [scenario["prognostic"]["pfs"], scenario["prognostic"]["orr"]]
    models += [m for t in scenario["treatments"].values() for m in t.get("outcomes", {}).values()]
    return {marker for m in models for key in ("hazard_ratios", "odds_ratios") for marker in m.get(key, {})}


def _ratio(ratios: dict, prof: dict) -> float:
    """Product of the ratios of a profile's non-reference levels ({marker: r} or {marker: {level: r}})."""
    out = 1.0
    for marker, r in ratios.items():
        if isinstance(r, dict):
            out *= r.get(prof[marker], 1.0)
        elif prof[marker] == "positive":
            out *= r
    return out


def _hazards_and_odds(scenario: dict, treatment: str, profiles) -> tuple[np.ndarray, np.ndarray]:
    """Each profile's PFS hazard (per month) and ORR odds under ``treatment``, from the scenario YAML."""
    t = scenario["treatments"]
    chain = [treatment]
    while "relative_to" in t[chain[-1]]:
        chain.append(t[chain[-1]]["relative_to"])
    root = t[chain[-1]]["outcomes"]
    hazard, odds = [], []
    for prof, _ in profiles:
        h = math.log(2) / root["pfs"]["median_months"] * _ratio(scenario["prognostic"]["pfs"]["hazard_ratios"], prof)
        o = root["orr"]["rate"] / (1 - root["orr"]["rate"]) * _ratio(scenario["prognostic"]["orr"]["odds_ratios"], prof)
        for name in chain[:-1]:
            out = t[name].get("outcomes", {})
            pfs, orr = out.get("pfs", {}), out.get("orr", {})
            assert pfs.get("onset_weeks", 0) == 0  # not modelled here
            h *= pfs.get("hazard_ratio", 1.0) * _ratio(pfs.get("hazard_ratios", {}), prof)
            o *= orr.get("odds_ratio", 1.0) * _ratio(orr.get("odds_ratios", {}), prof)
        hazard.append(h)
        odds.append(o)
    return np.array(hazard), np.array(odds)


def test_shipped_contents_as_read():
    population = yaml.safe_load((ROOT / "scenarios" / "populations" / "post_ici_nsclc.yaml").read_text())
    profiles = _joint(population)
    prob = np.array([p for _, p in profiles])
    assert prob.sum() == pytest.approx(1.0, abs=1e-12)

    def share(marker, level="positive"):
        return sum(p for prof, p in profiles if prof[marker] == level)

    # the prevalences the population file documents (biomarkers.md section 8)
    assert share("histology", "nonsquamous") == pytest.approx(0.72, abs=1e-12)
    assert share("resistance", "primary") == pytest.approx(0.42, abs=0.005)
    assert [share("pdl1", lv) for lv in ("lt1", "1to49", "ge50")] == pytest.approx([0.48, 0.32, 0.20], abs=0.005)
    assert share("trop2_nmr") == pytest.approx(0.72 * 0.66 + 0.28 * 0.44, abs=1e-12)
    assert share("atm") == pytest.approx(0.08, abs=0.001)
    assert share("stk11") == pytest.approx(0.130, abs=0.001)
    assert share("kl") == pytest.approx(0.057, abs=0.001)

    def truth(name: str, treatments: list[str]) -> dict[str, tuple[float, float, float]]:
        """Population (median PFS, 12-week disease control, ORR) by treatment, dropout included."""
        scenario = yaml.safe_load((ROOT / "scenarios" / f"{name}.yaml").read_text())
        marginal = _collapse(profiles, _named_markers(scenario))
        prob = np.array([p for _, p in marginal])
        drop = scenario.get("dropout")
        kept = 1.0
        if drop is not None:
            assert drop["before_weeks"] == 12  # dropout at the 12-week assessment, as shipped
            kept = 1 - drop["probability"]
        out = {}
        for tr in treatments:
            h, o = _hazards_and_odds(scenario, tr, marginal)
            median = optimize.brentq(lambda x: prob @ np.exp(-h * x) - 0.5, 0.0, 100.0, xtol=1e-12)
            out[tr] = (median, kept * prob @ np.exp(-h * MONTHS_12_WEEKS), kept * prob @ (o / (1 + o)))
        return out

    null = truth("pioneer_null", TREATMENTS)
    median, dcr12, orr = null["docetaxel"]
    # the calibration documented in the files: CONTACT-01 median PFS 4.0 months, ORR 0.14
    assert median == pytest.approx(4.0, abs=0.005)
    assert orr == pytest.approx(0.14, abs=0.0005)
    assert dcr12 == pytest.approx(0.618, abs=0.0005)
    assert all(v == pytest.approx(null["docetaxel"], rel=1e-12) for v in null.values())

    for name in PIONEER_SCENARIOS:
        spec = Spec.load("pioneer_rar", name)
        vp = spec.patients
        expected = truth(name, TREATMENTS)
        assert spec.compiled.rules.true_rates == pytest.approx([expected[a][1] for a in PIONEER_ARMS], abs=1e-9), name
        for k, ep in enumerate(("pfs", "dcr12", "orr")):
            assert vp.truth(ep, TREATMENTS) == pytest.approx([expected[t][k] for t in TREATMENTS], abs=1e-6), (name, ep)

    # the effects each scenario's description states
    alt = truth("pioneer_alternative", PIONEER_ARMS)
    assert alt["durva_oleclumab"][1] - alt["docetaxel"][1] == pytest.approx(0.095, abs=0.005)
    assert alt["durva_monalizumab"] == pytest.approx(alt["docetaxel"], rel=1e-12)
    phase2 = truth("phase2_optimism", ["docetaxel", "durva_oleclumab"])
    assert phase2["durva_oleclumab"][1] - phase2["docetaxel"][1] == pytest.approx(0.075, abs=0.0005)

    alt = Spec.load("pioneer_rar", "pioneer_alternative")
    assert alt.design.arm_names == PIONEER_ARMS
    assert alt.design.control_index == 0
    assert alt.design.looks.randomized_n == [60, 90, 120, 150, 180, 210, 240]
    delay = alt.design.looks.outcome_delay  # followed by accrual: the 12-week scan
    assert alt.design.looks.followed_n is None
    assert (delay.distribution, delay.assessment_every_weeks) == ("endpoint", 6)
    bench = Spec.load("benchmark_four_arm", "benchmark_four_arm")
    assert bench.compiled.rules.true_rates == pytest.approx([0.25, 0.30, 0.22, 0.19], abs=1e-12)
    assert bench.design.looks.followed == bench.design.looks.randomized_n  # no followed_n: all followed


def test_default_spec_is_pioneer_alternative():
    spec = Spec.load()
    assert (spec.design.name, spec.scenario.name) == ("pioneer_rar", "pioneer_alternative")


def test_unknown_name_lists_the_shipped_ones():
    with pytest.raises(ConfigError) as info:
        Spec.load("pioneer_rr", "pioneer_null")
    (p,) = info.value.problems
    assert p.path == "design" and p.value == "pioneer_rr"
    assert "pioneer_rar" in p.message and "benchmark_four_arm" in p.message


def test_valid_variants_used_as_bases(tmp_path):
    assert_valid(tmp_path, benchmark_no_control())
    assert_valid(tmp_path, benchmark_fixed())


# --------------------------------------------------------------------------- frozen models


def test_models_are_frozen():
    spec = Spec.load("pioneer_rar", "pioneer_alternative")
    d, s = spec.design, spec.scenario
    targets = [
        (d, "name", "other"),
        (d, "control", "durva_oleclumab"),
        (d.arms[2], "max_n", 10),
        (d.prior, "a", 2.0),
        (d.randomization, "softening", 1.0),
        (d.looks, "randomized_n", [1, 2]),
        (d.decisions, "superiority", 0.5),
        (d.decisions.futility, "threshold", 0.5),
        (d.control_allocation, "rule", "fixed"),
        (s, "name", "other"),
        (s.treatments["docetaxel"], "rates", {"dcr12": 0.9}),
    ]
    for obj, attr, value in targets:
        before = getattr(obj, attr)
        with pytest.raises(pydantic.ValidationError, match="frozen"):
            setattr(obj, attr, value)
        assert getattr(obj, attr) == before
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.design = d


# --------------------------------------------------------------------------- file-level errors


@pytest.mark.parametrize(
    "where,key,path",
    [
        ((), "arm", "design.arm"),
        (("randomization",), "softenning", "design.randomization.softenning"),
        (("arms", 1), "max", "design.arms[1].max"),
        (("decisions", "futility"), "delta_", "design.decisions.futility.delta_"),
    ],
)
def test_unknown_design_key_is_named(tmp_path, where, key, path):
    d = pioneer()
    node = d
    for part in where:
        node = node[part]
    node[key] = 5
    p = design_problem(tmp_path, d, path)
    assert p.message == "Extra inputs are not permitted"
    assert p.value == 5


def test_unknown_scenario_key_is_named(tmp_path):
    s = shipped("scenario", "pioneer_null")
    s["treatments"]["docetaxel"]["rate"] = {"dcr12": 0.5}
    p = the_problem(problems_of(tmp_path, s), "scenario.treatments.docetaxel.rate")
    assert p.message == "Extra inputs are not permitted"


def test_malformed_yaml_reports_the_line(tmp_path):
    lines = (ROOT / "designs" / "pioneer_rar.yaml").read_text().splitlines()
    bad_line = lines.index("  direction: higher_is_better")
    lines[bad_line] = "   direction: higher_is_better"  # one space too many
    path = tmp_path / "broken.yaml"
    path.write_text("\n".join(lines) + "\n")
    p = the_problem(validate_files([path]), "file")
    assert p.file == str(path)
    assert p.message.startswith(f"malformed YAML: line {bad_line + 1}, column")
    with pytest.raises(ConfigError) as info:
        Spec.load(path, "pioneer_null")
    assert [q.message for q in info.value.problems] == [p.message]


@pytest.mark.parametrize(
    "text,type_name", [("- a\n- b\n", "list"), ("just a string\n", "str"), ("", None), ("# only a comment\n", None)]
)
def test_non_mapping_file_is_a_clear_error(tmp_path, text, type_name):
    path = tmp_path / "list.yaml"
    path.write_text(text)
    p = the_problem(validate_files([path]), "file")
    expected = "the file must hold a mapping of keys to values"
    assert p.message == (expected if type_name else f"the file is empty; it {expected[9:]}")
    assert p.value == type_name
    with pytest.raises(ConfigError) as info:
        Spec.load("pioneer_rar", path)
    (q,) = info.value.problems
    assert q.path == "scenario" and q.message == p.message and q.file == str(path)


def test_file_neither_design_nor_scenario(tmp_path):
    p = the_problem(problems_of(tmp_path, {"name": "x"}), "file")
    assert "neither a design" in p.message


# --------------------------------------------------------------------------- scenario


@pytest.mark.parametrize("rate,allowed", [(1.2, "less than or equal to 1"), (-0.1, "greater than or equal to 0")])
def test_scenario_rate_outside_unit_interval(tmp_path, rate, allowed):
    s = shipped("scenario", "pioneer_alternative")
    s["treatments"]["docetaxel"]["outcomes"]["orr"]["rate"] = rate
    p = the_problem(problems_of(tmp_path, s), "scenario.treatments.docetaxel.outcomes.orr.rate")
    assert allowed in p.message
    assert p.value == rate


@pytest.mark.parametrize(
    "value, bound",
    [
        (-1, "greater than or equal to 0.001"),
        (1e-4, "greater than or equal to 0.001"),
        (1e308, "less than or equal to 1000"),
    ],
)
@pytest.mark.parametrize("field", ["odds_ratio", "hazard_ratio"])
def test_scenario_ratio_must_be_within_a_factor_of_1000(tmp_path, field, value, bound):
    s = shipped("scenario", "pioneer_alternative")
    endpoint = "orr" if field == "odds_ratio" else "pfs"
    s["treatments"]["durva_oleclumab"]["outcomes"][endpoint][field] = value
    p = the_problem(problems_of(tmp_path, s), f"scenario.treatments.durva_oleclumab.outcomes.{endpoint}.{field}")
    assert bound in p.message
    assert p.value == value


@pytest.mark.parametrize(
    "section, field, value, bound",
    [
        ("costs", "assay_per_patient", 1e308, "less than or equal to 1000000000"),
        ("costs", "per_randomized_patient", 2e9, "less than or equal to 1000000000"),
        ("costs", "per_randomized_patient", -1.0, "greater than or equal to 0"),
        ("yardstick", "relevant_hazard_ratio", 1e-300, "greater than or equal to 0.001"),
        ("yardstick", "relevant_hazard_ratio", 1.0, "less than 1"),
    ],
)
def test_scenario_costs_and_yardstick_are_bounded(tmp_path, section, field, value, bound):
    """A cost of 1e308 per patient made a trial's cost infinite; a relevant hazard ratio is a ratio
    like any other, at least 0.001."""
    s = shipped("scenario", "pioneer_alternative")
    s[section] = {field: value}
    p = the_problem(problems_of(tmp_path, s), f"scenario.{section}.{field}")
    assert bound in p.message and p.value == value
    s[section] = {field: 1e9 if section == "costs" else 0.001}  # the bound itself is accepted
    assert problems_of(tmp_path, s) == []


@pytest.mark.parametrize(
    "edit, path, bound",
    [
        ({"max_n": 10**6}, "design.two_stage.max_n", "less than or equal to 200"),
        ({"max_n": 1}, "design.two_stage.max_n", "greater than or equal to 2"),
        (
            {"stages": {"n1": 10, "r1": 0, "n": 2**31 - 1, "r": 5}},
            "design.two_stage.stages.n",
            "less than or equal to 100000",
        ),
        (
            {"stages": {"n1": 200_000, "r1": 0, "n": 300_000, "r": 5}},
            "design.two_stage.stages.n1",
            "less than or equal to 100000",
        ),
    ],
)
def test_two_stage_sizes_are_bounded(tmp_path, edit, path, bound):
    """A Simon search up to 10^6 patients asked for a terabyte (MemoryError); stages of 2**31 - 1
    patients ended in a RuntimeError from the screening."""
    d = shipped("design", "s1400f_two_stage")
    d["two_stage"].update(edit)
    problems = [q for q in problems_of(tmp_path, d) if q.path == path]
    assert len(problems) == 1 and bound in problems[0].message, [q.format() for q in problems_of(tmp_path, d)]


@pytest.mark.parametrize("rate", [0, 1])
def test_scenario_rate_at_bounds_is_valid(tmp_path, rate):
    s = shipped("scenario", "pioneer_alternative")
    s["treatments"]["docetaxel"]["outcomes"]["orr"]["rate"] = rate
    assert problems_of(tmp_path, s) == []


# --------------------------------------------------------------------------- design x scenario


def _pair_problem(tmp_path, design: dict, path: str) -> Problem:
    dfile = write(tmp_path, design, "design.yaml")
    sfile = ROOT / "scenarios" / "pioneer_alternative.yaml"
    assert validate_files([dfile]) == []  # fine on its own
    p = the_problem(validate_files([dfile, sfile]), path)
    assert p.file == str(dfile) and str(sfile) in p.message
    with pytest.raises(ConfigError) as info:
        Spec.load(dfile, "pioneer_alternative")
    (q,) = info.value.problems
    assert (q.path, q.value, q.file) == (path, p.value, str(dfile))
    assert str(info.value) == q.format()
    return q


def test_arm_treatment_missing_from_scenario(tmp_path):
    d = pioneer()
    d["arms"][2]["treatment"] = "durva_monalizumb"
    p = _pair_problem(tmp_path, d, "design.arms[2].treatment")
    assert p.value == "durva_monalizumb"
    assert "defines no such treatment" in p.message and "durva_monalizumab" in p.message


def test_endpoint_name_mismatch(tmp_path):
    d = pioneer()
    d["endpoint"]["name"] = "os"
    p = _pair_problem(tmp_path, d, "design.endpoint.name")
    assert p.value == "os"
    assert "defines no such endpoint" in p.message and "dcr12" in p.message


# --------------------------------------------------------------------------- arms and control


def test_control_not_an_arm(tmp_path):
    d = pioneer()
    d["control"] = "docetaxol"
    p = design_problem(tmp_path, d, "design.control")  # and no follow-on "needs a control" noise
    assert p.value == "docetaxol"
    assert "is not an arm" in p.message and "docetaxel" in p.message


def test_duplicate_arm_names(tmp_path):
    d = pioneer()
    d["arms"][2]["name"] = "durva_oleclumab"
    p = design_problem(tmp_path, d, "design.arms[2].name")
    assert p.value == "durva_oleclumab" and "unique" in p.message


def test_arm_field_error_path_has_index(tmp_path):
    d = pioneer()
    d["arms"][2]["max_n"] = 0
    p = design_problem(tmp_path, d, "design.arms[2].max_n")
    assert p.value == 0 and "greater than 0" in p.message


def test_arm_caps_below_last_look(tmp_path):
    d = pioneer()
    for arm in d["arms"]:
        arm["max_n"] = 50
    p = design_problem(tmp_path, d, "design.looks.randomized_n")
    assert p.value == 240 and "add up to only 200" in p.message
    for arm in d["arms"]:
        arm["max_n"] = 60  # 240: exactly enough
    assert_valid(tmp_path, d)


def test_arm_max_n_above_maximum_sample_size(tmp_path):
    d = pioneer()
    d["arms"][2]["max_n"] = 241
    p = design_problem(tmp_path, d, "design.arms[2].max_n")
    assert p.value == 241 and "exceeds the trial's maximum sample size 240" in p.message
    d["arms"][2]["max_n"] = 240
    assert_valid(tmp_path, d)


# --------------------------------------------------------------------------- looks


@pytest.mark.parametrize("looks", [[60, 90, 90, 150, 180, 210, 240], [60, 90, 120, 110, 180, 210, 240]])
def test_randomized_n_must_increase(tmp_path, looks):
    d = pioneer()
    d["looks"]["randomized_n"] = looks
    p = design_problem(tmp_path, d, "design.looks.randomized_n")
    assert p.message == f"randomized_n must be strictly increasing, got {looks}"


@pytest.mark.parametrize(
    "followed,message",
    [
        ([40, 70, 100, 130, 160, 190, 200, 240], "followed_n has 8 looks but randomized_n has 7"),
        ([40, 70, 100, 130, 160, 190], "followed_n has 6 looks but randomized_n has 7"),
        ([40, 70, 100, 130, 160, 220, 240], "look 5: followed_n (220) exceeds randomized_n (210)"),
        ([40, 70, 100, 130, 160, 190, 241], "look 6: followed_n (241) exceeds randomized_n (240)"),
        ([40, 70, 70, 130, 160, 190, 240], "followed_n must be strictly increasing"),
    ],
)
def test_followed_n_must_fit_randomized_n(tmp_path, followed, message):
    d = pioneer()
    d["looks"]["followed_n"] = followed
    p = design_problem(tmp_path, d, "design.looks.followed_n")
    assert p.message.startswith(message)


@pytest.mark.parametrize(
    "shorthand,expected",
    [
        ({"first": 10, "every": 20, "last": 50}, [10, 30, 50]),
        ({"first": 10, "every": 20, "last": 55}, [10, 30, 50]),
        ({"first": 50, "every": 7, "last": 50}, [50]),
    ],
)
def test_look_shorthand_expands(tmp_path, shorthand, expected):
    d = benchmark()
    d["looks"] = shorthand
    design = load_file(write(tmp_path, d))
    assert design.looks.randomized_n == expected
    assert design.looks.followed == expected


def test_shipped_shorthand_expands():
    looks = Spec.load("benchmark_four_arm", "benchmark_four_arm").design.looks
    assert looks.randomized_n == list(range(400, 2001, 100))
    assert (looks.n_looks, looks.max_n) == (17, 2000)


def test_look_shorthand_rejects_last_before_first(tmp_path):
    d = benchmark()
    d["looks"]["last"] = 300
    p = design_problem(tmp_path, d, "design.looks")
    assert p.message == "last (300) is before first (400)"


def test_look_shorthand_needs_all_three(tmp_path):
    d = benchmark()
    del d["looks"]["every"]
    p = design_problem(tmp_path, d, "design.looks")
    assert "missing ['every']" in p.message


# --------------------------------------------------------------------------- decisions


def test_threshold_list_of_wrong_length(tmp_path):
    d = pioneer()
    d["decisions"]["superiority"] = [0.99] * 6
    p = design_problem(tmp_path, d, "design.decisions.superiority")
    assert "one value per look (7 looks)" in p.message and p.value == "6 values"
    d["decisions"]["superiority"] = [0.999, 0.995, 0.99, 0.99, 0.99, 0.99, 0.98]
    assert_valid(tmp_path, d)


def test_threshold_out_of_range_names_the_field(tmp_path):
    d = pioneer()
    d["decisions"]["superiority"] = 1.5
    p = design_problem(tmp_path, d, "design.decisions.superiority")  # not ...superiority.constrained-float
    assert p.value == 1.5 and p.message == "Input should be less than 1"


def test_threshold_of_wrong_type_is_one_problem_listing_the_allowed_types(tmp_path):
    d = pioneer()
    d["decisions"]["superiority"] = "high"
    p = design_problem(tmp_path, d, "design.decisions.superiority")
    assert p.value == "high"
    assert "valid number" in p.message and "; or Input should be a valid list" in p.message


def test_inferiority_not_below_superiority(tmp_path):
    d = pioneer()
    d["decisions"]["superiority"] = 0.99  # set here: the shipped threshold is calibrated and may move
    d["decisions"]["inferiority"] = [0.01, 0.01, 0.01, 0.99, 0.01, 0.01, 0.01]
    p = design_problem(tmp_path, d, "design.decisions.inferiority")
    assert p.value == 0.99
    assert "look 3: inferiority threshold 0.99 must be below the superiority threshold 0.99" in p.message


def test_no_control_inferiority_must_be_below_one_over_arms(tmp_path):
    d = benchmark_no_control()
    d["decisions"]["inferiority"] = 0.25
    p = design_problem(tmp_path, d, "design.decisions.inferiority")
    assert p.value == 0.25 and "1/4 = 0.250" in p.message
    d["decisions"]["inferiority"] = 0.24
    assert_valid(tmp_path, d)


def test_no_control_superiority_must_exceed_one_over_arms(tmp_path):
    d = benchmark_no_control()
    d["decisions"]["superiority"] = 0.25
    p = design_problem(tmp_path, d, "design.decisions.superiority")
    assert p.value == 0.25 and "above 1/4" in p.message
    d["decisions"]["superiority"] = 0.26
    assert_valid(tmp_path, d)


def test_futility_without_control(tmp_path):
    d = benchmark_no_control()
    d["decisions"]["futility"] = {"threshold": 0.1, "delta": 0.05}
    p = design_problem(tmp_path, d, "design.decisions.futility")
    assert "set design.control" in p.message


def test_no_decision_rule(tmp_path):
    d = pioneer()
    d["decisions"] = {"superiority": None, "inferiority": None}
    p = design_problem(tmp_path, d, "design.decisions")
    assert "no decision rule is enabled" in p.message


# --------------------------------------------------------------------------- control allocation


def test_control_allocation_without_control(tmp_path):
    d = benchmark()
    del d["control"]
    p = design_problem(tmp_path, d, "design.control_allocation")
    assert p.message == "needs a control arm; set design.control"


def test_fixed_control_allocation_needs_share(tmp_path):
    d = benchmark()
    d["control_allocation"] = {"rule": "fixed"}
    p = design_problem(tmp_path, d, "design.control_allocation")
    assert p.message.startswith("rule 'fixed' needs a share")


def test_sqrt_k_control_allocation_takes_no_share(tmp_path):
    d = benchmark()
    d["control_allocation"]["share"] = 0.3
    p = design_problem(tmp_path, d, "design.control_allocation")
    assert p.message == "rule 'sqrt_k' computes the share itself; remove share"


def test_fixed_share_table_must_cover_every_arm_count(tmp_path):
    d = benchmark()
    d["control_allocation"] = {"rule": "fixed", "share": {3: 0.35, 2: 0.40}}
    p = design_problem(tmp_path, d, "design.control_allocation.share")
    assert p.value == "missing [1]" and "1..3" in p.message
    d["control_allocation"]["share"][1] = 0.5
    design = load_file(write(tmp_path, d))
    assert design.control_allocation.share == {1: 0.5, 2: 0.4, 3: 0.35}


# --------------------------------------------------------------------------- allocation limits

# pioneer_rar: sqrt_k with k = 3 gives the control sqrt(3)/(sqrt(3)+3) = 0.366, leaving 0.634.
LEFT = 1 - math.sqrt(3) / (math.sqrt(3) + 3)


def test_min_allocation_too_large_after_control_share(tmp_path):
    d = pioneer()
    d["randomization"]["min_allocation"] = 0.25
    p = design_problem(tmp_path, d, "design.randomization.min_allocation")
    assert p.value == 0.25
    assert f"add up to 0.750 but only {LEFT:.3f} is left after the control" in p.message
    d["randomization"]["min_allocation"] = 0.21  # 0.63 fits
    assert_valid(tmp_path, d)


def test_max_allocation_cannot_cover_the_rest(tmp_path):
    d = pioneer()
    d["randomization"]["max_allocation"] = 0.2
    p = design_problem(tmp_path, d, "design.randomization.max_allocation")
    assert p.value == 0.2
    assert f"add up to 0.600, less than the {LEFT:.3f}" in p.message
    d["randomization"]["max_allocation"] = 0.22  # 0.66 covers it
    assert_valid(tmp_path, d)


def test_min_above_max_for_an_arm(tmp_path):
    d = pioneer()
    d["randomization"]["max_allocation"] = {"durva_oleclumab": 0.05}
    p = design_problem(tmp_path, d, "design.randomization.min_allocation.durva_oleclumab")
    assert p.value == 0.1 and "exceeds the maximum allocation 0.05" in p.message


def test_min_allocation_names_unknown_arm(tmp_path):
    d = pioneer()
    d["randomization"]["min_allocation"] = {"durva_olec": 0.1}
    p = design_problem(tmp_path, d, "design.randomization.min_allocation.durva_olec")
    assert p.value == "durva_olec" and "is not an arm of this design" in p.message


def test_min_allocation_for_control_with_control_allocation(tmp_path):
    d = pioneer()
    d["randomization"]["min_allocation"] = {"docetaxel": 0.1}
    p = design_problem(tmp_path, d, "design.randomization.min_allocation.docetaxel")
    assert "set by control_allocation" in p.message


# --------------------------------------------------------------------------- randomization


def test_adaptive_needs_softening(tmp_path):
    d = benchmark()
    del d["randomization"]["softening"]
    p = design_problem(tmp_path, d, "design.randomization")
    assert p.message.startswith("adaptive randomization needs softening")


def test_fixed_takes_no_softening(tmp_path):
    d = benchmark()
    d["randomization"]["method"] = "fixed"
    p = design_problem(tmp_path, d, "design.randomization")
    assert p.message.startswith("fixed randomization does not use ['softening']")


def test_softening_list_of_wrong_length(tmp_path):
    d = pioneer()
    d["randomization"]["softening"] = [0.5] * 6
    p = design_problem(tmp_path, d, "design.randomization.softening")
    assert "one value per look (7 looks)" in p.message and p.value == "6 values"
    d["randomization"]["softening"] = [0, 0.25, 0.5, 0.5, 0.5, 0.75, 1]
    assert_valid(tmp_path, d)


def test_negative_softening_names_the_field(tmp_path):
    d = pioneer()
    d["randomization"]["softening"] = -1
    p = design_problem(tmp_path, d, "design.randomization.softening")
    assert p.value == -1 and "greater than or equal to 0" in p.message


def test_burn_in_must_be_below_maximum(tmp_path):
    d = pioneer()
    d["randomization"]["burn_in_n"] = 240
    p = design_problem(tmp_path, d, "design.randomization.burn_in_n")
    assert p.value == 240 and "below the maximum sample size 240" in p.message
    d["randomization"]["burn_in_n"] = 239
    assert_valid(tmp_path, d)


def test_ratios_name_unknown_arm(tmp_path):
    d = benchmark_fixed()
    d["randomization"]["ratios"] = {"A": 2, "B": 1, "C": 1, "D": 1, "E": 1}
    p = design_problem(tmp_path, d, "design.randomization.ratios.E")
    assert p.value == "E" and "is not an arm" in p.message


def test_ratios_missing_an_arm(tmp_path):
    d = benchmark_fixed()
    d["randomization"]["ratios"] = {"A": 2, "B": 1, "C": 1}
    p = design_problem(tmp_path, d, "design.randomization.ratios")
    assert p.message == "gives no ratio for arms ['D']"
    d["randomization"]["ratios"]["D"] = 1
    assert load_file(write(tmp_path, d)).randomization.ratios == {"A": 2.0, "B": 1.0, "C": 1.0, "D": 1.0}


# --------------------------------------------------------------------------- all problems at once


def test_all_field_problems_in_one_file_are_reported(tmp_path):
    d = pioneer()
    d["arms"][1]["max_n"] = 0
    d["prior"]["a"] = -1
    d["endpoint"]["direction"] = "up"
    d["randomization"]["softenning"] = 1
    d["decisions"]["superiority"] = 1.5
    problems = problems_of(tmp_path, d)
    assert sorted(p.path for p in problems) == sorted(
        [
            "design.arms[1].max_n",
            "design.prior.a",
            "design.endpoint.direction",
            "design.randomization.softenning",
            "design.decisions.superiority",
        ]
    )
    assert all(p.file == str(tmp_path / "file.yaml") for p in problems)


def test_all_design_level_problems_in_one_file_are_reported(tmp_path):
    d = pioneer()
    d["arms"][3]["name"] = "docetaxel"
    d["arms"][1]["max_n"] = 500
    d["randomization"]["burn_in_n"] = 300
    d["randomization"]["softening"] = [0.5, 0.5]
    d["decisions"]["inferiority"] = [0.01, 0.02]
    path = write(tmp_path, d)
    problems = validate_files([path])
    assert sorted(p.path for p in problems) == sorted(
        [
            "design.arms[3].name",
            "design.arms[1].max_n",
            "design.randomization.burn_in_n",
            "design.randomization.softening",
            "design.decisions.inferiority",
        ]
    )
    with pytest.raises(ConfigError) as info:
        Spec.load(path, "pioneer_null")
    assert len(info.value.problems) == 5
    assert str(info.value).splitlines() == [p.format() for p in info.value.problems]


def test_problems_from_several_files_are_reported_together(tmp_path):
    d = pioneer()
    d["randomization"]["burn_in_n"] = 300
    s = shipped("scenario", "pioneer_null")
    s["treatments"]["docetaxel"]["outcomes"]["orr"]["rate"] = 2
    s["treatments"]["durva_oleclumab"]["outcomes"] = {"orr": {"odds_ratio": -1}}
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: [x\n")
    dfile, sfile = write(tmp_path, d, "d.yaml"), write(tmp_path, s, "s.yaml")
    problems = validate_files([dfile, sfile, broken])
    assert sorted((p.file, p.path) for p in problems) == sorted(
        [
            (str(dfile), "design.randomization.burn_in_n"),
            (str(sfile), "scenario.treatments.docetaxel.outcomes.orr.rate"),
            (str(sfile), "scenario.treatments.durva_oleclumab.outcomes.orr.odds_ratio"),
            (str(broken), "file"),
        ]
    )
    with pytest.raises(ConfigError) as info:
        Spec.load(dfile, sfile)
    assert len(info.value.problems) == 3


def test_pair_problems_are_all_reported(tmp_path):
    d = pioneer()
    d["endpoint"]["name"] = "os"
    d["arms"][1]["treatment"] = "x1"
    d["arms"][3]["treatment"] = "x3"
    dfile = write(tmp_path, d)
    problems = validate_files([dfile, ROOT / "scenarios" / "pioneer_null.yaml"])
    assert [p.path for p in problems] == [
        "design.endpoint.name",
        "design.arms[1].treatment",
        "design.arms[3].treatment",
    ]
    with pytest.raises(ConfigError) as info:
        Spec.load(dfile, "pioneer_null")
    assert len(info.value.problems) == 3


# --------------------------------------------------------------------------- spec hash


def _hash(tmp_path, design: dict, scenario: dict, tag: str = "") -> str:
    return Spec.load(write(tmp_path, design, f"d{tag}.yaml"), write(tmp_path, scenario, f"s{tag}.yaml")).spec_hash


def test_spec_hash_is_stable():
    a = Spec.load("pioneer_rar", "pioneer_alternative").spec_hash
    b = Spec.load("pioneer_rar", "pioneer_alternative").spec_hash
    assert a == b and len(a) == 16 and int(a, 16) >= 0
    assert Spec.load("pioneer_rar", "pioneer_null").spec_hash != a
    assert Spec.load("benchmark_four_arm", "benchmark_four_arm").spec_hash != a


def _reorder(obj):
    """Same content, every mapping's keys in reverse order."""
    if isinstance(obj, dict):
        return {k: _reorder(obj[k]) for k in reversed(list(obj))}
    if isinstance(obj, list):
        return [_reorder(v) for v in obj]
    return obj


@pytest.mark.parametrize("design,scenario", PAIRS)
def test_spec_hash_ignores_key_order_comments_and_location(tmp_path, design, scenario):
    original = Spec.load(design, scenario).spec_hash
    d, s = shipped("design", design), shipped("scenario", scenario)
    dfile, sfile = write(tmp_path, _reorder(d), "d.yaml"), write(tmp_path, _reorder(s), "s.yaml")
    assert "#" not in dfile.read_text() + sfile.read_text()  # comments are gone
    assert list(yaml.safe_load(dfile.read_text())) == list(reversed(list(d)))  # order really changed
    assert Spec.load(dfile, sfile).spec_hash == original


def test_spec_hash_ignores_int_versus_float_spelling(tmp_path):
    d, s = pioneer(), shipped("scenario", "pioneer_null")
    original = _hash(tmp_path, d, s)
    d["prior"] = {"a": 1.0, "b": 1.0}
    d["randomization"]["softening"] = 0.50
    assert _hash(tmp_path, d, s, "2") == original


def _numeric_leaves(obj, path=()):
    if isinstance(obj, bool):
        return
    if isinstance(obj, (int, float)):
        yield path, obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield from _numeric_leaves(v, path + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _numeric_leaves(v, path + (i,))


def _set(obj, path, value):
    for part in path[:-1]:
        obj = obj[part]
    obj[path[-1]] = value


@pytest.mark.parametrize("design,scenario", PAIRS)
def test_spec_hash_changes_when_any_number_changes(tmp_path, design, scenario):
    base_d, base_s = shipped("design", design), shipped("scenario", scenario)
    original = Spec.load(design, scenario).spec_hash
    checked = 0
    for which, base in (("design", base_d), ("scenario", base_s)):
        for path, value in _numeric_leaves(base):
            if which == "design" and path == ("looks", "last"):
                continue  # 2000 -> 2001 gives the same looks; covered by the shorthand test below
            if which == "design" and path[0] == "targets":
                continue  # what the design promises changes no result; tests/test_targets.py holds it out of the hash
            candidates = [value + 1, value - 1] if isinstance(value, int) else [value + 0.01, value - 0.01]
            for new in candidates:
                d, s = copy.deepcopy(base_d), copy.deepcopy(base_s)
                _set(d if which == "design" else s, path, new)
                try:
                    h = _hash(tmp_path, d, s, str(checked))
                except ConfigError:
                    continue
                assert h != original, f"{which}.{path}: {value} -> {new} left spec_hash unchanged"
                checked += 1
                break
            else:
                pytest.fail(f"no valid change found for {which}.{path} = {value}")
    assert checked >= 14


def test_spec_hash_follows_the_expanded_looks(tmp_path):
    d, s = benchmark(), shipped("scenario", "benchmark_four_arm")
    original = _hash(tmp_path, d, s)
    d["looks"] = {"randomized_n": list(range(400, 2001, 100))}
    assert _hash(tmp_path, d, s, "explicit") == original  # the shorthand is only a spelling
    d["looks"] = {"first": 400, "every": 100, "last": 1900}
    assert _hash(tmp_path, d, s, "shorter") != original


def test_deeply_nested_yaml_is_refused_whatever_the_recursion_limit(tmp_path):
    """PyYAML runs out of stack only under Python's default recursion limit (PyTensor raises it), so
    the depth is checked on the parsed file too: the same error either way."""
    import sys

    from platform_sim.config import ConfigError, load_file

    path = tmp_path / "deep.yaml"
    path.write_text("name: x\ncontrol: " + "[" * 300 + "]" * 300 + "\n")
    for limit in (1000, 20000):
        old = sys.getrecursionlimit()
        sys.setrecursionlimit(limit)
        try:
            with pytest.raises(ConfigError, match="nested too deeply"):
                load_file(path, "design")
        finally:
            sys.setrecursionlimit(old)
