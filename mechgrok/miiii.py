"""Multi-task remainders (seeds/003, "miiii"): n = x0 + p*x1 mod every prime q < p.

Input ``[x0, x1, =]`` (``=`` is token p; the two digits of n in base p). One output head per
prime q < p, all read at the last position: the model is the package's one-layer
``Transformer`` whose unembedding has sum(q) columns, split per head. Loss, as in the study:
sum over tasks of CE_q / ln q (each task's cross-entropy relative to chance), so that uniform
logits give exactly the number of tasks. Training is full batch with AdamW, the warm-up, and
optionally Grokfast and dropout (the study used both); split, seed and optimiser settings come
from a ``TrainConfig``.

The embedding is analysed per task with a per-task basis: the digit x enters n mod q through
x mod q (x0) and p*x mod q (x1), both periodic in x with period q, whose frequencies 2 pi k/q
do not lie on the p-point DFT grid. So W_E's number rows are fitted by least squares on
[1, cos(2 pi k x / q), sin(2 pi k x / q)], k = 1..q//2, and the fraction of their variance
explained (R^2) is compared with what the same fit explains of Gaussian noise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .checkpoints import load_tensors, save_tensors
from .config import TrainConfig
from .errors import MechgrokError
from .model import Transformer
from .tasks import is_prime, split_indices
from .train import (is_save_step, make_grad_filter, make_optimizer, restore_training_state, training_state,
                    warmup_lr)


def primes_below(p: int) -> list[int]:
    """The moduli: every prime q < p (29 of them for p = 113)."""
    return [q for q in range(2, p) if is_prime(q)]


@dataclass(frozen=True)
class MiiiiData:
    """inputs [p^2, 3] ``[x0, x1, p]``; labels [p^2, T] = (x0 + p*x1) mod q for each modulus q."""

    p: int
    moduli: tuple[int, ...]
    inputs: torch.Tensor
    labels: torch.Tensor
    train_idx: torch.Tensor
    test_idx: torch.Tensor


def make_miiii_data(p: int, frac_train: float, seed: int) -> MiiiiData:
    """All p^2 digit pairs (x0, x1) with labels (x0 + p*x1) mod q, split as the other tasks are."""
    x0, x1 = (g.reshape(-1) for g in torch.meshgrid(torch.arange(p), torch.arange(p), indexing="ij"))
    n = x0 + p * x1
    moduli = tuple(primes_below(p))
    labels = torch.stack([n % q for q in moduli], 1)
    train_idx, test_idx = split_indices(len(n), frac_train, seed)
    return MiiiiData(p, moduli, torch.stack([x0, x1, torch.full_like(x0, p)], 1), labels, train_idx, test_idx)


def split_heads(logits: torch.Tensor, moduli: tuple[int, ...]) -> tuple[torch.Tensor, ...]:
    """[batch, sum(q)] -> one [batch, q] block per task."""
    return torch.split(logits, list(moduli), dim=-1)


def miiii_loss(logits: torch.Tensor, labels: torch.Tensor, moduli: tuple[int, ...]) -> torch.Tensor:
    """sum_q CE_q / ln q (float64)."""
    return sum(F.cross_entropy(head.double(), labels[:, i]) / math.log(q)
               for i, (head, q) in enumerate(zip(split_heads(logits, moduli), moduli)))


def head_accuracies(logits: torch.Tensor, labels: torch.Tensor, moduli: tuple[int, ...]) -> list[float]:
    """Per task q: fraction of inputs whose head's argmax is n mod q."""
    return [float((head.argmax(-1) == labels[:, i]).double().mean())
            for i, head in enumerate(split_heads(logits, moduli))]


