"""Built-in layouts: check the user's function as it is written in the code it mirrors.

A :class:`Layout` turns one call in SPEC's layout (arrays ``[..., T]``, ``terminated`` /
``truncated`` / ``mask``, ``next_values``) into the call the user's function expects, and its
result back. Each layout names the real code it mirrors and the capabilities that code does
not have (reported "not applicable (declared)"); option restrictions fix what the code hard-
codes (TRL's ε = 1e-4, GRPO only). The user's function is always called by keyword, so
``--arg LAYOUT_NAME=YOUR_NAME`` renames are all that differ between two spellings.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

__all__ = ["Layout", "LAYOUTS", "TRL_LOSS_TYPES", "TRL_SCALE_REWARDS", "binds",
           "layout_adapter",
           "matching_layouts", "takes"]


@dataclass(frozen=True)
class Layout:
    name: str
    mirrors: str  # the real code this layout is written after
    params: dict[str, tuple[str, ...]]  # per kind: the user's parameters, in order
    call: Callable[[str, Callable, dict[str, Any], Callable[[str], str]], Any]
    unsupported: tuple[str, ...] = ()  # capabilities the mirrored code lacks
    only: dict[str, dict[str, tuple[Any, ...]]] = field(default_factory=dict)  # per kind
    accepts: Callable[[str, dict[str, Any]], bool] | None = None  # inputs it can express
    notes: str = ""
    # per kind: known differences the mirrored code has by design (refmath.conformance.
    # differences): a failure they reproduce is reported XFAIL, any other still fails
    differences: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # per kind: further capabilities the mirrored function of that kind lacks
    unsupported_by_kind: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # per kind: SPEC's option name → the mirrored code's (``--only`` takes either)
    option_names: dict[str, dict[str, str]] = field(default_factory=dict)
    # per kind: the target is a class, built with these parameters (from the options the
    # kind varies), then called with ``params[kind]`` (an nn.Module loss such as OpenRLHF's)
    constructs: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # per kind and option: the mirrored code's value → SPEC's (``--only loss_type=dr_grpo``)
    option_values: dict[str, dict[str, dict[Any, Any]]] = field(default_factory=dict)
    # per kind: parameters the function may take or not, each with the option values the
    # checks may then draw (``scale_rewards`` opens TRL's three scalings)
    optional: dict[str, dict[str, dict[str, tuple[Any, ...]]]] = field(default_factory=dict)
    # per kind: what the mirrored code computes, when it is not SPEC's formula
    # (refmath.conformance.semantics): the row the function is checked against
    semantics: dict[str, Any] = field(default_factory=dict)
    # the array library the mirrored code takes and returns: "torch", "numpy" or "jax" (a JAX
    # layout's calls run through refmath.conformance.jax_bridge: float64 in scope, bucketed)
    arrays: str = "torch"
    # kinds whose mirrored function takes ONE trajectory: the layout calls it row by row
    per_row: tuple[str, ...] = ()

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(self.params)

    def signature(self, kind: str) -> str:
        call = f"({', '.join(self.params[kind])})"
        if kind in self.constructs:
            return f"Cls({', '.join(self.constructs[kind])}){call}"
        return f"fn{call}"


def _semantics(name: str) -> Any:
    from . import semantics

    return getattr(semantics, name)


def _torch():
    import torch

    return torch


def _zeros_like_flags(values: dict[str, Any]):
    torch = _torch()
    r = values["rewards"]
    return torch.zeros(r.shape, dtype=torch.bool, device=r.device)


def _flag(values: dict[str, Any], name: str):
    f = values.get(name)
    return _zeros_like_flags(values) if f is None else f


def _first(out: Any) -> Any:
    return out[0] if isinstance(out, (tuple, list)) else out


def _previous_step_ended(term):
    """CleanRL's dones / SB3's episode_starts: the flag stored with observation t says the
    PREVIOUS step ended (step t−1 terminated); observation 0's flag is never read."""
    torch = _torch()
    return torch.cat([torch.zeros_like(term[:, :1]), term[:, :-1]], dim=1)


