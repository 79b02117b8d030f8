"""The scenario section coupling two time-to-event endpoints by a Gaussian copula.

An alternative to the illness-death model (``illness_death``) when the two endpoints should keep the
marginal models the scenario gives them (each treatment's ``outcomes``, with marker effects,
prognostic factors and piecewise hazards) and only their dependence is to be set::

    copula:
      first: pfs          # a time_to_event endpoint (e.g. progression-free survival)
      second: os          # another one (e.g. overall survival)
      correlation: 0.6    # of the Gaussian copula, in [-1, 1]

A patient's two event times under a treatment come from uniforms (U1, U2) with
Phi^-1(U2) = r Phi^-1(U1) + sqrt(1 - r^2) Phi^-1(V), V the second endpoint's own uniform: the
marginals are exactly the scenario's, and Kendall's tau of the two times is (2 / pi) arcsin(r)
whatever the marginals (Kendall's tau is invariant under increasing transformations). Unlike the
illness-death model, nothing forces the first time below the second.
"""

from __future__ import annotations

import math

from pydantic import Field, model_validator

from .base import Frozen, Name


class Copula(Frozen):
    """Two time-to-event endpoints drawn with a Gaussian copula (see the module docstring)."""

    first: Name = Field(description="time_to_event endpoint whose uniform is kept (e.g. pfs)")
    second: Name = Field(description="time_to_event endpoint coupled to it (e.g. os)")
    correlation: float = Field(
        ge=-1.0, le=1.0, allow_inf_nan=False, description="correlation of the Gaussian copula, in [-1, 1]"
    )

    @model_validator(mode="after")
    def _distinct(self) -> Copula:
        if self.first == self.second:
            raise ValueError(f"first and second must be different endpoints, got {self.first!r} twice")
        return self

    @property
    def kendall_tau(self) -> float:
        """Kendall's tau of the two event times: (2 / pi) arcsin(correlation)."""
        return 2.0 / math.pi * math.asin(self.correlation)
