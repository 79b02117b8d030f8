"""The scenario section of an on-treatment biomarker measured at a re-biopsy.

PIONeeR re-biopsied patients at week 6 of treatment, optionally; 33% had it (nsclc_facts.md). A marker
measured then (for example a rise in tumour-infiltrating CD8 cells) is a state the treatment may induce
and that goes with the later course of the disease::

    on_treatment_marker:
      name: cd8_rise          # the marker's name
      week: 6                 # the re-biopsy, weeks after randomization
      rebiopsied: 0.33        # share of the patients still event-free then who have the re-biopsy
      positive: {docetaxel: 0.2, experimental: 0.4}   # P(marker positive) under each treatment (or one number)
      hazard_ratio: 0.5       # hazard after the week, marker-positive patients against marker-negative ones
      endpoints: [os]         # the time_to_event endpoints whose hazard it multiplies

Each patient has a marker status under every treatment (a potential outcome, with its own random
numbers) and a re-biopsy uniform shared by all treatments. A treatment's outcome model is that of its
marker-negative patients; from the week on, a marker-positive patient's hazard is ``hazard_ratio`` times
it. The population's survival is then the exact mixture (the truths and analytic plans use it):

    S(t) = S_0(t) for t <= w,  S_0(w) [p e^{-h (L(t) - L(w))} + (1 - p) e^{-(L(t) - L(w))}] after,

with S_0 = e^{-L} the treatment's own curve, w the week in months, p the treatment's positive share and
h the hazard ratio. The result is observed for the patients event-free on the design's endpoint at the
week (still followed: "still on treatment" read as event-free), and re-biopsied.
"""

from __future__ import annotations

from pydantic import Field

from .base import Frozen, Name, PositiveWeeks, Probability, Ratio


class OnTreatmentMarker(Frozen):
    """An on-treatment biomarker measured at a re-biopsy (see the module docstring)."""

    name: Name = Field(description="the marker's name")
    week: PositiveWeeks = Field(default=6.0, description="the re-biopsy, weeks after randomization")
    rebiopsied: Probability = Field(
        description="share of the patients still event-free at the week who are re-biopsied, in [0, 1]"
    )
    positive: Probability | dict[Name, Probability] = Field(
        description="P(marker positive) under each treatment: one number for all, or per treatment"
    )
    hazard_ratio: Ratio = Field(description="hazard after the week, marker-positive against marker-negative patients")
    endpoints: list[Name] = Field(min_length=1, description="time_to_event endpoints whose hazard it multiplies")

    def positive_probability(self, treatment: str) -> float:
        """P(marker positive) under ``treatment``."""
        return float(self.positive if not isinstance(self.positive, dict) else self.positive[treatment])