def _cleanrl(kind: str, fn: Callable, values: dict[str, Any], name: Callable[[str], str]):
    term = _flag(values, "terminated")
    dtype = values["rewards"].dtype
    out = fn(**{name("rewards"): values["rewards"].T, name("values"): values["values"].T,
                name("dones"): _previous_step_ended(term).to(dtype).T,
                name("next_value"): values["next_values"][:, -1],
                name("next_done"): term[:, -1].to(dtype),
                name("gamma"): values["gamma"], name("gae_lambda"): values["lam"]})
    return _first(out).T


def _sb3(kind: str, fn: Callable, values: dict[str, Any], name: Callable[[str], str]):
    torch = _torch()
    term = _flag(values, "terminated")
    r = values["rewards"]

    def np_(t):
        return t.detach().cpu().numpy().T.copy()

    out = fn(**{name("rewards"): np_(r), name("values"): np_(values["values"]),
                name("episode_starts"): np_(_previous_step_ended(term).to(r.dtype)),
                name("last_values"): values["next_values"][:, -1].detach().cpu().numpy(),
                name("dones"): term[:, -1].detach().cpu().numpy().astype(np.float32),
                name("gamma"): values["gamma"], name("gae_lambda"): values["lam"]})
    # SB3's buffers are float32 by design: the advantages are read in the input dtype
    return torch.as_tensor(np.asarray(_first(out))).T.to(device=r.device, dtype=r.dtype)


def _interleaved(rewards):
    """The [N, G] groups as verl's flat batch of N·G responses, interleaved (row k is sample
    k // N of group k % N: a group's responses are not contiguous), and their ``index``."""
    N, G = rewards.shape
    flat = rewards.T.reshape(-1)
    return flat, np.tile(np.arange(N), G)


def _verl_group(fn: Callable, values: dict[str, Any], name: Callable[[str], str]):
    torch = _torch()
    r = values["rewards"]
    groups = r.reshape(-1, r.shape[-1])
    flat, index = _interleaved(groups)
    token_level = torch.stack([torch.zeros_like(flat), flat], dim=-1)  # the reward at the end
    out = _first(fn(**{name("token_level_rewards"): token_level,
                       name("response_mask"): torch.ones_like(token_level),
                       name("index"): index, name("epsilon"): float(values.get("eps", 1e-6)),
                       name("norm_adv_by_std_in_grpo"): values["method"] == "grpo"}))
    N, G = groups.shape
    return out[:, 0].reshape(G, N).T.reshape(r.shape)


def _verl(kind: str, fn: Callable, values: dict[str, Any], name: Callable[[str], str]):
    torch = _torch()
    if kind == "group_advantages":
        return _verl_group(fn, values, name)
    if kind == "policy_loss":
        high = values.get("clip_high")
        return _first(fn(**{name("old_log_prob"): values["old_logp"],
                            name("log_prob"): values["logp"],
                            name("advantages"): values["advantages"],
                            name("response_mask"): values["mask"],
                            name("cliprange"): values["clip_low"],
                            name("cliprange_low"): values["clip_low"],
                            name("cliprange_high"): values["clip_low"] if high is None else high,
                            name("clip_ratio_c"): values["dual_clip"],
                            name("loss_agg_mode"): values["mode"]}))
    mask = values.get("mask")
    keep = torch.ones_like(values["rewards"], dtype=torch.bool) if mask is None else mask
    out = _first(fn(**{name("token_level_rewards"): values["rewards"],
                       name("values"): values["values"],
                       name("response_mask"): keep.to(values["rewards"].dtype),
                       name("gamma"): values["gamma"], name("lam"): values["lam"]}))
    # verl's consumers multiply by the response mask: padded outputs are not compared
    return torch.where(keep, out, torch.zeros_like(out))


