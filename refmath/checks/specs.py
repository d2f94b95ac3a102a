"""One spec per SPEC function, derived from the oracle's signature, not kept by hand.

The oracle (``refmath.gae``) and its Torch twin (``refmath_torch.gae``) have the same
parameters (``tests/test_specs.py`` keeps them so). From the oracle's signature a
:class:`FunctionSpec` reads which parameters are arrays (annotated
:data:`refmath._arrays.Array`, read as a type), which of them are the boolean flags of SPEC §1
(``terminated``, ``truncated``, ``mask``), which are positional and which keyword-only; the few facts a signature cannot say (the family of checks,
the allowed values of an enumerated option) are the one table row below. Adding a function
is: its oracle, its twin, its row.
"""

from __future__ import annotations

import inspect
import typing
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Callable

from .. import divergences as dv
from .. import objectives as ob
from .. import policy_gradient as pg
from .. import ratios as ra
from .. import returns as ret
from .._arrays import is_array
from .. import advantages as adv
from .. import off_policy as op
from .. import trust_region as tr

__all__ = ["FunctionSpec", "SPECS", "FLAG_NAMES"]

FLAG_NAMES = ("terminated", "truncated", "mask")


@lru_cache(maxsize=None)
def _type_hints(oracle: Callable[..., Any]) -> dict[str, Any]:
    """The oracle's resolved annotations (``Array`` is a real type: see refmath._arrays)."""
    return typing.get_type_hints(oracle, include_extras=True)


@dataclass(frozen=True)
class FunctionSpec:
    """How to call one SPEC function, read from its oracle's signature."""

    name: str
    family: str  # the check module: steps (§2), policy (§3–4), trust (§5)
    oracle: Callable[..., Any]
    options: dict[str, tuple[Any, ...]] = field(default_factory=dict)  # enumerated values
    # parameters refmath's oracle takes beyond SPEC's signature: a function under test is
    # given them only if its signature takes them (else the checks express the same input
    # with SPEC's own parameters, or leave it out)
    extensions: tuple[str, ...] = ()

    @property
    def signature(self) -> inspect.Signature:
        return inspect.signature(self.oracle)

    @property
    def parameters(self) -> tuple[str, ...]:
        return tuple(self.signature.parameters)

    @property
    def positional(self) -> tuple[str, ...]:
        return tuple(n for n, p in self.signature.parameters.items()
                     if p.kind is p.POSITIONAL_OR_KEYWORD)

    @property
    def keyword_only(self) -> tuple[str, ...]:
        return tuple(n for n, p in self.signature.parameters.items()
                     if p.kind is p.KEYWORD_ONLY)

    def _annotated_array(self, name: str) -> bool:
        return is_array(_type_hints(self.oracle).get(name))

    @property
    def flags(self) -> tuple[str, ...]:
        return tuple(n for n in self.parameters if n in FLAG_NAMES)

    @property
    def arrays(self) -> tuple[str, ...]:
        """Numeric array inputs (per-step for §2), in signature order."""
        return tuple(n for n in self.parameters
                     if self._annotated_array(n) and n not in FLAG_NAMES)

    @property
    def positional_arrays(self) -> tuple[str, ...]:
        return tuple(n for n in self.arrays if n in self.positional)

    @property
    def keyword_arrays(self) -> tuple[str, ...]:
        return tuple(n for n in self.arrays if n in self.keyword_only)

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(n for n, p in self.signature.parameters.items()
                     if p.default is inspect.Parameter.empty)

    def has(self, name: str) -> bool:
        return name in self.signature.parameters

    @property
    def capabilities(self) -> tuple[str, ...]:
        """The :class:`~refmath.checks.Capabilities` a user may declare missing."""
        caps = ["batch", "gradients", "half", "validates_input"]
        if self.has("truncated"):
            caps.append("truncated")
        if self.has("mask"):
            caps.append("mask")
        if self.has("gamma"):
            caps.append("per_step_gamma")
        if self.has("next_values"):
            caps.append("inconsistent_values")
        return tuple(sorted(caps))

    def call(self, fn: Callable, values: dict[str, Any]) -> Any:
        """``fn`` called with ``values`` the way the signature reads (see :meth:`bind`)."""
        args, kwargs = self.bind(values)
        return fn(*args, **kwargs)

    def bind(self, values: dict[str, Any]) -> tuple[list[Any], dict[str, Any]]:
        """Positional parameters in order while all are given, every other given one by
        keyword; a ``None`` is left out where it is the parameter's default (the same call)
        and passed where it means something else (V-trace's ``rho_clip=None``: no clip)."""
        args, kwargs, gap = [], {}, False
        params = self.signature.parameters
        for name, p in params.items():
            if name not in values or (values[name] is None and p.default is None):
                gap = True
                continue
            if p.kind is p.POSITIONAL_OR_KEYWORD and not gap:
                args.append(values[name])
            else:
                kwargs[name] = values[name]
        return args, kwargs

    def describe(self) -> str:
        """``gae(rewards, values, next_values, *, gamma, lam, terminated=None, ...)``."""
        plain = self.signature.replace(
            parameters=[p.replace(annotation=p.empty) for p in self.signature.parameters.values()],
            return_annotation=inspect.Signature.empty)
        return f"{self.name}{plain}".replace("'", "")