def train_miiii(cfg: TrainConfig, state_path: str | Path | None = None,
                progress: bool = False) -> tuple[Transformer, MiiiiData, list[dict]]:
    """Train on the miiii tasks for ``cfg.steps`` full-batch steps; rows of losses and per-task test accuracy.

    Rows every ``cfg.log_every`` steps. With ``state_path`` the whole training state (weights,
    AdamW moments, Grokfast filter, dropout RNG, rows) is written there every ``cfg.save_every``
    steps and at the end, and training resumes from it: a kill costs at most ``save_every``
    steps, and the resumed run gives the same numbers as an uninterrupted one. A state file of
    another config is refused.
    """
    data = make_miiii_data(cfg.p, cfg.frac_train, cfg.seed)
    torch.manual_seed(cfg.seed)
    model = Transformer(cfg, cfg.p + 1, sum(data.moduli))
    optimizer = make_optimizer(model, cfg)
    grad_filter = make_grad_filter(model, cfg)
    x, y = data.inputs[data.train_idx], data.labels[data.train_idx]
    rows, step, saved_step = [], 0, 0
    if state_path is not None and Path(state_path).exists():
        tensors, meta = load_tensors(state_path, "miiii-state")
        mismatch = cfg.differences(TrainConfig.from_dict(meta["config"], source=str(state_path)))
        if mismatch:
            raise MechgrokError(f"{state_path} holds a miiii run of another config ({mismatch}); "
                                "choose another --out")
        restore_training_state(tensors, model, optimizer, grad_filter)
        torch.set_rng_state(tensors["rng_state"])
        rows, step = meta["rows"], meta["step"]
        saved_step = step
    bar = tqdm(total=cfg.steps, initial=min(step, cfg.steps), disable=not progress or None, desc="miiii",
               dynamic_ncols=True)
    while True:
        if (step % cfg.log_every == 0 or step == cfg.steps) and not (rows and rows[-1]["step"] == step):
            model.eval()
            with torch.no_grad():
                logits = model(data.inputs)
            rows.append({"step": step,
                         "train_loss": miiii_loss(logits[data.train_idx], y, data.moduli).item(),
                         "test_loss": miiii_loss(logits[data.test_idx], data.labels[data.test_idx], data.moduli).item(),
                         **{f"test_acc_q{q}": acc for q, acc in zip(data.moduli, head_accuracies(
                             logits[data.test_idx], data.labels[data.test_idx], data.moduli))}})
            bar.set_postfix(train_loss=f"{rows[-1]['train_loss']:.3g}", test_loss=f"{rows[-1]['test_loss']:.3g}")
            model.train()
        if state_path is not None and step > saved_step and is_save_step(cfg, step):
            state = {**training_state(model, optimizer, grad_filter), "rng_state": torch.get_rng_state()}
            saved = {"kind": "miiii-state", "step": step, "config": cfg.to_dict(), "rows": rows}
            save_tensors(state_path, state, saved)
        if step >= cfg.steps:
            break
        for group in optimizer.param_groups:
            group["lr"] = warmup_lr(cfg, step)
        optimizer.zero_grad(set_to_none=True)
        miiii_loss(model(x), y, data.moduli).backward()
        if grad_filter:
            grad_filter.apply()
        optimizer.step()
        step += 1
        bar.update(1)
    bar.close()
    model.eval()
    return model, data, rows


def periodic_design(p: int, q: int) -> torch.Tensor:
    """[p, 1 + 2*(q//2)] columns 1, cos(2 pi k x/q), sin(2 pi k x/q) for x = 0..p-1 (sin dropped where it vanishes)."""
    x = torch.arange(p, dtype=torch.float64)
    columns = [torch.ones(p, dtype=torch.float64)]
    for k in range(1, q // 2 + 1):
        columns.append(torch.cos(2 * math.pi * k * x / q))
        if 2 * k != q:
            columns.append(torch.sin(2 * math.pi * k * x / q))
    return torch.stack(columns, 1)


def periodic_r2(matrix: torch.Tensor, q: int) -> float:
    """Fraction of the variance of ``matrix`` [p, d] (over its rows) explained by period-q features, least squares."""
    design = periodic_design(matrix.shape[0], q)
    target = matrix.double()
    fitted = design @ torch.linalg.lstsq(design, target).solution
    centred = target - target.mean(0)
    return float(1 - (target - fitted).pow(2).sum() / centred.pow(2).sum())


def embedding_task_spectrum(W_E: torch.Tensor, p: int, moduli: tuple[int, ...], seed: int = 0) -> list[dict]:
    """Per task q: R^2 of W_E's number rows on period-q features, and the same fit on Gaussian noise."""
    noise = torch.randn(p, W_E.shape[1], generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return [{"q": q, "r2": periodic_r2(W_E[:p], q), "noise_r2": periodic_r2(noise, q)} for q in moduli]
