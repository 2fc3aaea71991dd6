"""Gromov's two-layer MLP for modular addition (Gromov, "Grokking modular arithmetic", 2023).

Model: x = onehot(a) ⊕ onehot(b) in R^{2p}; f(x) = (1/N) W2 (W1 x)^2 with W1 [N, 2p],
W2 [p, N], a quadratic activation and no biases; MSE loss on one-hot targets; plain
full-batch gradient descent, no regularisation. (The 1/N output scale is our normalisation
so that outputs are O(1) for any width. It puts a 1/N in every gradient, so GD needs a
learning rate of order N/5: at p=97, N=512, lr 100 groks and lr 20 barely moves.)

Analytic solution (no training). Neuron k gets a frequency s_k (the N neurons cycle through
1..(p-1)/2) and two random phases phi_k, psi_k:

    W1[k, a]     = cos(w_k a + phi_k),   W1[k, p + b] = cos(w_k b + psi_k),
    W2[c, k]     = 2 cos(w_k c + phi_k + psi_k),          w_k = 2 pi s_k / p.

The square of W1 x holds 2 cos(w_k a + phi_k) cos(w_k b + psi_k), whose part
cos(w_k (a+b) + phi_k + psi_k) meets W2 in phase exactly when c = a + b; every other product
carries a random phase and averages out over neurons. So f_c ~ 1 at c = a+b mod p and ~ 0
elsewhere, and the argmax is right on every pair once N is large enough.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn


class QuadraticMLP(nn.Module):
    """f(a, b) = (1/N) W2 (W1[:, a] + W1[:, p + b])^2: [batch] x [batch] -> [batch, p]."""

    def __init__(self, p: int, width: int, init_scale: float = 1.0, generator: torch.Generator | None = None):
        super().__init__()
        self.p, self.width = p, width
        self.W1 = nn.Parameter(torch.randn(width, 2 * p, generator=generator) * init_scale)
        self.W2 = nn.Parameter(torch.randn(p, width, generator=generator) * init_scale)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        # F.embedding rather than W1[:, a]: its backward is a fast scatter, indexing's is not
        hidden = F.embedding(a, self.W1[:, : self.p].T) + F.embedding(b, self.W1[:, self.p :].T)  # [batch, N]
        return hidden.pow(2) @ self.W2.T / self.width


def analytic_mlp(p: int, width: int, seed: int = 0) -> QuadraticMLP:
    """The closed-form solution above, with frequencies cycled over neurons and random phases."""
    g = torch.Generator().manual_seed(seed)
    model = QuadraticMLP(p, width)
    freqs = torch.arange(width) % ((p - 1) // 2) + 1
    phi, psi = (torch.rand(width, generator=g) * 2 * math.pi for _ in range(2))
    x = torch.arange(p)
    w = 2 * math.pi * freqs[:, None] / p  # [N, 1]
    with torch.no_grad():
        model.W1[:, :p] = torch.cos(w * x + phi[:, None])
        model.W1[:, p:] = torch.cos(w * x + psi[:, None])
        model.W2.copy_(2 * torch.cos(w * x + (phi + psi)[:, None]).T)
    return model


def accuracy(model: QuadraticMLP, a: torch.Tensor, b: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of pairs with argmax_c f(a, b)_c = label."""
    with torch.no_grad():
        return float((model(a, b).argmax(-1) == labels).double().mean())


def mse_loss(model: QuadraticMLP, a: torch.Tensor, b: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """mean over examples of ||f(x) - onehot(label)||^2."""
    return (model(a, b) - F.one_hot(labels, model.p).to(model.W1.dtype)).pow(2).sum(-1).mean()


@dataclass
class NeuronFeatures:
    """Per neuron: dominant frequency of each map, its share of the map's power, and phases.

    For a map m(x) = A cos(w x + theta) the phase is theta; W1's two halves give phi and psi,
    W2's column gives chi. The analytic solution has one frequency in all three and
    chi = phi + psi (mod 2 pi).
    """

    freq_a: torch.Tensor
    freq_b: torch.Tensor
    freq_out: torch.Tensor
    power_share: torch.Tensor  # [N] smallest of the three maps' dominant-frequency power shares
    phi: torch.Tensor  # [N] phase of W1's a half at its dominant frequency
    psi: torch.Tensor  # [N] phase of W1's b half
    chi: torch.Tensor  # [N] phase of W2's column
    phase_error: torch.Tensor  # [N] |chi - phi - psi| wrapped to [0, pi]

    def single_frequency(self, min_share: float = 0.5) -> torch.Tensor:
        """[N] bool: one frequency dominates all three maps (> min_share of each map's non-constant power)."""
        return (self.freq_a == self.freq_b) & (self.freq_b == self.freq_out) & (self.power_share > min_share)


def _dominant(maps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """maps [N, p] -> (frequency, share of non-constant power, phase theta with m ~ cos(w x + theta))."""
    spectrum = torch.fft.rfft(maps.double(), dim=-1)[:, 1:]  # drop the constant
    power = spectrum.abs().pow(2)
    best = power.argmax(-1)
    share = power.gather(1, best[:, None])[:, 0] / power.sum(-1).clamp_min(1e-30)
    return best + 1, share, spectrum.gather(1, best[:, None])[:, 0].angle()


def neuron_features(model: QuadraticMLP) -> NeuronFeatures:
    """Each neuron's dominant frequency, power share and phase in W1's a and b halves and in W2's column."""
    p = model.p
    fa, sa, phi = _dominant(model.W1[:, :p].detach())
    fb, sb, psi = _dominant(model.W1[:, p:].detach())
    fo, so, chi = _dominant(model.W2.detach().T)
    error = torch.remainder(chi - phi - psi + math.pi, 2 * math.pi) - math.pi
    return NeuronFeatures(fa, fb, fo, torch.stack([sa, sb, so]).min(0).values, phi, psi, chi, error.abs())


def train_gd(model: QuadraticMLP, a: torch.Tensor, b: torch.Tensor, labels: torch.Tensor, train_idx: torch.Tensor,
             test_idx: torch.Tensor, lr: float, steps: int, log_every: int = 50,
             on_step: Callable[[], None] | None = None) -> list[dict]:
    """Plain full-batch gradient descent on the MSE loss, no regularisation; rows of train/test loss and accuracy.
    ``on_step`` is called after every step (a progress display)."""
    rows = []
    for step in range(steps + 1):
        if on_step is not None and step:
            on_step()
        if step % log_every == 0 or step == steps:
            with torch.no_grad():
                rows.append({"step": step,
                             "train_loss": mse_loss(model, a[train_idx], b[train_idx], labels[train_idx]).item(),
                             "test_loss": mse_loss(model, a[test_idx], b[test_idx], labels[test_idx]).item(),
                             "train_acc": accuracy(model, a[train_idx], b[train_idx], labels[train_idx]),
                             "test_acc": accuracy(model, a[test_idx], b[test_idx], labels[test_idx])})
        if step == steps:
            break
        model.zero_grad()
        mse_loss(model, a[train_idx], b[train_idx], labels[train_idx]).backward()
        with torch.no_grad():
            for param in model.parameters():
                param -= lr * param.grad
    return rows