def _torchrl(kind: str, fn: Callable, values: dict[str, Any], name: Callable[[str], str]):
    term = _flag(values, "terminated")
    done = term | _flag(values, "truncated")
    if kind == "lambda_returns":  # td_lambda_return_estimate takes no state values
        return _first(fn(**{name("gamma"): values["gamma"], name("lmbda"): values["lam"],
                            name("next_state_value"): values["next_values"].unsqueeze(-1),
                            name("reward"): values["rewards"].unsqueeze(-1),
                            name("done"): done.unsqueeze(-1),
                            name("terminated"): term.unsqueeze(-1)})).squeeze(-1)
    out = fn(**{name("gamma"): values["gamma"], name("lmbda"): values["lam"],
                name("state_value"): values["values"].unsqueeze(-1),
                name("next_state_value"): values["next_values"].unsqueeze(-1),
                name("reward"): values["rewards"].unsqueeze(-1),
                name("done"): done.unsqueeze(-1), name("terminated"): term.unsqueeze(-1)})
    return _first(out).squeeze(-1)


def _jax_bridge():
    from . import jax_bridge

    return jax_bridge


def _purejaxrl(kind: str, fn: Callable, values: dict[str, Any], name: Callable[[str], str]):
    """purejaxrl's ``_calculate_gae(traj_batch, last_val)`` as a function of its fields:
    time-major ``[T, NUM_ENVS]`` JAX arrays, ``done[t]`` the flag env.step returned for step t
    (a bool, as gymnax's), ``last_val`` the value after the last step; returns
    ``(advantages, targets)``."""
    J = _jax_bridge()
    term = _flag(values, "terminated")
    r = values["rewards"]
    out = fn(**{name("reward"): J.to_jax(r.T), name("value"): J.to_jax(values["values"].T),
                name("done"): J.to_jax(term.T), name("last_val"):
                J.to_jax(values["next_values"][:, -1]),
                name("gamma"): values["gamma"], name("gae_lambda"): values["lam"]})
    return J.from_jax(_first(out), r).T


def _no_clip(clip: Any) -> Any:
    """rlax takes a float threshold: SPEC's None (no clip) is +inf there."""
    return float("inf") if clip is None else clip


def _rlax(kind: str, fn: Callable, values: dict[str, Any], name: Callable[[str], str]):
    """rlax ``vtrace_td_error_and_advantage`` on one trajectory ``[T]``, row by row:
    ``discount_t = γ·(1 − terminated)``, ``rho_tm1 = exp(log_rhos)``; its ``errors`` are
    ``vs − v_tm1`` and its ``pg_advantage`` the policy-gradient advantage."""
    torch = _torch()
    J = _jax_bridge()
    r = values["rewards"]
    T = r.shape[-1]
    rows = [x.reshape(-1, T) for x in (r, values["values"], values["next_values"],
                                        torch.exp(values["log_rhos"]),
                                        (~_flag(values, "terminated")).to(r.dtype))]
    vs, pg = [], []
    for rew, v, nv, rho, alive in zip(*rows):
        out = fn(**{name("v_tm1"): J.to_jax(v), name("v_t"): J.to_jax(nv),
                    name("r_t"): J.to_jax(rew), name("discount_t"): J.to_jax(values["gamma"]
                                                                             * alive),
                    name("rho_tm1"): J.to_jax(rho), name("lambda_"): values["lam"],
                    name("clip_rho_threshold"): _no_clip(values["rho_clip"]),
                    name("clip_pg_rho_threshold"): _no_clip(values["pg_rho_clip"])})
        errors, advantage = (J.from_jax(out[0], r), J.from_jax(out[1], r))
        vs.append(errors + v)
        pg.append(advantage)
    return torch.stack(vs).reshape(r.shape), torch.stack(pg).reshape(r.shape)


