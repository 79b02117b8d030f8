"""Write the reference results of designs that wait for a biomarker result (reference.npz).

``tests/test_screening.py`` holds the engine to these arrays bit for bit: skipping the assay for
designs that need no biomarker result must not change a single number of the designs that do.
They were written by the engine whose screening charged every design the assay (engine version 1),
with

    python tests/data/screening/make_reference.py

Running it again on a later engine only proves the engine equals itself: regenerate the file only
for a change that is meant to alter these designs' results, and say so.

Regenerated once, when the beta-posterior grid got six nodes per panel on smooth grids and no
+-16 sd breakpoints for light-tailed posteriors: every integer and boolean array (counts, decisions,
times) is still the one engine version 1 wrote, bit for bit; the final analysis's P(best) moved by
at most 9.9e-9 and one interim allocation probability by 5.6e-17 (its last bit).

The shipped designs' decision thresholds have since been calibrated (their targets sections); the
cases run with the thresholds the reference was written with (``THRESHOLDS``), so the arrays still
hold the engine, not the designs' settings, to the reference.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from platform_sim.config import parse_design
from platform_sim.runner import run
from platform_sim.spec import Spec
from platform_sim.streams import Streams

HERE = Path(__file__).resolve().parent
SEED = 20240611
N_TRIALS = 24
CHUNK = 10
#: (design, scenario): an umbrella, stratified response-adaptive randomization, hierarchical borrowing,
#: adaptive enrichment and a stratified platform over calendar time
CASES = (
    ("lungmap_umbrella", "pioneer_alternative"),
    ("battle_stratified_rar", "stk11_keap1_ctla4"),
    ("hierarchical_borrowing", "trop2_adc"),
    ("adaptive_enrichment", "trop2_adc"),
    ("pioneer_platform", "pioneer_alternative"),
)
#: the decision thresholds of the cases when the reference was written: (path in the design, value)
THRESHOLDS = {
    "lungmap_umbrella": (("decisions", "superiority"), 0.99),
    "battle_stratified_rar": (("decisions", "superiority"), 0.995),
    "hierarchical_borrowing": (("decisions", "superiority"), 0.995),
    "adaptive_enrichment": (("decisions", "superiority"), 0.995),
    "pioneer_platform": (("platform", "graduation", "graduate"), 0.85),
}
#: screened patients of the shipped population drawn with the assay (PopulationModel.cohort)
COHORT_SCENARIO, COHORT_TRIALS, COHORT_PATIENTS = "pioneer_alternative", 6, 512


def case_spec(design: str, scenario: str) -> Spec:
    """The shipped design on the scenario, with the threshold it had when the reference was written."""
    shipped = Spec.load(design, scenario)
    data = shipped.design.model_dump()
    (*parents, key), value = THRESHOLDS[design]
    node = data
    for part in parents:
        node = node[part]
    node[key] = value
    return Spec.from_models(parse_design(data), shipped.scenario)


def reference_arrays() -> dict[str, np.ndarray]:
    """Every array of every case's TrialResults (``design/scenario/name``) and of the cohort (``cohort/name``)."""
    out: dict[str, np.ndarray] = {}
    for design, scenario in CASES:
        arrays = run(case_spec(design, scenario), N_TRIALS, SEED, chunk_size=CHUNK).to_arrays()
        out.update({f"{design}/{scenario}/{name}": value for name, value in arrays.items()})
    patients = Spec.load("allcomer_fixed", COHORT_SCENARIO).patients
    cohort = patients.population.cohort(Streams(SEED).for_trials(np.arange(COHORT_TRIALS)), COHORT_PATIENTS)
    out.update({f"cohort/{name}": value for name, value in vars(cohort).items()})
    return out


if __name__ == "__main__":
    np.savez_compressed(HERE / "reference.npz", **reference_arrays())
    print(f"wrote {HERE / 'reference.npz'}")
