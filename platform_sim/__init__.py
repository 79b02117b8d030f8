"""platform_sim: Bayesian adaptive platform trials for immunotherapy-resistant NSCLC."""

__version__ = "0.1.0"
