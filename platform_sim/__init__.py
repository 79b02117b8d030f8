"""platform_sim: Bayesian adaptive platform trials for immunotherapy-resistant NSCLC.

The Python interface (:mod:`platform_sim.api`) is available from the package itself and is
imported on first use, so ``import platform_sim`` stays fast (no numpy, pandas or scipy)::

    import platform_sim as ps

    res = ps.run(ps.load_design("pioneer_rar"), ps.load_scenario("trop2_adc"), n_sims=2000)
    res.oc()

``ps.compare`` is the verb :func:`platform_sim.api.compare`; the module of the same name is still
imported with ``from platform_sim.compare import ...``.
"""

from __future__ import annotations

import sys
import types

from ._version import __version__

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing at start-up

__all__ = [
    "Comparison",
    "ConfigError",
    "Design",
    "Results",
    "Scenario",
    "Suite",
    "__version__",
    "compare",
    "load_design",
    "load_scenario",
    "load_suite",
    "plot",
    "run",
]
#: The names of :mod:`platform_sim.api` the package exports.
_API = frozenset(__all__) - {"__version__", "plot"}

if TYPE_CHECKING:  # pragma: no cover
    from typing import Any

    from . import plot
    from .api import (
        Comparison,
        ConfigError,
        Design,
        Results,
        Scenario,
        Suite,
        compare,
        load_design,
        load_scenario,
        load_suite,
        run,
    )


def __getattr__(name: str) -> Any:
    if name in _API:
        from . import api

        value = getattr(api, name)
        globals()[name] = value
        return value
    if name == "plot":
        import importlib

        return importlib.import_module(".plot", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


class _Package(types.ModuleType):
    """The package module: importing the submodule :mod:`platform_sim.compare` does not replace the
    package's ``compare``, which is the verb of :mod:`platform_sim.api`."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "compare" and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
