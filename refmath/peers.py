"""Real libraries checked against the contract (``refmath peers``; needs ``refmath[peers]``;
tianshou, which pulls numba, tensorboard and pettingzoo, is checked when installed).

Every peer is checked as a user's function is: through a :class:`~refmath.conformance.
bindings.Binding` (its text form in :attr:`Peer.binding`). Where the library's function is
what a built-in layout mirrors (rlax's V-trace, TorchRL's GAE and TD(λ), OpenRLHF's KL), the
library's own function is checked through that layout, with no adapter, so the peers check
the layouts too; otherwise a small adapter calls the library's function, unmodified, with
SPEC's signature, and the binding declares what it cannot express. A difference the library
makes by design is a known difference of the binding (``xfail=CHECK:DIFFERENCE``): only the
failures it reproduces are waived. CleanRL is a script, not a library: its published GAE loop
is transcribed in :func:`cleanrl_ppo_gae` and checked as written.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from .peers_lm import (TRL_LOSS_TYPES, trl_grpo_loss,
                       trl_rollout_correction, trl_sequence_grpo, verl_lm)

__all__ = ["Peer", "PEERS", "run_peers", "cleanrl_ppo_gae"]


@dataclass(frozen=True)
class Peer:
    library: str
    module: str  # for the version
    function: str
    kind: str
    binding: str  # the binding's text form: a layout, or a convention, only.X=..., xfail=...
    make: Callable[[], Callable]  # the library's function, or its adapter (imports lazily)
    by_design: str = ""


# --- TorchRL ----------------------------------------------------------------------------------

def _torchrl(name: str, pass_terminated: bool) -> Callable[[], Callable]:
    def make():
        from torchrl.objectives.value import functional

        estimate = getattr(functional, name)

        def gae(rewards, values, next_values, *, gamma, lam, terminated=None, truncated=None):
            import torch

            term = torch.zeros_like(rewards, dtype=torch.bool) if terminated is None \
                else terminated
            trunc = torch.zeros_like(term) if truncated is None else truncated
            done = term | trunc
            kw = {"terminated": term.unsqueeze(-1)} if pass_terminated else {}
            adv, _ = estimate(gamma, lam, values.unsqueeze(-1), next_values.unsqueeze(-1),
                              rewards.unsqueeze(-1), done.unsqueeze(-1), **kw, time_dim=-2)
            return adv.squeeze(-1)

        return gae

    return make


def _torchrl_vtrace() -> Callable:
    """TorchRL's ``vtrace_advantage_estimate`` in SPEC's signature: it has one ρ̄ for δ and the
    policy-gradient advantage, a c̄, no λ (the checks pin λ = ρ̄ = ρ̄_pg = 1 through ``only``),
    and bootstraps the advantage from vs_{t+1} = V_{t+1} + A_{t+1} (so consistent values)."""
    import torch
    from torchrl.objectives.value import functional

    def vtrace(rewards, values, next_values, log_rhos=None, *, gamma, lam=1.0, rho_clip=1.0,
               c_clip=1.0, pg_rho_clip=1.0, terminated=None, truncated=None, rhos=None):
        lr = log_rhos if log_rhos is not None else torch.log(rhos)
        term = torch.zeros_like(rewards, dtype=torch.bool) if terminated is None \
            else terminated
        trunc = torch.zeros_like(term) if truncated is None else truncated
        inf = float("inf")
        col = (lambda x: x.unsqueeze(-1))  # noqa: E731
        adv, vs = functional.vtrace_advantage_estimate(
            gamma, col(lr), torch.zeros_like(col(lr)), col(values), col(next_values),
            col(rewards), col(term | trunc), terminated=col(term),
            rho_thresh=inf if rho_clip is None else rho_clip,
            c_thresh=inf if c_clip is None else c_clip, time_dim=-2)
        return vs.squeeze(-1), adv.squeeze(-1)

    return vtrace


def _library(module: str, name: str, jit: bool = False) -> Callable[[], Callable]:
    """The library's own function (``jax.jit``-compiled for a JAX one), for a layout."""
    def make() -> Callable:
        fn = getattr(importlib.import_module(module), name)
        if jit:
            import jax

            return jax.jit(fn)
        return fn

    return make