# TRL GRPOConfig.scale_rewards for each of SPEC's group methods (trl/trainer/grpo_trainer.py):
# "group" ÷ (group std + 1e-4), "batch" ÷ (std of the whole batch + 1e-4), "none" unscaled
TRL_SCALE_REWARDS = {"grpo": "group", "batch_std": "batch", "dr_grpo": "none"}


# TRL's GRPO loss_type for each of SPEC's aggregation modes (GRPOTrainer._compute_loss)
TRL_LOSS_TYPES = {"seq-mean-token-mean": "grpo", "token-mean": "bnpo",
                  "seq-mean-token-sum-norm": "dr_grpo"}


def _trl_loss(fn: Callable, values: dict[str, Any], name: Callable[[str], str],
              sequence: bool = False):
    """TRL's GRPO loss; ``sequence``: ``importance_sampling_level="sequence"`` with
    ``loss_type="grpo"`` (GSPO, the setup TRL recommends for it)."""
    logp = values["logp"]
    high = values.get("clip_high")
    kw = {name("per_token_logps"): logp, name("old_per_token_logps"): values["old_logp"],
          name("advantages"): values["advantages"],
          name("completion_mask"): values["mask"].to(logp.dtype),
          name("epsilon_low"): values["clip_low"],
          name("epsilon_high"): values["clip_low"] if high is None else high,
          name("loss_type"): "grpo" if sequence else TRL_LOSS_TYPES[values["mode"]],
          name("max_completion_length"): logp.shape[-1]}
    if sequence:
        kw[name("importance_sampling_level")] = "sequence"
    return _first(fn(**kw))


def _trl(kind: str, fn: Callable, values: dict[str, Any], name: Callable[[str], str]):
    if kind in ("policy_loss", "gspo_surrogate"):
        return _trl_loss(fn, values, name, sequence=kind == "gspo_surrogate")
    r = values["rewards"]
    kw = {name("rewards"): r.reshape(-1), name("num_generations"): r.shape[-1]}
    if takes(fn, name("scale_rewards")) and values["method"] in TRL_SCALE_REWARDS:
        kw[name("scale_rewards")] = TRL_SCALE_REWARDS[values["method"]]
    return _first(fn(**kw)).reshape(r.shape)


def _openrlhf_reinforce_baseline(fn: Callable, values: dict[str, Any],
                                 name: Callable[[str], str]):
    """REINFORCE++-baseline as a function of the flat rewards (groups of
    ``n_samples_per_prompt`` contiguous, prompt-major as OpenRLHF reshapes them) and the
    ``action_mask`` [B, T] (completion i has ``response_lengths`` tokens), returning the
    token-level advantages [B, T]. With no KL term and γ = 1 every action token of a
    completion carries that completion's advantage: read at its first token, after checking
    that its other tokens agree."""
    from .semantics import response_lengths

    torch = _torch()
    r = values["rewards"]
    flat = r.reshape(-1)
    lengths = torch.tensor(response_lengths(flat.numel()) or [1], device=r.device)
    mask = torch.arange(int(lengths.max()), device=r.device) < lengths[:flat.numel(), None]
    out = _first(fn(**{name("rewards"): flat, name("action_mask"): mask,
                       name("n_samples_per_prompt"): r.shape[-1]}))
    if out.numel() == 0:
        return out.reshape(r.shape)
    first = out[:, :1]
    spread = torch.where(mask, (out - first).abs(), torch.zeros_like(out)).amax(dim=-1)
    tol = 8 * torch.finfo(out.dtype).eps * out.abs().amax()
    if bool((spread > tol).any()):
        rows = torch.nonzero(spread > tol).flatten().tolist()
        raise ValueError(f"the advantages of completion(s) {rows} differ across their action "
                         f"tokens ({out[rows[0]][mask[rows[0]]].tolist()}): with γ = 1 and no "
                         "KL term every action token carries its completion's return")
    return first.reshape(r.shape).to(r.dtype)


