"""Every shipped design meets the targets it states (slow: ``python -m pytest -m slow``).

Each design with a ``targets`` section runs ``N_SIMS`` trials on its null and on its alternative
scenario, with a seed that none of the calibrations or sizings used (they ran on seed 1), so the
check is out of sample:

* the family-wise error rate, P(any claim) on the global null, is at most the target plus 3 Monte
  Carlo standard errors, sqrt(a (1 - a) / N_SIMS) at the target a (0.0095 for a = 0.10);
* the power, P(at least one true claim) on the common yardstick, is at least the target minus
  3 MCSE (0.0126 for a target of 0.80), unless the design states a ``power_shortfall``; a design
  that states one must indeed fall short (power at most the target plus 3 MCSE), so a stale
  shortfall is caught too.

About a minute and a half on one core, most of it the hierarchical and the platform designs.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from platform_sim.config import resolve, shipped_names, target_scenarios
from platform_sim.config.load import load_file
from platform_sim.oc import trial_values
from platform_sim.runner import run
from platform_sim.spec import Spec
from platform_sim.yardstick import for_specs, reading, values

N_SIMS = 1000
SEED = 97  # not the seed of any calibration or sizing in the design files (seed 1)
WORKERS = 1


def _with_targets() -> list[str]:
    return [name for name in shipped_names("design") if load_file(resolve(name, "design"), "design").targets]


@pytest.mark.slow
@pytest.mark.parametrize("name", _with_targets())
def test_shipped_design_meets_its_targets(name):
    path = resolve(name, "design")
    design = load_file(path, "design")
    targets = design.targets
    null_file, alternative_file = target_scenarios(design, str(path))

    null = Spec.load(path, null_file)
    fwer = float(np.mean(trial_values(run(null, N_SIMS, SEED, WORKERS), null.truth)["p_any_claim"]))
    fwer_mcse = math.sqrt(targets.fwer * (1 - targets.fwer) / N_SIMS)
    assert fwer <= targets.fwer + 3 * fwer_mcse, (
        f"{name}: P(any claim) on {null.scenario.name} is {fwer:.4f}, above the target {targets.fwer:g} "
        f"+ 3 MCSE ({fwer_mcse:.4f})"
    )

    alternative = Spec.load(path, alternative_file)
    results = run(alternative, N_SIMS, SEED, WORKERS)
    power = float(np.nanmean(values(results, reading(alternative, for_specs([alternative])))["trial", "", "", "power"]))
    power_mcse = math.sqrt(targets.power * (1 - targets.power) / N_SIMS)
    if targets.power_shortfall is None:
        assert power >= targets.power - 3 * power_mcse, (
            f"{name}: power on {alternative.scenario.name} is {power:.4f}, below the target {targets.power:g} "
            f"- 3 MCSE ({power_mcse:.4f}), and no power_shortfall says why"
        )
    else:
        assert power <= targets.power + 3 * power_mcse, (
            f"{name}: states a power shortfall, but its power on {alternative.scenario.name} is {power:.4f}, "
            f"above the target {targets.power:g}"
        )