def _openrlhf_kl() -> Callable:
    """OpenRLHF's own ``compute_approx_kl``, loaded from its file (the package's
    ``__init__`` imports flash-attn, which needs CUDA to build)."""
    from .peers_lm import openrlhf_models_utils

    return openrlhf_models_utils().compute_approx_kl


def _torchrl_returns(name: str, with_lambda: bool) -> Callable[[], Callable]:
    """TorchRL's TD(1) / TD(λ) return estimates (they take no values: the λ-return is
    bootstrapped from next_values alone)."""
    def make():
        from torchrl.objectives.value import functional

        estimate = getattr(functional, name)

        def call(rewards, next_values, gamma, lam, terminated, truncated):
            import torch

            term = torch.zeros_like(rewards, dtype=torch.bool) if terminated is None \
                else terminated
            trunc = torch.zeros_like(term) if truncated is None else truncated
            nv = torch.zeros_like(rewards) if next_values is None else next_values
            head = (gamma, lam) if with_lambda else (gamma,)
            out = estimate(*head, nv.unsqueeze(-1), rewards.unsqueeze(-1),
                           (term | trunc).unsqueeze(-1), terminated=term.unsqueeze(-1),
                           time_dim=-2)
            return out.squeeze(-1)

        def lambda_returns(rewards, values, next_values, *, gamma, lam, terminated=None,
                           truncated=None):
            return call(rewards, next_values, gamma, lam, terminated, truncated)

        def discounted_returns(rewards, *, gamma, next_values=None, terminated=None,
                               truncated=None):
            return call(rewards, next_values, gamma, None, terminated, truncated)

        return lambda_returns if with_lambda else discounted_returns

    return make


# --- Stable-Baselines3 ------------------------------------------------------------------------

def _sb3() -> Callable:
    """SB3's ``RolloutBuffer.compute_returns_and_advantage`` as a function of the buffers it
    reads (the ``sb3`` layout's signature): the buffers are filled as given and the buffer's
    own method computes the advantages."""
    from gymnasium import spaces
    from stable_baselines3.common.buffers import RolloutBuffer

    def gae(rewards, values, episode_starts, last_values, dones, gamma, gae_lambda):
        T, n_envs = rewards.shape
        buf = RolloutBuffer(T, spaces.Box(-1, 1, (1,)), spaces.Discrete(2), device="cpu",
                            gae_lambda=gae_lambda, gamma=gamma, n_envs=n_envs)
        buf.rewards[:], buf.values[:], buf.episode_starts[:] = rewards, values, episode_starts
        import torch

        buf.compute_returns_and_advantage(last_values=torch.as_tensor(last_values),
                                          dones=dones)
        return buf.advantages.copy()  # SB3's own dtype (its buffers are float32)

    return gae


# --- tianshou ---------------------------------------------------------------------------------

def _tianshou() -> Callable:
    import torch
    from tianshou.algorithm.algorithm_base import _gae

    def gae(rewards, values, next_values, *, gamma, lam, terminated=None, truncated=None):
        """tianshou's numba kernel ``_gae(v_s, v_s_, rew, end_flag, γ, λ)`` on the flattened
        buffer, with the two steps its ``compute_episodic_return`` does first: ``v_s_`` times
        its value mask (0 after a termination, kept after a truncation) and
        ``end_flag = terminated | truncated`` (each row's last step ends its episode)."""
        B, T = rewards.shape
        term = np.zeros((B, T), bool) if terminated is None else terminated.numpy()
        trunc = np.zeros((B, T), bool) if truncated is None else truncated.numpy()
        end = term | trunc
        end[:, -1] = True
        v_s_ = next_values.numpy().reshape(-1) * ~term.reshape(-1)  # Algorithm.value_mask
        out = _gae(values.numpy().reshape(-1), v_s_, rewards.numpy().reshape(-1),
                   end.reshape(-1), gamma, lam)
        return torch.as_tensor(out.reshape(B, T))  # tianshou's own dtype (float64)

    return gae