def _openrlhf(kind: str, fn: Callable, values: dict[str, Any], name: Callable[[str], str]):
    if kind == "policy_loss":
        return _openrlhf_policy_loss(fn, values, name)
    if kind == "group_advantages":
        return _openrlhf_reinforce_baseline(fn, values, name)
    logp = values["logp"]
    out = _first(fn(**{name("log_probs"): logp, name("log_probs_base"): values["ref_logp"],
                       name("kl_estimator"): values["kind"]}))
    return out.to(logp.dtype)  # computed and returned in float32: read in the input dtype


def _openrlhf_policy_loss(cls: Callable, values: dict[str, Any], name: Callable[[str], str]):
    """OpenRLHF's PolicyLoss: built from the options, then called on the arrays."""
    high = values.get("clip_high")
    loss = cls(**{name("clip_eps_low"): values["clip_low"],
                  name("clip_eps_high"): values["clip_low"] if high is None else high,
                  name("dual_clip"): values.get("dual_clip"),
                  name("token_level_loss"): values["mode"] == "token-mean"})
    return _first(loss(**{name("log_probs"): values["logp"],
                          name("old_log_probs"): values["old_logp"],
                          name("advantages"): values["advantages"],
                          name("action_mask"): values["mask"].to(values["logp"].dtype)}))


def _group_of_two_or_more(kind: str, values: dict[str, Any]) -> bool:
    """TRL: G = num_generations ≥ 2; its loss takes one advantage per completion ([B])."""
    if kind in ("policy_loss", "gspo_surrogate"):
        return values["advantages"].shape == values["logp"].shape[:-1]
    return values["rewards"].dim() > 0 and values["rewards"].shape[-1] >= 2


def _token_advantages(kind: str, values: dict[str, Any]) -> bool:
    """verl's advantages are per token ([B, T]): per-sequence ones are not expressible; a
    group of one keeps its score by design (no zero spread to test)."""
    if kind == "group_advantages":
        return not (values.get("zero_spread") and values["rewards"].shape[-1] == 1)
    if kind == "gae":  # masked_whiten's unbiased variance raises for one response token
        return int(np.asarray(values["mask"]).sum()) >= 2
    return kind != "policy_loss" or values["advantages"].shape == values["logp"].shape


_STEP_LIMITS = ("truncated", "mask", "per_step_gamma", "inconsistent_values", "batch",
                "validates_input")

