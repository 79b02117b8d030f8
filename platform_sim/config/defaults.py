"""Names the command line shows before anything is loaded: the default design and scenario.

Kept apart from the loader so that ``platform-sim --help`` needs neither pydantic nor numpy.
"""

DEFAULT_DESIGN = "pioneer_rar"
DEFAULT_SCENARIO = "pioneer_alternative"
