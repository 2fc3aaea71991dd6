"""Grokfast gradient filters (Lee et al. 2024, "Grokfast: Accelerated Grokking by Amplifying Slow Gradients").

Applied between ``backward()`` and ``optimizer.step()``; they amplify the slow (low-frequency)
component of the gradient sequence, which the paper argues drives generalisation:

- ``ema``: mu <- alpha * mu + (1 - alpha) * g, then g <- g + lamb * mu. mu starts at the first
  gradient (``start="gradient"``, the Grokfast reference code) or at zero (``start="zero"``, so the
  first mu is (1 - alpha) * g: the miiii code, syrkis/miiii ``miiii/train.py``, ``init_state``'s
  ``emas = zeros_like(params)`` and ``filter_fn``).
- ``ma``:  mu = mean of the last ``window`` gradients, then g <- g + lamb * mu, applied only
  once ``window`` gradients have been seen (the reference code's warm-up).

Defaults alpha 0.98, lamb 2.0 (the paper's EMA setting), window 100 (the reference MA code
uses lamb 5.0 with it: set it explicitly). The filter state is saved for resume.
"""

from __future__ import annotations

import torch
from torch import nn

FILTERS = ("none", "ema", "ma")


class GradientFilter:
    """Holds the filter state per named parameter; ``apply()`` rewrites ``.grad`` in place."""

    def __init__(self, model: nn.Module, kind: str, alpha: float, lamb: float, window: int, start: str = "gradient"):
        self.params = {name: p for name, p in model.named_parameters() if p.requires_grad}
        self.kind, self.alpha, self.lamb, self.window = kind, alpha, lamb, window
        self.from_zero = start == "zero"
        self.state: dict[str, torch.Tensor] = {}  # ema: mu; ma: [seen, *shape] ring of recent gradients
        self.seen = 0

    def apply(self) -> None:
        with torch.no_grad():
            for name, p in self.params.items():
                if p.grad is None:
                    continue
                if self.kind == "ema":
                    mu = self.state.get(name)
                    if mu is None and not self.from_zero:
                        mu = self.state[name] = p.grad.clone()
                    else:
                        if mu is None:
                            mu = self.state[name] = torch.zeros_like(p.grad)
                        mu.mul_(self.alpha).add_(p.grad, alpha=1 - self.alpha)
                    p.grad.add_(mu, alpha=self.lamb)
                else:
                    ring = self.state.get(name)
                    if ring is None:
                        ring = self.state[name] = torch.zeros(self.window, *p.shape, dtype=p.dtype, device=p.device)
                    ring[self.seen % self.window] = p.grad
                    if self.seen + 1 >= self.window:
                        p.grad.add_(ring.mean(0), alpha=self.lamb)
        self.seen += 1

    def state_tensors(self) -> dict[str, torch.Tensor]:
        return {**{f"grokfast.{name}": t for name, t in self.state.items()},
                "grokfast_seen": torch.tensor(self.seen)}

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        device = next(iter(self.params.values())).device
        self.state = {k[len("grokfast."):]: v.to(device) for k, v in tensors.items() if k.startswith("grokfast.")}
        self.seen = int(tensors["grokfast_seen"])
