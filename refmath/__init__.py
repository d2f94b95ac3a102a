"""refmath: verified reference mathematics for RL policy optimization.

The oracles here are exact (``fractions.Fraction`` or SymPy in, exact out; floats computed in
float64) and need only NumPy and SymPy: importing ``refmath`` never imports torch. The batched
Torch twins live in the package ``refmath_torch`` (source folder ``implementations/``).
"""

from .advantages import (
    gae,
    gae_mixture,
    gae_summed,
    lambda_returns,
    lambda_returns_recursive,
    monte_carlo_advantage,
)
from .returns import discounted_returns, n_step_returns, td_errors

__version__ = "0.1.0"

__all__ = [
    "td_errors",
    "discounted_returns",
    "n_step_returns",
    "gae",
    "gae_summed",
    "gae_mixture",
    "monte_carlo_advantage",
    "lambda_returns",
    "lambda_returns_recursive",
]