# --- verl -------------------------------------------------------------------------------------

def _verl(name: str) -> Callable[[], Callable]:
    """verl's functions (``verl.trainer.ppo.core_algos``) in SPEC's signatures."""

    def make() -> Callable:
        import torch
        from verl.trainer.ppo import core_algos as ca

        def kl_estimate(logp, ref_logp, kind):
            return ca.kl_penalty(logp, ref_logp, kind)

        def group_advantages(rewards, *, method, eps=1e-6, unbiased=True):
            if not unbiased:  # verl has the unbiased std only: such inputs do not apply
                from hypothesis import reject

                reject()
            G = rewards.shape[-1]
            flat = rewards.reshape(-1, 1)
            index = np.repeat(np.arange(flat.shape[0] // G), G)
            ones = torch.ones_like(flat)
            if method == "rloo":
                adv, _ = ca.compute_rloo_outcome_advantage(flat, ones, index, epsilon=eps)
            else:
                adv, _ = ca.compute_grpo_outcome_advantage(
                    flat, ones, index, epsilon=eps, norm_adv_by_std_in_grpo=method == "grpo")
            return adv.reshape(rewards.shape)

        def aggregate_loss(per_step_loss, mask, mode, *, normalizer=None):
            kw = {"loss_scale_factor": normalizer} if normalizer is not None else {}
            return ca.agg_loss(per_step_loss, mask.to(per_step_loss.dtype), mode, **kw)

        def gae(rewards, values, next_values, *, gamma, lam, terminated=None, mask=None):
            keep = torch.ones_like(rewards) if mask is None else mask.to(rewards.dtype)
            adv, _ = ca.compute_gae_advantage_return(rewards, values, keep, gamma, lam)
            return adv

        class _Config(dict):
            __getattr__ = dict.get

        def clipped_surrogate(ratio, advantages, *, clip_low=0.2, clip_high=None,
                              dual_clip=None):
            """verl's PPO loss is aggregated: each element's objective is read off a call whose
            response_mask selects that element alone (token-mean of one token = its loss)."""
            config = _Config(clip_ratio=clip_low, clip_ratio_low=clip_low,
                             clip_ratio_high=clip_low if clip_high is None else clip_high,
                             clip_ratio_c=1e30 if dual_clip is None else dual_clip,
                             global_batch_info={})
            log_r = torch.log(ratio).reshape(1, -1)
            A = advantages.reshape(1, -1)
            out = torch.empty(log_r.shape[1], dtype=ratio.dtype)
            for i in range(log_r.shape[1]):
                one = torch.zeros_like(log_r)
                one[0, i] = 1
                loss = ca.compute_policy_loss_vanilla(torch.zeros_like(log_r), log_r, A, one,
                                                      "token-mean", config)[0]
                out[i] = -loss
            return out.reshape(ratio.shape)

        return {"kl_estimate": kl_estimate, "group_advantages": group_advantages,
                "aggregate_loss": aggregate_loss, "gae": gae,
                "clipped_surrogate": clipped_surrogate}[name]

    return make


# --- CleanRL ----------------------------------------------------------------------------------

def cleanrl_ppo_gae(rewards, values, next_values, *, gamma, lam, terminated=None,
                    truncated=None):
    """CleanRL's ppo.py GAE loop as published (time-major; ``dones[t]`` is the done flag seen
    with observation t, i.e. of transition t − 1; ``next_done = terminations | truncations``),
    written here in SPEC's argument layout [B, T]."""
    import torch

    B, T = rewards.shape
    term = torch.zeros_like(rewards, dtype=torch.bool) if terminated is None else terminated
    trunc = torch.zeros_like(term) if truncated is None else truncated
    done = (term | trunc).to(rewards.dtype).T  # CleanRL: np.logical_or(terminations, truncations)
    r, v = rewards.T, values.T
    dones = torch.cat([torch.zeros_like(done[:1]), done[:-1]], 0)
    next_done, next_value = done[-1], next_values[:, -1]
    advantages = torch.zeros_like(r)
    lastgaelam = 0
    for t in reversed(range(T)):
        if t == T - 1:
            nextnonterminal = 1.0 - next_done
            nextvalues = next_value
        else:
            nextnonterminal = 1.0 - dones[t + 1]
            nextvalues = v[t + 1]
        delta = r[t] + gamma * nextvalues * nextnonterminal - v[t]
        advantages[t] = lastgaelam = delta + gamma * lam * nextnonterminal * lastgaelam
    return advantages.T


LIMITS = "no_mask,no_validates_input,no_per_step_gamma,no_batch"
# a NaN at a padded position leaks where the response mask multiplies instead of selecting
# (padding is finite in practice): the known difference, waived only where it reproduces
_PADDING = "xfail={}.ignored_numbers:nan_padding_multiplied"
_FUNCTIONAL = "torchrl.objectives.value.functional"
PEERS = [
    Peer("TorchRL", "torchrl", "generalized_advantage_estimate", "gae", "torchrl",
         _library(_FUNCTIONAL, "generalized_advantage_estimate"),
         "its own function through the torchrl layout"),
    Peer("TorchRL", "torchrl", "vec_generalized_advantage_estimate (terminated passed)", "gae",
         LIMITS, _torchrl("vec_generalized_advantage_estimate", True)),
    Peer("TorchRL", "torchrl", "generalized_advantage_estimate (default terminated = done)",
         "gae", LIMITS + ",no_truncated", _torchrl("generalized_advantage_estimate", False),
         "by design: without `terminated`, every done (a time limit too) is terminal"),
    Peer("TorchRL", "torchrl", "td1_return_estimate (terminated passed)",
         "discounted_returns", LIMITS, _torchrl_returns("td1_return_estimate", False)),
    Peer("TorchRL", "torchrl", "td_lambda_return_estimate", "lambda_returns", "torchrl",
         _library(_FUNCTIONAL, "td_lambda_return_estimate"),
         "its own function through the torchrl layout: takes no values, so G^λ = A + V only "
         "where next_values[t] = values[t+1] inside a segment"),
    Peer("TorchRL", "torchrl", "vec_td_lambda_return_estimate (terminated passed)",
         "lambda_returns", LIMITS + ",no_inconsistent_values",
         _torchrl_returns("vec_td_lambda_return_estimate", True),
         "by design: takes no values, so G^λ = A + V only where next_values[t] = "
         "values[t+1] inside a segment"),
    Peer("TorchRL", "torchrl", "vtrace_advantage_estimate (terminated passed)", "vtrace",
         LIMITS + ",no_inconsistent_values,only.lam=1.0,only.rho_clip=1.0,"
         "only.pg_rho_clip=1.0", _torchrl_vtrace,
         "by design: one ρ̄ for δ and the advantage, no λ (checked at λ = ρ̄ = 1); the "
         "advantage bootstraps from vs_{t+1}, so values must be consistent"),
    Peer("rlax", "rlax", "vtrace_td_error_and_advantage (jax.jit)", "vtrace", "rlax",
         _library("rlax", "vtrace_td_error_and_advantage", jit=True),
         "its own function through the rlax layout (every λ: its advantage bootstraps from "
         "λ·vs_{t+1} + (1 − λ)·V_{t+1}, rlax's semantics)"),
    Peer("Stable-Baselines3", "stable_baselines3", "RolloutBuffer.compute_returns_and_advantage",
         "gae", "sb3,computes_in=float32", _sb3,
         "the buffer's own method through the sb3 layout; its buffers are float32 (declared); "
         "time limits are handled at collection time (reward += γ·V(s_T)), so the GAE sees "
         "only terminal dones"),
    Peer("tianshou", "tianshou", "_gae (numba) with compute_episodic_return's value mask",
         "gae", LIMITS + ",no_gradients", _tianshou,
         "by design: returns float64 whatever the input dtype"),
    Peer("TRL", "trl", "trainer.utils.entropy_from_logits", "entropy_from_logits",
         "no_validates_input", _library("trl.trainer.utils", "entropy_from_logits")),
    Peer("verl", "verl", "core_algos.kl_penalty", "kl_estimate", "no_validates_input",
         _verl("kl_estimate")),
    Peer("verl", "verl", "core_algos.compute_grpo/rloo_outcome_advantage", "group_advantages",
         "no_validates_input,only.method=grpo|dr_grpo|rloo", _verl("group_advantages"),
         "by design: a group of one keeps its score as the advantage (mean 0, std 1)"),
    Peer("verl", "verl", "core_algos.agg_loss", "aggregate_loss", "no_validates_input",
         _verl("aggregate_loss")),
    Peer("verl", "verl", "core_algos.compute_policy_loss_vanilla (per element)",
         "clipped_surrogate", "no_validates_input,no_gradients", _verl("clipped_surrogate"),
         "by design: takes log-probabilities (a ratio of 0 is exp(−20) after its clamp)"),
    Peer("verl", "verl", "core_algos.compute_gae_advantage_return", "gae", "verl",
         _library("verl.trainer.ppo.core_algos", "compute_gae_advantage_return"),
         "its own function through the verl layout: whitened GAE, an LLM response ends in a "
         "terminal state (no bootstrap)"),
    Peer("verl", "verl", "core_algos.compute_policy_loss_gspo (per token)",
         "gspo_token_surrogate", "no_validates_input,no_batch,"
         + _PADDING.format("gspo_token_surrogate"), verl_lm("gspo_token_surrogate"),
         "by design: the log sequence ratio is clamped at 10 (not reached by the checks)"),
    Peer("verl", "verl", "core_algos.compute_policy_loss_cispo (per token)", "cispo_surrogate",
         "no_validates_input,no_batch," + _PADDING.format("cispo_surrogate"),
         verl_lm("cispo_surrogate"),
         "by design: the log-ratio is clamped to ±20 (not reached by the checks)"),
    Peer("verl", "verl", "rollout_corr_helper.compute_rollout_correction_weights",
         "rollout_correction", "no_validates_input,no_batch,"
         + _PADDING.format("rollout_correction"), verl_lm("rollout_correction"),
         "by design: the log-weight is clamped to ±20 before exp (SAFETY_BOUND); IcePop's "
         "lower bound must be > 0 (low = 0 passed as 5e-324); a batch without a response "
         "token raises there (the adapter answers 0)"),
    Peer("verl", "verl", "core_algos.agg_loss per micro-batch (batch_num_tokens, "
         "global_batch_size)", "split_aggregate_loss", "no_validates_input,"
         + _PADDING.format("split_aggregate_loss"), verl_lm("split_aggregate_loss"),
         "seq-mean-token-mean divides each row by its token count + 1e-8"),
    Peer("verl", "verl", "core_algos.compute_remax_outcome_advantage", "remax_advantages",
         "no_validates_input,no_gradients", verl_lm("remax_advantages"),
         "by design: computed under no_grad (an advantage is a constant of the loss)"),
    Peer("TRL", "trl", "GRPOTrainer._compute_loss (loss_type grpo / bnpo / dr_grpo)",
         "policy_loss", "no_validates_input,only.dual_clip=none,only.mode="
         + "|".join(TRL_LOSS_TYPES) + "," + _PADDING.format("policy_loss"), trl_grpo_loss,
         "no dual clip (checked without); grpo and dr_grpo average over all B rows, a fully "
         "masked row (an empty completion) included"),
    Peer("TRL", "trl", "GRPOTrainer._compute_loss (importance_sampling_level='sequence')",
         "gspo_surrogate", "no_validates_input,no_batch," + _PADDING.format("gspo_surrogate"),
         trl_sequence_grpo),
    Peer("TRL (as published)", "trl", "vLLM importance-sampling correction (token/sequence, "
         "truncate/mask)", "rollout_correction", "no_validates_input,no_batch",
         trl_rollout_correction, "padded positions get weight 1 (the loss masks them; the "
         "adapter multiplies by the mask); computed under no_grad, as TRL does"),
    Peer("OpenRLHF", "openrlhf", "models.utils.compute_approx_kl", "kl_estimate", "openrlhf",
         _openrlhf_kl, "its own function through the openrlhf layout: clamp(k, −10, 10) in "
         "float32; k3 as exp(−x) − 1 + x (no expm1) is a precision flaw, named"),
    Peer("CleanRL (ppo.py, as published)", "torch", "the GAE loop of ppo.py", "gae",
         LIMITS + ",no_truncated,no_inconsistent_values,"
         "xfail=gae.ignored_numbers:nan_bootstrap_multiplied", lambda: cleanrl_ppo_gae,
         "by design: next_done = terminations | truncations — time limits are terminal; "
         "(1 − next_done)·next_value multiplies instead of selecting"),
]


def _version(module: str) -> str:
    from importlib import metadata

    try:
        imported = importlib.import_module(module)
    except Exception:  # noqa: BLE001 - absent, or its package __init__ cannot be imported
        imported = None  # here (OpenRLHF's needs flash-attn): the installed version, if any
    try:
        installed = metadata.version(module)
    except metadata.PackageNotFoundError:
        installed = None
    if imported is None:
        return installed or "not installed"
    return getattr(imported, "__version__", None) or installed or "?"


def run_peers(profile: str = "ci", only: str | None = None) -> list[dict[str, Any]]:
    """Check every peer that is installed (or only ``only``) through its binding; one row
    each (library, version, function, binding, verdict, diagnosis)."""
    from .checks import UsageError
    from .conformance import check

    rows = []
    for peer in PEERS:
        if only is not None and peer.library != only:
            continue
        version = _version(peer.module)
        row = {"library": peer.library, "version": version, "function": peer.function,
               "binding": peer.binding.replace(",", ", "), "note": peer.by_design}
        if version == "not installed":
            rows.append(dict(row, verdict="SKIPPED (not installed: pip install "
                                          "'refmath[peers]')", diagnosis=""))
            continue
        try:
            fn = peer.make()
        except Exception as err:  # noqa: BLE001 - a peer that cannot be imported here
            rows.append(dict(row, verdict=f"SKIPPED ({err})", diagnosis=""))
            continue
        try:
            report = check(peer.kind, fn, binding=peer.binding, profile=profile)
        except UsageError as err:  # the binding does not fit the library's function
            rows.append(dict(row, verdict=f"BINDING ERROR ({err})", diagnosis=""))
            continue
        run, failed, na = report.counts()
        failures = [r for r in report.results if r.status == "failed"]
        causes = sorted({c for r in failures for c in r.causes})
        first = failures[0].message.splitlines()[0] if failures else ""
        xfail = sum(r.status == "xfail" for r in report.results)
        verdict = ("PASS" if report.passed else "FAIL") + f" ({run - failed - xfail}/{run} " \
            f"checks, {na} not applicable" + (f", {xfail} waived" if xfail else "") + ")"
        diagnosis = ("; ".join(f"known mistake '{c}'" for c in causes) or first) if failures \
            else ""
        rows.append(dict(row, verdict=verdict, diagnosis=diagnosis,
                         failed=", ".join(r.id for r in failures)))
    return rows


def markdown(rows: list[dict[str, Any]]) -> str:
    head = "| library | version | function | binding | verdict | failed checks / diagnosis | by design |"
    lines = [head, "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        detail = "; ".join(x for x in (r.get("failed", ""), r["diagnosis"]) if x)
        cells = [r["library"], r["version"], r["function"], r["binding"], r["verdict"],
                 detail, r["note"]]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)
