"""The SPEC §7 peer adapters (refmath/peers_lm.py). TRL's importance-sampling correction is a
transcription that needs only torch: it is checked here, on every run. The adapters that call
verl and TRL themselves run only where those libraries are installed (``refmath peers``)."""

from __future__ import annotations

import pytest
import torch

from refmath.conformance import check
from refmath.peers import PEERS
from refmath.peers_lm import trl_rollout_correction


def test_trl_importance_sampling_transcription_passes_every_rollout_correction_check():
    report = check("rollout_correction", trl_rollout_correction(),
                   convention="no_validates_input,no_batch", profile="ci")
    assert report.passed, [r.message for r in report.results if r.status == "failed"]


def test_trl_transcription_is_caught_when_its_mask_mode_keeps_rejected_weights():
    """The check would fail if the transcription were wrong: dropping the MIS rejection
    (keeping every weight) is caught by the value checks."""
    good = trl_rollout_correction()

    def no_rejection(logp, rollout_logp, mask, *, level="token", mode="truncate", low=None,
                     high=2.0):
        if mode == "mask":
            return good(logp, rollout_logp, mask, level=level, mode="truncate", high=1e300)
        return good(logp, rollout_logp, mask, level=level, mode=mode, high=high)

    report = check("rollout_correction", no_rejection, convention="no_validates_input,no_batch",
                   profile="ci", checks=["float64"])
    assert not report.passed


@pytest.mark.parametrize("peer", [p for p in PEERS if p.kind in (
    "gspo_token_surrogate", "cispo_surrogate", "rollout_correction", "split_aggregate_loss",
    "remax_advantages", "gspo_surrogate") or p.function.startswith("GRPOTrainer")],
    ids=lambda p: f"{p.library}-{p.kind}")
def test_lm_peer_adapters_run_where_installed(peer):
    pytest.importorskip(peer.module)
    try:
        fn = peer.make()
    except Exception as err:  # noqa: BLE001 - a library that cannot be imported here
        pytest.skip(f"{peer.library} cannot be imported here: {err}")
    logp = torch.tensor([[0.1, -0.2, 0.3], [0.5, 0.0, 0.0]], dtype=torch.float64)
    mask = torch.tensor([[True, True, True], [True, False, True]])
    args = {"rollout_correction": (logp, torch.zeros_like(logp), mask),
            "split_aggregate_loss": (logp, mask, "token-mean"),
            "remax_advantages": (logp, torch.zeros_like(logp))}.get(
        peer.kind, (logp, torch.zeros_like(logp), torch.tensor([1.0, -1.0],
                                                               dtype=torch.float64), mask))
    kw = {"gspo_token_surrogate": {"clip_low": 0.2}, "gspo_surrogate": {"clip_low": 0.2},
          "cispo_surrogate": {"clip_low": 0.2, "clip_high": 0.2},
          "split_aggregate_loss": {"splits": 1}}.get(peer.kind, {})
    out = fn(*args, **kw)
    assert torch.isfinite(out).all()


def test_every_peer_is_a_binding_and_layout_peers_need_no_adapter():
    """`refmath peers` goes through bindings: every peer's binding parses, and a peer whose
    binding names a layout is the library's own function (its module's, not refmath's)
    checked through that layout, which has its kind."""
    from refmath.conformance import binding_from
    from refmath.conformance.layouts import LAYOUTS

    layout_peers = 0
    for peer in PEERS:
        binding = binding_from(peer.binding)
        if binding.layout is not None:
            layout_peers += 1
            assert peer.kind in LAYOUTS[binding.layout].kinds, peer
    assert layout_peers >= 6  # rlax, TorchRL ×2, SB3, verl GAE, OpenRLHF KL


def test_an_array_kind_without_mask_declared_passes_the_signature_precheck():
    """A V-trace that takes no mask (TorchRL's adapter) with no_mask declared is called
    without one: the pre-check must not demand it (it did, and `refmath peers` stopped)."""
    import refmath_torch as rt

    def vtrace(rewards, values, next_values, log_rhos=None, *, gamma, lam=1.0, rho_clip=1.0,
               c_clip=1.0, pg_rho_clip=1.0, terminated=None, truncated=None):
        return rt.vtrace(rewards, values, next_values, log_rhos, gamma=gamma, lam=lam,
                         rho_clip=rho_clip, c_clip=c_clip, pg_rho_clip=pg_rho_clip,
                         terminated=terminated, truncated=truncated)

    report = check("vtrace", vtrace, binding="no_mask", checks=["vtrace.float64"],
                   profile="quick")
    assert report.passed, str(report)