LAYOUTS: dict[str, Layout] = {lay.name: lay for lay in (
    Layout("cleanrl", "CleanRL ppo.py's GAE loop (time-major [T, N] tensors)",
           {"gae": ("rewards", "values", "dones", "next_value", "next_done", "gamma",
                    "gae_lambda")},
           _cleanrl, _STEP_LIMITS, differences={"gae": ("nan_bootstrap_multiplied",)},
           notes="dones[t] is the flag stored with observation t (the previous step ended); "
                 "next_value, next_done [N] describe the state after the last step; time "
                 "limits are terminal (no truncation)"),
    Layout("sb3", "Stable-Baselines3 RolloutBuffer.compute_returns_and_advantage (NumPy "
                  "[T, N] buffers)",
           {"gae": ("rewards", "values", "episode_starts", "last_values", "dones", "gamma",
                    "gae_lambda")},
           _sb3, _STEP_LIMITS + ("gradients",), arrays="numpy",
           differences={"gae": ("nan_bootstrap_multiplied",)},
           notes="episode_starts[t]: observation t starts an episode (the previous step "
                 "ended); last_values, dones [N]: the state after the last step; returns the "
                 "advantages"),
    Layout("purejaxrl", "purejaxrl ppo.py's _calculate_gae (luchris429/purejaxrl at 146b485: "
                        "jax.lax.scan in reverse over time-major [NUM_STEPS, NUM_ENVS] arrays)",
           {"gae": ("reward", "value", "done", "last_val", "gamma", "gae_lambda")},
           _purejaxrl, _STEP_LIMITS + ("gradients",),
           differences={"gae": ("nan_bootstrap_multiplied",)}, arrays="jax",
           notes="done[t] is the flag env.step returned for step t (gymnax: terminated or "
                 "truncated, both terminal); value[t+1] bootstraps step t, last_val the last "
                 "step (consistent values only); JAX arrays in and out (DLPack; float64 in "
                 "scope; shapes bucketed so that jax.jit compiles a handful of times); returns "
                 "(advantages, targets)"),
    Layout("rlax", "rlax vtrace_td_error_and_advantage (rlax/_src/vtrace.py, "
                   "google-deepmind/rlax at 0c61fbd): one trajectory [T], JAX",
           {"vtrace": ("v_tm1", "v_t", "r_t", "discount_t", "rho_tm1", "lambda_",
                       "clip_rho_threshold", "clip_pg_rho_threshold")},
           _rlax, ("truncated", "mask", "inconsistent_values", "validates_input", "gradients"),
           only={"vtrace": {"c_clip": (1,)}},
           differences={"vtrace": ("nan_bootstrap_multiplied",)}, arrays="jax",
           per_row=("vtrace",), semantics={"vtrace": _semantics("rlax_vtrace")},
           notes="called on one trajectory at a time (each row of the batch); discount_t = "
                 "γ·(1 − terminated), rho_tm1 = exp(log_rhos), c̄ = 1 (rlax's c_tm1 = "
                 "λ·min(1, ρ)), a clip of None passed as +inf; vs = errors + v_tm1; the "
                 "policy-gradient advantage bootstraps from λ·vs_{t+1} + (1 − λ)·V_{t+1} (rlax's "
                 "semantics: IMPALA's vs_{t+1} at λ = 1); JAX as for purejaxrl"),
    Layout("verl", "verl core_algos: compute_gae_advantage_return (token-level [B, T]) and "
                   "compute_policy_loss (a loss to minimise)",
           {"gae": ("token_level_rewards", "values", "response_mask", "gamma", "lam"),
            "policy_loss": ("old_log_prob", "log_prob", "advantages", "response_mask",
                            "cliprange", "cliprange_low", "cliprange_high", "clip_ratio_c",
                            "loss_agg_mode"),
            "group_advantages": ("token_level_rewards", "response_mask", "index", "epsilon",
                                 "norm_adv_by_std_in_grpo")},
           _verl, ("flags", "truncated", "per_step_gamma", "inconsistent_values", "batch",
                   "validates_input"),
           only={"policy_loss": {"dual_clip": (3.0,)},
                 "group_advantages": {"method": ("grpo", "dr_grpo"), "unbiased": (True,)}},
           accepts=_token_advantages,
           differences={"gae": ("nan_padding_multiplied",),
                        "policy_loss": ("nan_padding_multiplied",)},
           option_names={"policy_loss": {"clip_low": "cliprange", "clip_high": "cliprange_high",
                                         "dual_clip": "clip_ratio_c",
                                         "mode": "loss_agg_mode"}},
           semantics={"gae": _semantics("verl_gae"),
                      "policy_loss": _semantics("verl_policy_loss"),
                      "group_advantages": _semantics("verl_grpo_outcome")},
           unsupported_by_kind={"group_advantages": ("gradients",), "gae": ("gradients",)},
           notes="no bootstrap at the response end (every row ends terminally); a tuple "
                 "result's first element is the advantages / the loss; padded outputs are "
                 "not compared; the policy loss always has verl's dual clip (clip_ratio_c = "
                 "3), clip-higher, every loss_agg_mode with verl's own semantics; GRPO "
                 "outcome advantages are grouped by index (the groups interleaved), a lone "
                 "sample keeps mean 0 / std 1, computed under no_grad"),
    Layout("torchrl", "TorchRL torchrl/objectives/value/functional.py: "
                      "generalized_advantage_estimate, td_lambda_return_estimate ([..., T, 1], "
                      "time_dim=-2)",
           {"gae": ("gamma", "lmbda", "state_value", "next_state_value", "reward", "done",
                    "terminated"),
            "lambda_returns": ("gamma", "lmbda", "next_state_value", "reward", "done",
                               "terminated")},
           _torchrl, ("mask", "per_step_gamma", "validates_input"),
           differences={"gae": ("nan_bootstrap_multiplied",),
                        "lambda_returns": ("nan_bootstrap_multiplied",)},
           unsupported_by_kind={"lambda_returns": ("inconsistent_values",)},
           notes="done = terminated | truncated; a tuple result's first element is the "
                 "advantage; td_lambda_return_estimate takes no state values, so the λ-return "
                 "bootstraps from next_state_value alone (consistent values only)"),
    Layout("trl", "TRL GRPOTrainer's group advantages (flat [num_prompts·G] rewards; "
                  "trl/trainer/grpo_trainer.py, huggingface/trl at f2cd577, 1.10.0.dev)",
           {"group_advantages": ("rewards", "num_generations"),
            "policy_loss": ("per_token_logps", "old_per_token_logps", "advantages",
                            "completion_mask", "epsilon_low", "epsilon_high", "loss_type",
                            "max_completion_length"),
            "gspo_surrogate": ("per_token_logps", "old_per_token_logps", "advantages",
                               "completion_mask", "epsilon_low", "epsilon_high", "loss_type",
                               "max_completion_length", "importance_sampling_level")},
           _trl, ("validates_input",),
           unsupported_by_kind={"gspo_surrogate": ("batch",)},
           only={"group_advantages": {"method": ("grpo",), "unbiased": (True,),
                                      "eps": (1e-4,)},
                 "policy_loss": {"dual_clip": (None,), "mode": tuple(TRL_LOSS_TYPES)}},
           option_names={"policy_loss": {"clip_low": "epsilon_low", "clip_high": "epsilon_high",
                                         "mode": "loss_type"},
                         "gspo_surrogate": {"clip_low": "epsilon_low",
                                            "clip_high": "epsilon_high"}},
           option_values={"policy_loss": {"mode": {v: k for k, v in TRL_LOSS_TYPES.items()}}},
           semantics={"policy_loss": _semantics("trl_grpo_loss"),
                      "gspo_surrogate": _semantics("trl_gspo_loss")},
           differences={"policy_loss": ("nan_padding_multiplied",),
                        "gspo_surrogate": ("nan_padding_multiplied",)},
           optional={"group_advantages": {"scale_rewards": {
               "method": tuple(TRL_SCALE_REWARDS)}}},
           accepts=_group_of_two_or_more,
           notes="r − group mean, ÷ (std + 1e-4) with the unbiased std, G = num_generations "
                 "≥ 2; with an optional scale_rewards parameter every scaling: group (grpo), "
                 "batch (batch_std), none (dr_grpo); the policy loss per loss_type (grpo, bnpo, "
                 "dr_grpo with max_completion_length = T), one advantage per completion, no "
                 "dual clip; gspo_surrogate: the same loss with importance_sampling_level="
                 "'sequence' and loss_type 'grpo' (GSPO's setup; TRL warns for the others), "
                 "checked as −(mean over all B rows of GSPO's sequence surrogate)"),
    Layout("openrlhf", "OpenRLHF 0.11.0 (OpenRLHF/OpenRLHF at 3c3be62): "
                       "openrlhf/models/utils.py compute_approx_kl, openrlhf/models/loss.py "
                       "PolicyLoss, openrlhf/trainer/ppo_utils/experience_maker.py "
                       "REINFORCE++-baseline",
           {"kl_estimate": ("log_probs", "log_probs_base", "kl_estimator"),
            "policy_loss": ("log_probs", "old_log_probs", "advantages", "action_mask"),
            "group_advantages": ("rewards", "action_mask", "n_samples_per_prompt")},
           _openrlhf, ("validates_input",),
           unsupported_by_kind={"group_advantages": ("gradients",)},
           constructs={"policy_loss": ("clip_eps_low", "clip_eps_high", "dual_clip",
                                       "token_level_loss")},
           only={"policy_loss": {"mode": ("token-mean", "seq-mean-token-mean")},
                 "group_advantages": {"method": ("reinforce_pp",), "unbiased": (False,),
                                      "eps": (1e-6,)}},
           accepts=_token_advantages,
           option_names={"kl_estimate": {"kind": "kl_estimator"},
                         "policy_loss": {"clip_low": "clip_eps_low", "clip_high": "clip_eps_high",
                                         "mode": "token_level_loss"}},
           option_values={"policy_loss": {"mode": {True: "token-mean",
                                                   False: "seq-mean-token-mean"}}},
           semantics={"kl_estimate": _semantics("openrlhf_approx_kl"),
                      "policy_loss": _semantics("openrlhf_policy_loss"),
                      "group_advantages": _semantics("openrlhf_reinforce_baseline")},
           differences={"policy_loss": ("nan_padding_multiplied",)},
           notes="k1 = log_probs − log_probs_base, k2, k3 = SPEC's, computed in float32 and "
                 "clamped to ±10 (the derived oracle); the float32 result is read in the "
                 "input dtype; PolicyLoss (policy_loss_type ppo) is built from the options "
                 "and called, token_level_loss True = token-mean, False = seq-mean-token-mean "
                 "(÷ count + 1e-8), per-token advantages; group_advantages: REINFORCE++-"
                 "baseline (--advantage_estimator reinforce_baseline) as a function of the "
                 "flat rewards, the action_mask (completion i has 1 + i mod 3 tokens) and "
                 "n_samples_per_prompt, returning token-level advantages [B, T]"),
)}


