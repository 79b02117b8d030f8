"""PyMC reference models and ArviZ summaries.

MCMC belongs to the deep analysis of one trial and to validating the fast engines in
``platform_sim.posterior``; it never runs inside the simulation loop. PyMC and ArviZ are an
optional extra (``pip install platform-sim[bayes]``) and are imported lazily, inside the
functions that need them, so importing this package costs nothing and works without them.
"""

from .final_analysis import (
    FinalAnalysis,
    FinalAnalysisPrior,
    diagnostics,
    fit_final_analysis,
    forest_plot,
    save_netcdf,
)
from .hierarchical import fit_pymc, stratum_summary

__all__ = [
    "FinalAnalysis",
    "FinalAnalysisPrior",
    "diagnostics",
    "fit_final_analysis",
    "fit_pymc",
    "forest_plot",
    "save_netcdf",
    "stratum_summary",
]
