"""Single-arm two-stage designs (Simon 1989): the worked example of a design family.

Everything a new kind of design needs is in this one module: how to recognise it
(:meth:`TwoStageFamily.matches`), how to compile it for a scenario, how to simulate
a batch of trials into the common :class:`~platform_sim.results.TrialResults`, what
is true (:class:`~platform_sim.results.Truth`), the design in words, and the trial
storyboard. Registering the family object in ``platform_sim.families.FAMILIES`` is
all it takes for ``run``, ``compare``, ``calibrate``, the reports and the Python API
to handle it; the design file's ``two_stage`` section is validated by
:mod:`platform_sim.config.two_stage`.

The trial: every patient is treated with the one arm. After ``n1`` patients have an
outcome, the trial stops for futility unless more than ``r1`` responded; otherwise it
continues to ``n`` patients, and the treatment is claimed active when more than ``r``
of them responded. The claim is judged against the treatment's true rate among all
patients: it works when the rate reaches ``p1`` (the rate the design is powered for)
and is null when it is at most ``p0``. Its exact operating characteristics are known
(:func:`platform_sim.posterior.simon.simon_oc`), which the tests hold the simulation to.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..config import ConfigError, Design, Problem, Scenario
from ..config.base import MAX_SCREENED
from ..config.population import expected_funnel
from ..config.two_stage import TwoStage
from ..outcomes import VirtualPatients
from ..posterior.simon import simon_design
from ..results import EFFECTIVE, FUTILE, TrialResults, Truth
from ..streams import TrialStreams
from .base import Description, Parameter, Section, Size, Table, accrual_months, enrol_options, setting

STOP_NAMES = ("stage_1_futility", "end")
_TOL = 1e-9


@dataclass(frozen=True, eq=False)
class TwoStageDesign:
    """A single-arm two-stage design compiled for a scenario."""

    design: Design
    scenario: Scenario
    patients: VirtualPatients
    n1: int
    r1: int
    n: int
    r: int
    true_rate: float  # the arm's exact rate among all patients
    assessment_months: float
    # every eligible patient is treated, whatever their biomarkers: no wait for a biomarker result
    needs_biomarker_result: bool = False

    @property
    def arm_names(self) -> tuple[str, ...]:
        return (self.design.arms[0].name,)


def section(design: Design) -> TwoStage:
    """The design's ``two_stage`` section (a design of this family has one)."""
    ts = design.two_stage
    assert ts is not None
    return ts


def _stages(design: Design) -> tuple[int, int, int, int]:
    ts = section(design)
    if ts.stages is not None:
        return ts.stages.n1, ts.stages.r1, ts.stages.n, ts.stages.r
    found = simon_design(ts.p0, ts.p1, ts.alpha, 1.0 - ts.power, ts.kind, n_max=ts.max_n)
    return int(found.n1), int(found.r1), int(found.n), int(found.r)


def _expected_screened(scenario: Scenario, n: int) -> float:
    """Patients a trial is expected to screen to treat ``n``: every clinically eligible patient is
    treated, without waiting for a biomarker result (0 when the funnel lets nobody through, which
    the scenario's own checks report)."""
    funnel = expected_funnel(scenario.population, False)["randomized"]
    return n / funnel if funnel > 0 else 0.0


