"""refmath_torch: batched Torch implementations of the refmath formulas.

Same names and keyword arguments as the exact oracles in :mod:`refmath`; inputs are
``[..., T]`` tensors (time last) of any floating dtype on any device. Installed from the
source folder ``implementations/`` under the import name ``refmath_torch``.
"""

from .advantages import gae, lambda_returns
from .returns import discounted_returns, n_step_returns, td_errors

__all__ = ["td_errors", "discounted_returns", "n_step_returns", "gae", "lambda_returns"]
