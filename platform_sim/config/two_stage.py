"""The section of a single-arm two-stage design (Simon, Controlled Clinical Trials 1989;10:1-10).

Stage 1 treats ``n1`` patients and stops for futility unless more than ``r1`` of them
respond; stage 2 takes the total to ``n`` patients, and the treatment is declared
active when more than ``r`` of the ``n`` respond. Give the stages yourself
(``stages: {n1, r1, n, r}``), or the hypotheses (``p0``, the response rate of no
interest, and ``p1``, the rate worth pursuing) with the error rates (``alpha``, one
sided, and ``power``) and let the design be found: Simon's ``optimal`` design
(smallest expected size under p0) or ``minimax`` (smallest maximum size).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from .base import MAX_PATIENTS, Frozen, NonNegativeInt, OpenProbability

# The largest total sample size searched for a Simon design: the exhaustive search's time grows as
# about n^4 (1 s up to 100 patients, 16 s up to 200, 55 s up to 300 on one core when no design is
# feasible), and 10^6 asked for a terabyte. A larger design can be given by its stages.
MAX_SEARCHED_N = 200
Patients = Annotated[int, Field(gt=0, le=MAX_PATIENTS)]


class Stages(Frozen):
    """Explicit stages: stop after ``n1`` patients unless more than ``r1`` respond; declare the
    treatment active when more than ``r`` of ``n`` respond."""

    n1: Patients
    r1: NonNegativeInt
    n: Patients
    r: NonNegativeInt

    @model_validator(mode="after")
    def _order(self) -> Stages:
        problems = []
        if self.n1 > self.n:
            problems.append(f"n1 ({self.n1}) must not exceed n ({self.n})")
        if self.r1 >= self.n1:
            problems.append(f"r1 ({self.r1}) must be below n1 ({self.n1}), or stage 1 can never continue")
        if self.r >= self.n:
            problems.append(f"r ({self.r}) must be below n ({self.n}), or the treatment can never be declared active")
        if self.r < self.r1:
            problems.append(f"r ({self.r}) must be at least r1 ({self.r1})")
        if problems:
            raise ValueError("; ".join(problems))
        return self


class TwoStage(Frozen):
    """A single-arm two-stage design on a binary endpoint (see the module docstring)."""

    p0: OpenProbability
    p1: OpenProbability
    alpha: OpenProbability = 0.05
    power: OpenProbability = 0.80
    kind: Literal["optimal", "minimax"] = "optimal"
    stages: Stages | None = None
    max_n: Annotated[int, Field(ge=2, le=MAX_SEARCHED_N)] = Field(
        default=100, description="the largest total sample size searched when the stages are not given (at most 200)"
    )

    @model_validator(mode="after")
    def _hypotheses(self) -> TwoStage:
        if self.p1 <= self.p0:
            raise ValueError(
                f"p1 ({self.p1}) must exceed p0 ({self.p0}): the rate worth pursuing is above the rate of no interest"
            )
        return self
