"""The self-contained HTML report of a ``run`` or ``compare`` output directory.

``build_report(dir)`` reads the directory back (:mod:`platform_sim.rundir`), recomputes the
operating-characteristic tables with :mod:`platform_sim.metrics`, draws the figures
(:mod:`.figures`) and writes ``dir/report.html`` (:mod:`.html`): one file, no external
resources, that opens offline. matplotlib is imported only when a report is built.
"""

from .build import REPORT_FILE, build_report

__all__ = ["REPORT_FILE", "build_report"]