def layout_adapter(fn: Callable, kind: str, layout: Layout,
                   renames: dict[str, str] | None = None) -> Callable:
    """``fn`` (written in ``layout``) wrapped into SPEC's signature for ``kind``."""
    from ..checks.specs import SPECS

    spec = SPECS[kind]
    renames = dict(renames or {})

    def name(layout_name: str) -> str:
        return renames.get(layout_name, layout_name)

    def wrapper(*args: Any, **kw: Any) -> Any:
        values = spec.signature.bind(*args, **kw).arguments
        return layout.call(kind, fn, dict(values), name)

    wrapper.__name__ = getattr(fn, "__name__", "adapted")
    wrapper.__wrapped__ = fn
    return wrapper


def matching_layouts(fn: Callable, kind: str | None = None) -> list[str]:
    """The layouts whose parameter names the function's signature binds (renames aside)."""
    out = []
    for lay in LAYOUTS.values():
        for k, params in lay.params.items():
            if kind is not None and k != kind:
                continue
            if binds(fn, params):
                out.append(f"{lay.name} ({k})")
    return out


def takes(fn: Callable, name: str) -> bool:
    """Whether ``fn`` has a parameter ``name`` that can be given by keyword (or **kwargs)."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False  # cannot tell: do not pass what it may not take
    p = params.get(name)
    if p is not None:
        return p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    return any(q.kind is q.VAR_KEYWORD for q in params.values())


def binds(fn: Callable, names: tuple[str, ...] | list[str], positional: int = 0) -> bool:
    """Whether ``fn`` accepts ``positional`` positional arguments and keywords ``names``."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return True  # a builtin or C function: cannot tell, let the checks decide
    try:
        sig.bind(*([None] * positional), **{n: None for n in names})
    except TypeError:
        return False
    return True
