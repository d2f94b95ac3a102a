"""refmath_torch: batched Torch implementations of the refmath formulas.

Same names and keyword arguments as the exact oracles in :mod:`refmath`; inputs are
``[..., T]`` tensors (time last) of any floating dtype on any device. Installed from the
source folder ``implementations/`` under the import name ``refmath_torch``.
"""

from . import (advantages, divergences, objectives, off_policy, policy_gradient, ratios,
               returns, trust_region)
from ._inputs import unchecked as unchecked  # re-exported: a context manager, no oracle twin
from .advantages import *  # noqa: F401,F403 - each module's __all__ holds its twins
from .divergences import *  # noqa: F401,F403
from .objectives import *  # noqa: F401,F403
from .off_policy import *  # noqa: F401,F403
from .policy_gradient import *  # noqa: F401,F403
from .ratios import *  # noqa: F401,F403
from .returns import *  # noqa: F401,F403
from .trust_region import *  # noqa: F401,F403

# the twins of the oracles, derived from the modules' __all__ (adding a twin to its module
# adds it here); `unchecked` (a context manager, no oracle) is imported by name
_MODULES = (returns, advantages, ratios, divergences, objectives, policy_gradient,
            trust_region, off_policy)
__all__ = [name for module in _MODULES for name in module.__all__]
