"""One BEM training iteration on top of FixMatch (Zheng et al., CVPR 2024, Algorithm 1 lines 1-22).

:class:`BEMStep` holds BEM's parts: the shared :class:`~ltzoo.losses.BEMState` (Eq. 2-10),
the class-balanced mix bank (CBMB), the "ecb" loss (Eq. 11) and CamMix (Algorithm 2). Its
:meth:`BEMStep.loss` does, per iteration:

1. weak forward (no gradient; BatchNorm normalises with the batch's statistics as in
   FixMatch's train-mode forward, but its running statistics are left unchanged, see
   :func:`~ltzoo.engine.norm_stats.frozen_norm_stats`) of labeled x and unlabeled u:
   pseudo-labels q_m (line 3) and confidence mask M_u = max p >= tau (line 15);
2. files the labeled batch under its labels and the unlabeled one under q (line 5); updates
   the state from the weak predictions (lines 6-9; all-reduced under DDP) and reads the
   entropy masks M_h / M_l (Eq. 8-9);
3. samples partners from the bank following s_hat (line 11): a labeled partner for each
   high-entropy sample, an unlabeled one for each low-entropy sample (Sec. 4.3, ESM);
4. forwards the weakly augmented partners once (eval mode, no gradient; Algorithm 2 line 2):
   q^s and M_u(u^s) of unlabeled partners, and the feature maps CamMix turns into CAMs
   (``partner_features``: no further pass);
5. CamMix of A_s(u_m) with the partners (line 13), per-sample lam = 1 - pasted area;
6. one gradient forward of [A_w(x), u'] and the loss of Appendix A Eq. 12 (lines 16-21).

So BatchNorm running statistics move once per iteration (``num_batches_tracked`` + 1), only
in the gradient forward, exactly as in a plain FixMatch iteration.

Choices (documented deviations): losses are means over the batch (the paper writes sums);
lam is per sample (Algorithm 2 line 15 averages it over the batch); the unsupervised part is
multiplied by ``lambda_u`` (1 = Eq. 12); L_{u^s}^h is not weighted by s_hat^u, as in Eq. 12
and Algorithm 1 line 19 (Appendix A's prose names L_{u^s}^h instead of L_{u^s}^l); s_hat^u
is rescaled to sum K ("ecb"'s default ``sum_to_k``, so the loss equals CE before warm-up ends).
A sample whose entropy equals tau_e exactly (in neither mask) stays unmixed with no
unsupervised loss, as Eq. 12 reads.
"""
from __future__ import annotations

from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ltzoo.engine.norm_stats import frozen_norm_stats
from ltzoo.losses.bem_state import BEMState
from ltzoo.losses.class_balanced import EntropyClassBalancedLoss
from ltzoo.mixers.cam import eval_mode
from ltzoo.mixers.cammix import CamMix
from ltzoo.samplers.mix_bank import ClassBalancedMixBank

__all__ = ["BEMStep"]


