"""The optimiser of every run: AdamW with a linear warm-up, and the optional Grokfast filter."""

from __future__ import annotations

import torch

from .config import OptimConfig
from .grokfast import GradientFilter


def make_optimizer(model: torch.nn.Module, cfg: OptimConfig) -> torch.optim.AdamW:
    """AdamW(lr, weight_decay, betas (beta1, beta2)) over every trainable parameter, as in the paper."""
    return torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay,
                             betas=(cfg.beta1, cfg.beta2))


def make_grad_filter(model: torch.nn.Module, cfg: OptimConfig) -> GradientFilter | None:
    """The Grokfast filter ``cfg.grokfast`` asks for, or None."""
    if cfg.grokfast == "none":
        return None
    return GradientFilter(model, cfg.grokfast, cfg.grokfast_alpha, cfg.grokfast_lamb, cfg.grokfast_window,
                          cfg.grokfast_start)


def scheduled_lr(cfg: OptimConfig, step: int, decayed: bool = False) -> float:
    """lr * min(1, (step + 1) / warmup_steps): linear warm-up, then constant; times ``decay_factor`` once
    ``decayed`` (a logged test accuracy reached ``decay_at_test_acc``; the trainer decides, from metrics.jsonl).

    Why the cut: a large learning rate groks fast, but Adam at that rate keeps jumping after the
    model generalises (loss spikes, the Slingshot effect); a smaller one lets it settle. AdamW's
    decoupled decay is lr * weight_decay per step, so the cut slows the weight decay too.
    """
    lr = cfg.lr * min(1.0, (step + 1) / cfg.warmup_steps) if cfg.warmup_steps else cfg.lr
    return lr * cfg.decay_factor if decayed else lr
