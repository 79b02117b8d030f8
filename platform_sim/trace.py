"""Recording one simulated trial while an engine runs a whole batch.

The engines move a batch of simulated trials together. A :class:`Trace` picks one
of them (its row in the batch) and keeps a copy of what the engine knew at every
interim analysis: counts, posterior parameters, allocation probabilities and the
arm states after the decisions. Recording never changes what the engine draws or
decides, so the traced trial is the trial of the run.
"""

from __future__ import annotations

import numpy as np


class Trace:
    """The analyses of trial ``row`` of a batch, in the order they happened."""

    def __init__(self, row: int):
        self.row = int(row)
        self.events: list[dict] = []  # one dict per recorded analysis (or allocation change)
        self.data: dict = {}  # batch-level data of the traced trial (patients, pool, ...)

    def position(self, rows) -> int | None:
        """Index of the traced trial in ``rows`` (the batch rows an engine is working on), or None."""
        hit = np.flatnonzero(np.asarray(rows) == self.row)
        return int(hit[0]) if hit.size else None

    def record(self, kind: str, rows, **values) -> None:
        """Keep ``values`` of the traced trial if it is among ``rows``. Arrays whose first axis runs
        over ``rows`` are cut to the traced trial's slice; other values are kept as they are."""
        i = self.position(rows)
        if i is None:
            return
        n = len(rows)
        entry = {"kind": kind}
        for key, v in values.items():
            if isinstance(v, np.ndarray) and v.ndim and v.shape[0] == n:
                entry[key] = np.array(v[i])
            else:
                entry[key] = v
        self.events.append(entry)

    def keep(self, **arrays) -> None:
        """Keep batch-level arrays (first axis: every trial of the batch) for the traced trial."""
        for key, v in arrays.items():
            self.data[key] = None if v is None else np.array(np.asarray(v)[self.row])
