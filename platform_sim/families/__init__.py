"""Design families: every kind of design behind one contract (see :mod:`platform_sim.families.base`).

:func:`family_of` is the only place that asks which kind a design is. A new kind
of design is one module with one family object, added to :data:`FAMILIES`.
"""

from __future__ import annotations

from ..config import Design
from .base import Description, Family, Parameter, Section, Size, Table
from .looks import LOOKS
from .platform import PLATFORM
from .stratified import STRATIFIED
from .two_stage import TWO_STAGE

#: Every family, in the order they are asked whether a design is theirs.
FAMILIES: tuple[Family, ...] = (TWO_STAGE, PLATFORM, STRATIFIED, LOOKS)


def family_of(design: Design) -> Family:
    """The family a design belongs to."""
    for family in FAMILIES:
        if family.matches(design):
            return family
    raise ValueError(f"design {design.name!r} belongs to no design family")  # pragma: no cover - LOOKS takes the rest


def family_named(name: str) -> Family:
    """The family called ``name`` ('looks', 'stratified', 'platform', ...)."""
    for family in FAMILIES:
        if family.name == name:
            return family
    raise ValueError(f"no design family {name!r}; families are {[f.name for f in FAMILIES]}")


__all__ = ["FAMILIES", "Description", "Family", "Parameter", "Section", "Size", "Table", "family_named", "family_of"]
