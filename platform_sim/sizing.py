"""Size designs alike before comparing them: the same maximum sample size, or the same accrual duration.

A design's planned size under a scenario (:class:`~platform_sim.families.Size`) is its
maximum number of randomized patients and its planned accrual duration: the months its
screening funnel needs, at the scenario's expected accrual with every stratum open, to
randomize that many (a platform's maximum duration). ``equalize`` gives every design the
reference design's value of one of them:

* ``max_n``: every sample size of the design (looks, caps, stage sizes, burn-in) is
  scaled by one factor so that its maximum is the reference's;
* ``duration``: designs with looks or strata are scaled so that their funnel randomizes
  their maximum in the reference's planned accrual duration; a platform's maximum
  duration is set to it.

Sample sizes are whole numbers, so a scaled maximum can differ from the target by a patient.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping

import pandas as pd

from .config import ConfigError, Design, Problem
from .spec import Spec

#: What ``equalize`` can make equal.
EQUAL = ("none", "max_n", "duration")


def equalize(specs: Mapping[Hashable, Spec], reference: Hashable, how: str) -> tuple[dict[Hashable, Design],
                                                                                     pd.DataFrame]:
    """Every design of ``specs`` (one spec per design, all on one scenario) sized like ``reference``'s:
    the designs (the reference's unchanged, and a design already of that size unchanged) and a table
    of what changed (design, what, before, after, max_n before and after, months before and after)."""
    if how not in EQUAL:
        raise ConfigError([Problem("equal", f"unknown; allowed: {', '.join(EQUAL)}", how)])
    out: dict[Hashable, Design] = {}
    rows = []
    ref = specs[reference]
    target = ref.family.size(ref.compiled)
    if how == "max_n" and target.max_n is None:
        raise ConfigError([Problem("equal", f"the reference design {ref.design.name!r} has no maximum sample size (its "
                                   "calendar sets it); use --equal duration or another reference", how)])
    problems = []
    for key, spec in specs.items():
        before = spec.family.size(spec.compiled)
        if key == reference or how == "none" or (how == "max_n" and before.max_n == target.max_n) \
                or (how == "duration" and abs(before.months - target.months) < 1e-9):
            out[key] = spec.design
            continue
        try:
            if how == "max_n":
                design = spec.family.resize(spec.compiled, max_n=target.max_n)
            else:
                design = spec.family.resize(spec.compiled, months=target.months)
        except ConfigError as exc:
            problems += [Problem(p.path, p.message, p.value, file=spec.design_file) for p in exc.problems]
            continue
        after = Spec.from_models(design, spec.scenario, spec.design_file, spec.scenario_file)
        size = after.family.size(after.compiled)
        out[key] = design
        rows.append({"design": spec.design.name, "equal": how, "reference": ref.design.name,
                     "max_n_before": before.max_n, "max_n_after": size.max_n,
                     "months_before": before.months, "months_after": size.months,
                     "target_max_n": target.max_n, "target_months": target.months})
    if problems:
        raise ConfigError(problems)
    return out, pd.DataFrame(rows, columns=["design", "equal", "reference", "max_n_before", "max_n_after",
                                            "months_before", "months_after", "target_max_n", "target_months"])


__all__ = ["EQUAL", "equalize"]
