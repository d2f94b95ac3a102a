"""refmath: verified reference mathematics for RL policy optimization.

The oracles here are exact (``fractions.Fraction`` or SymPy in, exact out; floats computed in
float64) and need only NumPy and SymPy: importing ``refmath`` never imports torch. The batched
Torch twins live in the package ``refmath_torch`` (source folder ``implementations/``).
"""

from . import (advantages, divergences, objectives, off_policy, policy_gradient, ratios,
               returns, trust_region)
from .advantages import *  # noqa: F401,F403 - each oracle module's __all__ is its public API
from .divergences import *  # noqa: F401,F403
from .objectives import *  # noqa: F401,F403
from .off_policy import *  # noqa: F401,F403
from .policy_gradient import *  # noqa: F401,F403
from .ratios import *  # noqa: F401,F403
from .returns import *  # noqa: F401,F403
from .trust_region import *  # noqa: F401,F403

__version__ = "0.1.0"

# The oracles, derived from the modules' own __all__ (their functions and classes; the
# enumerations such as KL_ESTIMATORS stay reachable as refmath.divergences.KL_ESTIMATORS and
# by name): adding an oracle to its module adds it here.
_MODULES = (returns, advantages, ratios, divergences, objectives, policy_gradient,
            trust_region, off_policy)
__all__ = [name for module in _MODULES for name in module.__all__ if not name.isupper()]
