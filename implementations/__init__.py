"""refmath_torch: batched Torch implementations of the refmath formulas.

Same names and keyword arguments as the exact oracles in :mod:`refmath`; inputs are
``[..., T]`` tensors (time last) of any floating dtype on any device. Installed from the
source folder ``implementations/`` under the import name ``refmath_torch``.
"""

from ._inputs import unchecked as unchecked  # re-exported: a context manager, no oracle twin
from .advantages import gae, lambda_returns
from .divergences import (entropy, entropy_from_logits, importance_weighted_kl_estimate,
                          kl_divergence, kl_estimate)
from .objectives import (
    adaptive_kl_coefficient,
    aggregate_loss,
    cispo_surrogate,
    clipped_surrogate,
    group_advantages,
    gspo_surrogate,
    gspo_token_surrogate,
    kl_penalized_surrogate,
    kl_shaped_rewards,
    overlong_penalty,
    policy_loss,
    remax_advantages,
    split_aggregate_loss,
    value_loss,
    whiten,
)
from .ratios import (
    geometric_mean_ratio,
    importance_ratio,
    rollout_correction,
    sequence_log_ratio,
    truncated_importance_weight,
)
from .off_policy import off_policy_q_targets, trace_coefficients, vtrace
from .policy_gradient import actor_loss, critic_loss, expected_return
from .returns import discounted_returns, n_step_returns, td_errors
from .trust_region import (
    backtracking_line_search,
    conjugate_gradient,
    fisher_matrix,
    natural_gradient_step,
)

__all__ = [
    "td_errors", "discounted_returns", "n_step_returns", "gae", "lambda_returns",
    "importance_ratio", "sequence_log_ratio", "geometric_mean_ratio",
    "truncated_importance_weight",
    "kl_divergence", "entropy", "entropy_from_logits", "kl_estimate",
    "clipped_surrogate", "kl_penalized_surrogate", "adaptive_kl_coefficient", "value_loss",
    "whiten", "aggregate_loss", "group_advantages", "policy_loss",
    "expected_return", "critic_loss", "actor_loss",
    "fisher_matrix", "conjugate_gradient", "natural_gradient_step", "backtracking_line_search",
    "vtrace", "off_policy_q_targets", "trace_coefficients",
    "importance_weighted_kl_estimate", "kl_shaped_rewards", "overlong_penalty",
    "cispo_surrogate", "rollout_correction", "gspo_surrogate", "gspo_token_surrogate",
    "split_aggregate_loss", "remax_advantages",
]  # the twins of the oracles; `unchecked` (a context manager, no oracle) is imported by name
