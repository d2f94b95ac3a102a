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
from .divergences import (
    entropy,
    entropy_from_logits,
    importance_weighted_kl_estimate,
    kl_divergence,
    kl_divergence_gradient,
    kl_estimate,
    kl_estimator_moments,
)
from .objectives import (
    adaptive_kl_coefficient,
    aggregate_loss,
    cispo_surrogate,
    cispo_surrogate_gradient,
    gspo_surrogate,
    gspo_token_surrogate,
    gspo_token_surrogate_gradient,
    remax_advantages,
    split_aggregate_loss,
    clipped_surrogate,
    clipped_surrogate_ratio_gradient,
    group_advantages,
    kl_penalized_surrogate,
    kl_shaped_rewards,
    overlong_penalty,
    policy_loss,
    value_loss,
    whiten,
)
from .ratios import (
    geometric_mean_ratio,
    importance_ratio,
    sequence_log_ratio,
    truncated_importance_weight,
    rollout_correction,
)
from .policy_gradient import (
    TabularMDP,
    actor_loss,
    critic_loss,
    expected_return,
    reinforce_moments,
    return_gradient,
)
from .off_policy import off_policy_q_targets, trace_coefficients, vtrace
from .returns import discounted_returns, n_step_returns, td_errors
from .trust_region import (
    backtracking_line_search,
    conjugate_gradient,
    fisher_matrix,
    kl_hessian,
    natural_gradient_step,
    surrogate_hessian,
)

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
    "importance_ratio",
    "sequence_log_ratio",
    "geometric_mean_ratio",
    "truncated_importance_weight",
    "kl_divergence",
    "entropy",
    "entropy_from_logits",
    "kl_estimate",
    "kl_estimator_moments",
    "kl_divergence_gradient",
    "clipped_surrogate",
    "clipped_surrogate_ratio_gradient",
    "kl_penalized_surrogate",
    "adaptive_kl_coefficient",
    "value_loss",
    "whiten",
    "aggregate_loss",
    "group_advantages",
    "policy_loss",
    "TabularMDP",
    "expected_return",
    "return_gradient",
    "reinforce_moments",
    "critic_loss",
    "actor_loss",
    "fisher_matrix",
    "kl_hessian",
    "surrogate_hessian",
    "conjugate_gradient",
    "natural_gradient_step",
    "backtracking_line_search",
    "vtrace",
    "off_policy_q_targets",
    "trace_coefficients",
    "importance_weighted_kl_estimate",
    "kl_shaped_rewards",
    "overlong_penalty",
    "cispo_surrogate",
    "cispo_surrogate_gradient",
    "rollout_correction",
    "gspo_surrogate",
    "gspo_token_surrogate",
    "gspo_token_surrogate_gradient",
    "split_aggregate_loss",
    "remax_advantages",
]
