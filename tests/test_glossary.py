"""The one table of words for code names: every name a shipped design's results can carry has a label
and a definition, and names built from a pattern are read from it."""

from __future__ import annotations

import pytest

from platform_sim import oc
from platform_sim.config import ConfigError, load_file, resolve, shipped_names
from platform_sim.config.load import target_scenarios
from platform_sim.glossary import KINDS, TERMS, label, short, term
from platform_sim.results import STATUS_NAMES
from platform_sim.runner import run
from platform_sim.spec import Spec


def _spec(design: str) -> Spec:
    """A shipped design on the alternative scenario of its targets (else the first shipped scenario it binds to)."""
    path = resolve(design, "design")
    model = load_file(path, "design")
    if model.targets is not None:
        return Spec.load(design, target_scenarios(model, str(path))[1].stem)
    for scenario in shipped_names("scenario"):
        try:
            return Spec.load(design, scenario)
        except ConfigError:
            continue
    raise AssertionError(f"{design}: binds to no shipped scenario")


@pytest.mark.parametrize("design", shipped_names("design"))
def test_every_name_of_a_shipped_design_has_words(design):
    """Every metric of oc.csv, every stop reason and every level a shipped design's results carry (a
    few simulated trials: the names do not depend on the numbers) has a label and a definition."""
    spec = _spec(design)
    results = run(spec, 8, 1, chunk_size=8)
    table = oc.frame(oc.summarize(results, spec.truth))
    missing = [m for m in dict.fromkeys(table["metric"]) if term(m) is None]
    assert missing == [], f"{design}: metrics without a glossary entry: {missing}"
    assert [n for n in results.stop_names if term(n, "stop") is None] == []
    assert all(term(level, "level") is not None for level in set(table["level"]))
    for m in dict.fromkeys(table["metric"]):
        t = term(m)
        assert t is not None and t.label and t.meaning and (label(m) != m or "_" not in m)  # words, not the code


def test_every_term_has_a_label_and_a_meaning():
    assert set(TERMS) == set(KINDS)
    for kind, terms in TERMS.items():
        for code, t in terms.items():
            assert t.label.strip() and t.meaning.strip(), (kind, code)
    assert all(term(s, "status") is not None for s in STATUS_NAMES)


def test_names_built_from_a_pattern():
    assert label("mean_n_randomized") == "mean patients randomized"
    assert label("n_randomized_q95") == "patients randomized, 95th percentile"
    assert label("p_stop_superiority") == "P(stopped: superiority)"
    assert label("p_efficacy_look_2") == "P(efficacy at look 2)"
    assert label("month_of_look_3") == "month of look 3"
    assert label("bias_rate") == "bias of the rate estimate"
    assert label("idp_best_remaining") == "ideal design percentage, the best remaining arm"
    assert term("p_stop_no_such_reason") is None and term("mean_no_such_metric") is None
    assert label("no_such_name") == "no_such_name"  # an unknown name is shown as it is (and a test fails)


def test_one_name_of_two_kinds_and_short_labels():
    assert label("n") == "patients" and label("n", "column") == "trials counted"
    assert label("control", "status") == label("control", "role") == "control"
    assert short("fwer") == "FWER" and label("fwer") == "FWER (any false claim)"
    assert short("p_any_claim") == label("p_any_claim")  # no short label: the label
    with pytest.raises(ValueError, match="unknown kind of name 'colour'"):
        term("n", "colour")