class BEMStep:
    """BEM's state, bank, ECB loss and CamMix, and the loss of one iteration.

    Args:
        labeled_counts: (K,) labeled class counts (E^x, Eq. 2).
        num_labeled, num_unlabeled: Sizes of the labeled and unlabeled sets (bank index spaces; M).
        warmup_steps: Iterations before the state starts estimating (paper: 5 epochs).
        alpha, delta: Eq. 7's balance and mapping ("softmax" or "convex", ``BEMState.delta_map``).
        temperature: Temperature T of the "softmax" mapping, softmax(x / T) (1: the paper's).
        tau_c, tau_a: CamMix's CAM and area thresholds.
        seed: Seed of the bank's generator (give each rank its own).
        state_args: Further :class:`BEMState` arguments (beta, ema, lambda_d, lambda_e, lambda_tau).
    """

    def __init__(self, labeled_counts: Sequence[float], num_labeled: int, num_unlabeled: int, warmup_steps: int,
                 alpha: float = 0.5, delta: str = "softmax", tau_c: float = 0.8, tau_a: float = 0.1, seed: int = 0,
                 state_args: dict[str, Any] | None = None, temperature: float = 1.0) -> None:
        self.state = BEMState(labeled_counts, num_unlabeled, alpha=alpha, delta=delta, warmup_steps=warmup_steps,
                              **{"temperature": temperature, **dict(state_args or {})})
        self.ecb = EntropyClassBalancedLoss(self.state, reduction="none")  # Eq. 11, holds the state
        self.bank = ClassBalancedMixBank(self.state, num_labeled, num_unlabeled, seed=seed)
        self.mixer = CamMix(tau_c=tau_c, tau_a=tau_a)

    def to(self, device: torch.device) -> "BEMStep":
        self.ecb.to(device)
        return self

    def _partners(self, high: torch.Tensor, low: torch.Tensor, labeled_view: Any, unlabeled_view: Any,
                  like: torch.Tensor, q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Line 11: labeled partners (their labels) at ``high``, unlabeled ones at ``low``; images weakly augmented."""
        px, py = like.clone(), q.clone()
        for mask, source, view in ((high, "labeled", labeled_view), (low, "unlabeled", unlabeled_view)):
            n = int(mask.sum())
            if n:
                idx, classes = self.bank.sample(n, source)
                px[mask] = view.weak(idx).to(device=like.device, dtype=like.dtype)
                py[mask] = classes.to(q.device)  # ground truth y^s; unlabeled ones are replaced by q^s below
        return px, py

    def loss(self, forward: nn.Module, model: nn.Module, labeled: Sequence[torch.Tensor],
             unlabeled: Sequence[torch.Tensor], sup_loss: nn.Module, labeled_view: Any, unlabeled_view: Any,
             threshold: float, lambda_u: float, generator: torch.Generator | None = None
             ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The loss of one iteration (Algorithm 1 lines 2-21) and detached statistics.

        Args:
            forward: The (possibly DDP-wrapped) training forward, ``forward(x) -> logits``.
            model: The bare model (weak / partner forwards, CAM weights).
            labeled: ``(A_w(x), y, index)`` on the device.
            unlabeled: ``(A_w(u), A_s(u), true label or -1, index)`` on the device.
            sup_loss: Supervised loss with ``reduction="none"`` (CE in Eq. 12; LA etc. combine).
            labeled_view, unlabeled_view: :class:`~ltzoo.engine.ssl_data.IndexedDataset` s whose
                ``weak(indices)`` gives partner images.
            threshold: FixMatch's tau for M_u.
            lambda_u: Weight of the unsupervised part (1 = Eq. 12).
            generator: CamMix's generator (fallback boxes).
        """
        xw, y, xi = labeled[0], labeled[1], labeled[2]
        uw, us, ui = unlabeled[0], unlabeled[1], unlabeled[3]
        b = xw.shape[0]
        with torch.no_grad(), frozen_norm_stats(model):  # line 3: pseudo-labels; BN stats move only below
            probs = torch.softmax(model(torch.cat([xw, uw])).float(), dim=1)
        probs_x, probs_u = probs[:b], probs[b:]
        conf, q = probs_u.max(dim=1)
        m_u = conf >= threshold  # line 15: M_u(u_m)
        self.bank.update(xi, y, True)  # line 5
        self.bank.update(ui, q, False)
        self.state.update(probs_x, y, probs_u, q)  # lines 6-9 (Eq. 2-7, 10)
        high, low = self.state.entropy_masks(probs_u)  # Eq. 8-9: M_h, M_l
        sel = high | low
        px, py = self._partners(high, low, labeled_view, unlabeled_view, us, q)  # line 11
        lam = torch.ones(us.shape[0], device=us.device)
        m_us = torch.zeros_like(m_u)
        mixed = us.clone()
        if bool(sel.any()):
            with torch.no_grad(), eval_mode(model):  # Algorithm 2 line 2: one forward of the partners
                feats = model.forward_features(px[sel])
                p_conf, p_q = torch.softmax(model.forward_head(feats).float(), dim=1).max(dim=1)
            low_in_sel = low[sel]
            py_sel = torch.where(low_in_sel, p_q, py[sel])  # q^s for unlabeled partners, y^s for labeled
            py[sel] = py_sel
            m_us[sel] = p_conf >= threshold  # M_u(u^s_m)
            mb = self.mixer(us[sel], q[sel], partner_x=px[sel], partner_y=py_sel, model=model,
                            partner_features=feats, generator=generator)  # line 13: CamMix
            mixed[sel], lam[sel] = mb.x, mb.lam.to(lam.device)
        logits = forward(torch.cat([xw, mixed]))  # the one gradient forward
        lx, lu = logits[:b], logits[b:]
        loss_s = sup_loss(lx, y).mean()  # line 16: L_s
        w_q = self.ecb(lu, q)  # s_hat^u[q_m] * H(f(u'_m), q_m)
        w_qs = self.ecb(lu, py)  # s_hat^u[q^s_m] * H(f(u'_m), q^s_m)
        ce_ys = F.cross_entropy(lu, py, reduction="none")  # H(f(u'_m), y^s_m)
        f32 = lambda m: m.to(lu.dtype)  # noqa: E731
        l_u = f32(m_u) * (f32(high) + f32(low)) * w_q  # lines 17-18: L_u^h + L_u^l
        l_us = f32(high) * ce_ys + f32(m_us & low) * w_qs  # lines 19-20: L_{u^s}^h + L_{u^s}^l
        lam_t = lam.to(lu.dtype)
        loss_u = (lam_t * l_u + (1.0 - lam_t) * l_us).mean()  # line 21, per-sample lam
        stats = {"loss_s": loss_s.detach(), "loss_u": loss_u.detach(), "mask_rate": f32(m_u).mean().detach(),
                 "frac_high": f32(high).mean(), "frac_low": f32(low).mean(), "lam": lam_t.mean().detach(), "q": q,
                 "terms": {"lam": lam_t.detach(), "m_u": m_u, "high": high, "low": low, "m_us": m_us, "partner_y": py}}
        return loss_s + lambda_u * loss_u, stats

    def summary(self) -> dict[str, Any]:
        """Plain numbers for the log: step count, tau_e, bank sizes, s_hat and s_hat^u."""
        st = self.state
        return {"bem_step": int(st.step_count), "tau_e": float(st.tau_e),
                "bank_labeled": int(self.bank.class_sizes("labeled").sum()),
                "bank_unlabeled": int(self.bank.class_sizes("unlabeled").sum()),
                "s_hat": [round(float(v), 6) for v in st.s_hat()],
                "s_hat_u": [round(float(v), 6) for v in st.s_hat_unlabeled()]}