def _spec(family: str, oracle: Callable, extensions: tuple[str, ...] = (),
          **options: tuple[Any, ...]) -> FunctionSpec:
    return FunctionSpec(oracle.__name__, family, oracle, options, extensions)


SPECS: dict[str, FunctionSpec] = {s.name: s for s in (
    _spec("steps", ret.td_errors),
    _spec("steps", ret.discounted_returns),
    _spec("steps", ret.n_step_returns),
    _spec("steps", adv.gae),
    _spec("steps", adv.lambda_returns),
    _spec("policy", ra.importance_ratio),
    _spec("policy", ra.sequence_log_ratio),
    _spec("policy", ra.geometric_mean_ratio),
    _spec("policy", ra.truncated_importance_weight),
    _spec("policy", dv.kl_divergence),
    _spec("policy", dv.entropy),
    _spec("policy", dv.entropy_from_logits),
    _spec("policy", dv.kl_estimate, kind=dv.KL_ESTIMATORS),
    _spec("policy", ob.clipped_surrogate),
    _spec("policy", ob.kl_penalized_surrogate),
    _spec("policy", ob.adaptive_kl_coefficient),
    _spec("policy", ob.value_loss, clip_form=ob.VALUE_CLIP_FORMS),
    _spec("policy", ob.whiten),
    _spec("policy", ob.aggregate_loss, mode=ob.AGGREGATION_MODES),
    _spec("policy", ob.group_advantages, method=ob.GROUP_METHODS),
    _spec("policy", ob.policy_loss, mode=ob.AGGREGATION_MODES),
    _spec("trust", pg.expected_return),
    _spec("trust", pg.critic_loss),
    _spec("trust", pg.actor_loss),
    _spec("trust", tr.fisher_matrix),
    _spec("trust", tr.conjugate_gradient),
    _spec("trust", tr.natural_gradient_step),
    _spec("trust", tr.backtracking_line_search),
    _spec("policy", dv.importance_weighted_kl_estimate, kind=dv.KL_ESTIMATORS),
    _spec("policy", ob.kl_shaped_rewards, kind=dv.KL_ESTIMATORS),
    _spec("policy", ob.overlong_penalty),
    _spec("policy", ob.cispo_surrogate),
    _spec("lm", ra.rollout_correction, level=ra.CORRECTION_LEVELS, mode=ra.CORRECTION_MODES),
    _spec("lm", ob.gspo_surrogate),
    _spec("lm", ob.gspo_token_surrogate),
    _spec("lm", ob.split_aggregate_loss, mode=ob.AGGREGATION_MODES),
    _spec("lm", ob.remax_advantages),
    _spec("lm", adv.length_adaptive_gae),
    _spec("off_policy", op.vtrace, extensions=("rhos",)),
    _spec("off_policy", op.off_policy_q_targets),
    _spec("off_policy", op.trace_coefficients, extensions=("rhos",), method=op.TRACE_METHODS),
)}
