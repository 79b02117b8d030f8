"""The design, the scenario and the truth in words and tables (page fragments of a report)."""

from __future__ import annotations

from ..glossary import label
from ..spec import Spec
from .html import bullets, details, fmt, heading, key_values, para, setting, table


def _threshold(value) -> str:
    if value is None:
        return "off"
    if isinstance(value, list):
        return "per look: " + ", ".join(setting(v) for v in value)
    return setting(value)


def _flatten(prefix: str, value, out: list[tuple[str, str]]) -> None:
    if value is None:
        return
    if isinstance(value, dict):
        for k, v in value.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
    elif isinstance(value, list) and any(isinstance(v, dict) for v in value):
        for i, v in enumerate(value):
            _flatten(f"{prefix}[{i}]", v, out)
    elif isinstance(value, list):
        out.append((prefix, "[" + ", ".join(setting(v) if not isinstance(v, str) else v for v in value) + "]"))
    else:
        out.append((prefix, setting(value)))


def all_settings(model, title: str) -> str:
    """Every setting of a design or scenario as a flat key/value table, folded away."""
    rows: list[tuple[str, str]] = []
    _flatten("", model.model_dump(exclude={"description"}), rows)
    return details(title, key_values(rows))


def _prior(spec: Spec, arm) -> str:
    d = spec.design
    hazard = getattr(d.platform, "hazard_prior", None)
    if hazard is not None:
        return f"Gamma({setting(hazard.shape)}, {setting(hazard.rate)}) on the monthly hazard"
    p = arm.prior or d.prior
    return f"Beta({setting(p.a)}, {setting(p.b)})" if p is not None else ""


def _arms(spec: Spec) -> str:
    d, s = spec.design, spec.scenario
    entering = any(a.enter_months for a in d.arms)
    closing = any(getattr(a, "closes_months", None) is not None for a in d.arms)
    header = ["arm", "treatment", "role", "cap (patients)", "prior"] + (["available from (month)"] if entering else [])
    header += ["closes (month)"] if closing else []
    header.append("treatment in the scenario")
    rows = []
    for arm in d.arms:
        role = "control" if arm.name == d.control else ("experimental" if d.control is not None else "arm")
        cap = setting(arm.max_n) if arm.max_n is not None else "none"
        row = [arm.name, arm.treatment, role, cap, _prior(spec, arm)]
        if entering:
            row.append(setting(arm.enter_months or 0))
        if closing:
            row.append(setting(arm.closes_months) if arm.closes_months is not None else "")
        t = s.treatments.get(arm.treatment)
        row.append(" ".join((t.description if t is not None else "").split()))
        rows.append(row)
    return table(header, rows, "Arms", numeric=[False] * len(header))


def describe_design(spec: Spec, level: int = 3) -> str:
    """The design in words and tables: the family's own description (randomization, looks or
    calendar, decision rules, strata) around the arms and every setting."""
    d, s = spec.design, spec.scenario
    ep = s.endpoints[d.endpoint.name]
    direction = "higher is better" if d.endpoint.higher_is_better else "lower is better"
    description = spec.description
    parts = []
    if d.description:
        parts.append(para(" ".join(d.description.split())))
    parts.append(
        para(
            f"A {description.kind}: {description.summary}. Endpoint: {d.endpoint.name} ({label(ep.kind, 'endpoint')}"
            + (f": {' '.join(ep.description.split())}" if ep.description else "")
            + f"); {direction}."
        )
    )
    parts.append(_arms(spec))
    for sec in description.sections:
        parts.append(heading(level, sec.title))
        if sec.paragraphs:
            parts.append(bullets(sec.paragraphs))
        for t in sec.tables:
            parts.append(table(list(t.header), [list(r) for r in t.rows], t.caption))
    parts.append(all_settings(d, f"All settings of design {d.name}"))
    return "".join(parts)


def describe_scenario(spec: Spec) -> str:
    """The scenario in words and tables (the truth is a separate table)."""
    s = spec.scenario
    parts = []
    if s.description:
        parts.append(para(" ".join(s.description.split())))
    pop = s.population
    parts.append(
        para(f"Population: {pop.name}" + (f" ({' '.join(pop.description.split())})" if pop.description else "") + ".")
    )
    rows = [[name, label(e.kind, "endpoint"), " ".join(e.description.split())] for name, e in s.endpoints.items()]
    parts.append(table(["endpoint", "kind", "description"], rows, "Endpoints"))
    used = {a.treatment for a in spec.design.arms}
    rows = [
        [name, "yes" if name in used else "no", t.relative_to or "", " ".join(t.description.split())]
        for name, t in s.treatments.items()
    ]
    parts.append(table(["treatment", "in this design", "relative to", "description"], rows, "Treatments"))
    notes = []
    if s.dropout is not None:
        notes.append(
            f"Dropout: {setting(s.dropout.probability)} of randomized patients leave before "
            f"{setting(s.dropout.before_weeks)} weeks."
        )
    for name, trend in s.time_trend.items():
        notes.append(
            f"Time trend on {name}: {trend.per_year:+g} on the linear predictor per year of calendar time"
            + (f" for {', '.join(trend.treatments)}." if trend.treatments else " for every treatment.")
        )
    parts.append(bullets(notes))
    parts.append(all_settings(s, f"All settings of scenario {s.name} (population included)"))
    return "".join(parts)


def truth_tables(spec: Spec) -> str:
    """The truth: every arm in every subgroup where it can be claimed effective, exactly."""
    truth = spec.truth
    frame = truth.frame()
    frame = frame[frame["role"] != "not in subgroup"]
    several = len(truth.subgroups) > 1
    header = (["subgroup", "share"] if several else []) + [
        "arm",
        f"true {truth.value_name}",
        "reference",
        f"effect ({truth.effect_scale})",
        "truth",
    ]
    rows = []
    for r in frame.itertuples():
        row = ([r.subgroup, fmt(r.share, 3)] if several else []) + [
            r.arm,
            fmt(r.value, 3),
            fmt(r.reference, 3),
            "" if r.role == "control" else fmt(r.effect, 3),
            r.role,
        ]
        rows.append(row)
    better = "higher" if truth.effect_better > 0 else "lower"
    intro = (
        f"Exact values at calendar time 0 over the patients of each subgroup (share: of randomizable patients); "
        f"the effect is against the arm's reference there ({truth.effect_scale}, {better} is better for "
        f"patients). An arm works where its effect reaches the clinically relevant size (a claim there is a true "
        "positive) and is null where it is no better than its reference (a claim there is a false positive)."
    )
    return para(intro) + table(header, rows, "The truth by arm" + (" and subgroup" if several else ""))


__all__ = ["all_settings", "describe_design", "describe_scenario", "truth_tables"]