class TwoStageFamily:
    """Single-arm two-stage designs (see the module docstring)."""

    name = "two_stage"
    title = "single-arm two-stage design"

    def matches(self, design: Design) -> bool:
        return design.two_stage is not None

    def compile(self, design: Design, scenario: Scenario, patients: VirtualPatients) -> TwoStageDesign:
        endpoint = scenario.endpoints[design.endpoint.name]
        problems = []
        if endpoint.kind == "time_to_event":
            problems.append(
                Problem(
                    "design.endpoint.name",
                    "is a time-to-event endpoint; a two-stage design counts "
                    "responders on a binary or landmark endpoint",
                    design.endpoint.name,
                )
            )
        if not design.endpoint.higher_is_better:
            problems.append(
                Problem(
                    "design.endpoint.direction",
                    "a two-stage design counts responders: the endpoint must be higher_is_better",
                    design.endpoint.direction,
                )
            )
        if problems:
            raise ConfigError(problems)
        try:
            n1, r1, n, r = _stages(design)
        except ValueError as exc:
            ts = section(design)
            raise ConfigError(
                [
                    Problem(
                        "design.two_stage",
                        f"no two-stage design of at most {ts.max_n} patients has "
                        f"alpha <= {ts.alpha:g} and power >= {ts.power:g} for p0 = {ts.p0:g} against "
                        f"p1 = {ts.p1:g} ({exc}); raise max_n or give the stages",
                        None,
                    )
                ]
            ) from None
        screened = _expected_screened(scenario, n)
        if screened > MAX_SCREENED:
            field = "design.two_stage.stages.n" if section(design).stages is not None else "design.two_stage"
            raise ConfigError(
                [
                    Problem(
                        field,
                        f"a simulated trial would screen about {screened:.3g} patients under "
                        f"scenario {scenario.name!r} to treat {n}, more than the {MAX_SCREENED} the "
                        "simulator screens per trial; the scenario's screening lets few patients through",
                        n,
                    )
                ]
            )
        rate = float(patients.truth(design.endpoint.name, [design.arms[0].treatment])[0])
        return TwoStageDesign(
            design,
            scenario,
            patients,
            n1,
            r1,
            n,
            r,
            rate,
            patients.outcomes.assessment_months(design.endpoint.name),
            needs_biomarker_result=False,
        )

    def recompile(self, compiled: TwoStageDesign, design: Design) -> TwoStageDesign:
        n1, r1, n, r = _stages(design)
        return TwoStageDesign(
            design,
            compiled.scenario,
            compiled.patients,
            n1,
            r1,
            n,
            r,
            compiled.true_rate,
            compiled.assessment_months,
            compiled.needs_biomarker_result,
        )

    def simulate(self, compiled: TwoStageDesign, streams: TrialStreams, trace=None) -> TrialResults:
        c = compiled
        enrolled = c.patients.enrol(
            streams,
            c.n,
            c.design.endpoint.name,
            [c.design.arms[0].treatment],
            times=True,
            biomarker_result=c.needs_biomarker_result,
            **enrol_options(trace, None, c.patients.population.names),
        )
        response = enrolled.outcomes[:, : c.n, 0].astype(bool)
        stage1 = response[:, : c.n1].sum(axis=1)
        go_on = stage1 > c.r1
        total = np.where(go_on, response.sum(axis=1), stage1)
        n = np.where(go_on, c.n, c.n1)
        claimed = go_on & (total > c.r)
        rows = np.arange(streams.n_trials)
        last = n - 1
        ready = enrolled.ready
        # an analysis happens when the outcome of its last patient is known
        stage1_month = ready[:, c.n1 - 1] + c.assessment_months
        end_month = ready[rows, last] + c.assessment_months
        if trace is not None:
            trace.enrolled = enrolled
            trace.record(
                "stage",
                rows,
                stage=1,
                month=stage1_month,
                patients=np.full(rows.size, c.n1),
                responders=stage1,
                go_on=go_on,
            )
            trace.record(
                "stage",
                rows[go_on],
                stage=2,
                month=end_month[go_on],
                patients=n[go_on],
                responders=total[go_on],
                claimed=claimed[go_on],
            )
        return TrialResults(
            trial=np.asarray(streams.trials, dtype=np.int64),
            arms=c.arm_names,
            strata=("all",),
            subgroups=("all",),
            membership=np.ones((1, 1), dtype=bool),
            stop_names=STOP_NAMES,
            n=n[:, None, None].astype(np.int64),
            events=total[:, None, None].astype(np.int64),
            claimed=claimed[:, None, None],
            claim_month=np.where(claimed, end_month, np.nan)[:, None, None],
            status=np.where(claimed, EFFECTIVE, FUTILE).astype(np.int8)[:, None],
            stop_reason=np.where(go_on, 1, 0).astype(np.int8),
            n_screened=(enrolled.screened_index[rows, last] + 1).astype(np.int64),
            duration_months=end_month,
            estimates={"rate": (total / n)[:, None, None]},
            estimate_targets={"rate": "value"},
            trial_values={"p_stopped_early": ~go_on},
            extras={"stage_1_responders": stage1, "stage_1_month": stage1_month},
            extra_dims={"stage_1_responders": ("trial",), "stage_1_month": ("trial",)},
        )

    def truth(self, compiled: TwoStageDesign) -> Truth:
        ts = section(compiled.design)
        rate = compiled.true_rate
        works = rate >= ts.p1 - _TOL
        null = rate <= ts.p0 + _TOL
        one = np.ones((1, 1), dtype=bool)
        return Truth(
            arms=compiled.arm_names,
            subgroups=("all",),
            strata=("all",),
            membership=one,
            share=np.ones(1),
            value=np.array([[rate]]),
            reference=np.array([[ts.p0]]),
            effect=np.array([[rate - ts.p0]]),
            works=one & works,
            null=one & null,
            judged=one.copy(),
            works_in_stratum=one & works,
            null_in_stratum=one & null,
            control=-1,
            value_name="response rate",
            effect_scale="rate above p0",
            effect_better=1.0,
        )

    def size(self, compiled: TwoStageDesign) -> Size:
        return Size(
            compiled.n,
            accrual_months(compiled.patients.population.config, compiled.n, 1.0, compiled.needs_biomarker_result),
        )

    def resize(self, compiled: TwoStageDesign, max_n: int | None = None, months: float | None = None) -> Design:
        raise ConfigError(
            [
                Problem(
                    "design.two_stage",
                    f"{compiled.design.name!r} is a two-stage design whose stage "
                    "sizes and responder boundaries are derived together; resize it by giving a new "
                    "alpha, power or rates, not by scaling",
                    None,
                )
            ]
        )

    def profiles(self, compiled: TwoStageDesign, characteristics: list[str]):
        from ..strata import profile_strata

        return profile_strata(compiled.patients.population, None, characteristics)

    def describe(self, compiled: TwoStageDesign) -> Description:
        c = compiled
        ts = section(c.design)
        found = "given" if ts.stages is not None else f"Simon's {ts.kind} design"
        words = (
            f"Every patient is treated with {c.arm_names[0]}. Stage 1: {c.n1} patients; the trial stops for futility "
            f"unless more than {c.r1} respond. Stage 2: up to {c.n} patients in all; the treatment is claimed "
            f"active when more than {c.r} respond.",
            f"Stages: {found} for p0 = {setting(ts.p0)} (no interest) against p1 = {setting(ts.p1)}, one-sided "
            f"alpha = {setting(ts.alpha)}, power = {setting(ts.power)}.",
            "The treatment works when its true rate reaches p1 (a claim is a true positive) and is null when its "
            "rate is at most p0 (a claim is a false positive).",
        )
        table = Table(
            "Stages", ("stage", "patients", "continue / claim when responders exceed"), ((1, c.n1, c.r1), (2, c.n, c.r))
        )
        return Description(
            kind=self.title,
            summary=f"{c.n1} then up to {c.n} patients on {c.arm_names[0]}",
            sections=(Section("Stages and decision", words, (table,)),),
        )

    def story(self, compiled: TwoStageDesign, trace, result: TrialResults):
        """The two analyses in the storyboard's table of looks (the rate's posterior from Jeffreys'
        Beta(1/2, 1/2) prior, for the picture), and every screened patient."""
        import pandas as pd

        from ..posterior import beta_interval
        from .story import Story, screened_frame

        rows = []
        for ev in trace.events:
            y, m = int(ev["responders"]), int(ev["patients"])
            a, b = 0.5 + y, 0.5 + m - y
            lo, hi = beta_interval(np.array([a]), np.array([b]), 0.95)
            if ev["stage"] == 1:
                decision = "" if ev["go_on"] else "futile"
            else:
                decision = "effective" if ev["claimed"] else "futile"
            rows.append(
                {
                    "look": int(ev["stage"]),
                    "patients_randomized": m,
                    "patients_followed": m,
                    "stratum": "all",
                    "arm": compiled.arm_names[0],
                    "randomized": m,
                    "followed": m,
                    "events": y,
                    "post_mean": a / (a + b),
                    "post_lower": float(lo[0]),
                    "post_upper": float(hi[0]),
                    "p_best": np.nan,
                    "p_better_than_control": np.nan,
                    "allocation": 1.0,
                    "allocation_next": 1.0 if decision == "" else 0.0,
                    "status": decision or "active",
                    "decision": decision,
                }
            )
        enrolled, row = trace.enrolled, trace.row
        n = int(result.n_randomized[0])
        positions = enrolled.screened_index[row, :n]
        frame = screened_frame(
            compiled.patients.population,
            compiled.arm_names,
            enrolled,
            row,
            int(result.n_screened[0]),
            {int(p): 0 for p in positions},
            {int(p): "all" for p in positions},
        )
        outcome = {int(p): int(enrolled.outcomes[row, i, 0]) for i, p in enumerate(positions)}
        frame["response"] = [outcome.get(int(p), -1) for p in frame["patient"]]
        summary = {
            "stages": len(rows),
            "stop_reason": result.stop_names[int(result.stop_reason[0])],
            "patients_randomized": n,
            "responders": int(result.events[0].sum()),
            "claimed_effective": [compiled.arm_names[0]] if result.claimed[0].any() else [],
            "duration_months": float(result.duration_months[0]),
        }
        return Story(pd.DataFrame(rows), frame, summary, timeline="looks")

    @property
    def parameters(self) -> dict[str, Parameter]:
        return {}  # integer boundaries set by the error rates: nothing for calibrate to move


TWO_STAGE = TwoStageFamily()
