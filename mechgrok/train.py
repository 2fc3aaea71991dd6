"""Training: AdamW, linear warm-up, full batch by default, checkpoints, metrics, resume.

One step is ``loss = CE(model(x), y)`` (cross-entropy in float64, as in the paper's code:
float32 saturates near 1e-7 where grokking curves live), ``backward``, ``AdamW.step``.
The learning rate rises linearly to ``lr`` over ``warmup_steps`` and is then constant.
Mini-batches, when ``batch_size`` is set, are drawn afresh each step from a generator
seeded by (seed, step), so a resumed run draws the same batches as an uninterrupted one.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .checkpoints import atomic_write, load_tensors, save_tensors, write_json
from .config import TrainConfig, resolve_device
from .errors import MechgrokError
from .grokfast import GradientFilter
from .model import Transformer
from .run import (Run, checkpoint_name, first_step_at, load_dataset, load_run, read_jsonl, save_dataset,
                  weights_only, write_run_config)
from .tasks import augment, make_dataset, negation_map

GROK_ACCURACY = 0.99

try:
    import fcntl
except ImportError:  # not POSIX: runs are not guarded against a second trainer
    fcntl = None


@dataclass
class TrainResult:
    run_dir: Path
    summary: dict[str, Any]

    def summary_line(self) -> str:
        s = self.summary
        grok = (f"test acc first >= {GROK_ACCURACY:.0%} at step {s['grok_step']}"
                if s["grok_step"] is not None else f"test acc never reached {GROK_ACCURACY:.0%}")
        return (f"{s['task']} p={s['p']}: {s['steps']} steps in {s['wall_seconds']:.1f} s; "
                f"train acc {s['train_acc']:.4f}, test acc {s['test_acc']:.4f}; {grok}; run in {self.run_dir}")


def evaluate(model: torch.nn.Module, inputs: torch.Tensor, labels: torch.Tensor) -> tuple[float, float]:
    """(float64 cross-entropy, accuracy) on one set."""
    with torch.no_grad():
        logits = model(inputs).double()
        return F.cross_entropy(logits, labels).item(), (logits.argmax(-1) == labels).double().mean().item()


def first_grok_step(rows: list[dict[str, Any]]) -> int | None:
    """The first logged step with test accuracy >= 99%."""
    return first_step_at(rows, "test_acc", GROK_ACCURACY)


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.AdamW:
    """AdamW(lr, weight_decay, betas (beta1, beta2)) over every trainable parameter, as in the paper."""
    return torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(cfg.beta1, cfg.beta2))


def make_grad_filter(model: torch.nn.Module, cfg: TrainConfig) -> GradientFilter | None:
    """The Grokfast filter ``cfg.grokfast`` asks for, or None."""
    if cfg.grokfast == "none":
        return None
    return GradientFilter(model, cfg.grokfast, cfg.grokfast_alpha, cfg.grokfast_lamb, cfg.grokfast_window)


def warmup_lr(cfg: TrainConfig, step: int) -> float:
    """lr * min(1, (step + 1) / warmup_steps): linear warm-up, then constant."""
    return cfg.lr * min(1.0, (step + 1) / cfg.warmup_steps) if cfg.warmup_steps else cfg.lr


def training_state(model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                   grad_filter: GradientFilter | None) -> dict[str, torch.Tensor]:
    """Weights, AdamW moments (flat keys ``optimizer.<param>.<key>``) and Grokfast state: all a resume needs."""
    names = [name for name, _ in model.named_parameters()]
    optim = {f"optimizer.{names[index]}.{key}": value
             for index, state in optimizer.state_dict()["state"].items() for key, value in state.items()}
    return {**weights_only(model.state_dict()), **optim, **(grad_filter.state_tensors() if grad_filter else {})}


def restore_training_state(tensors: dict[str, torch.Tensor], model: torch.nn.Module,
                           optimizer: torch.optim.Optimizer, grad_filter: GradientFilter | None) -> None:
    """The inverse of ``training_state`` (other keys in ``tensors`` are ignored)."""
    device = next(model.parameters()).device
    own_keys = model.state_dict().keys()
    model.load_state_dict({k: v for k, v in tensors.items() if k in own_keys})
    if grad_filter:
        grad_filter.load_state_tensors(tensors)
    state = {}
    for index, (name, _) in enumerate(model.named_parameters()):
        prefix = f"optimizer.{name}."
        entry = {k[len(prefix):]: v.to(device) for k, v in tensors.items() if k.startswith(prefix)}
        if entry:
            entry["step"] = entry["step"].cpu()
            state[index] = entry
    optimizer.load_state_dict({"state": state, "param_groups": optimizer.state_dict()["param_groups"]})


def is_save_step(cfg: TrainConfig, step: int) -> bool:
    """Checkpoint every save_every steps, every dense_save_every up to dense_save_until, and at the end."""
    dense = cfg.dense_save_every and step <= cfg.dense_save_until and step % cfg.dense_save_every == 0
    return step % cfg.save_every == 0 or step == cfg.steps or bool(dense)


def run_dir_for(cfg: TrainConfig) -> Path:
    """``cfg.out``, or checkpoints/<task>_p<p>_seed<seed>."""
    return Path(cfg.out) if cfg.out else Path("checkpoints") / cfg.run_name


def prepare_run_dir(path: Path, cfg: TrainConfig) -> Run | None:
    """Create ``path`` for a new run and return None, or return the existing run to resume.

    Refuses a non-empty directory that is not a run, or a run whose config differs in
    anything but the resumable fields (steps, save schedule, device, out).
    """
    if path.exists() and not path.is_dir():
        raise MechgrokError(f"output {path} exists and is not a directory")
    if path.is_dir() and any(path.iterdir()):
        if not (path / "config.json").is_file():
            raise MechgrokError(f"output {path} is not empty and is not a mechgrok run; refusing to write there")
        run = load_run(path)
        mismatch = cfg.differences(run.config)
        if mismatch:
            raise MechgrokError(f"{path} holds a run of another config ({mismatch}); choose another --out")
        return run
    try:
        (path / "checkpoints").mkdir(parents=True, exist_ok=True)
        atomic_write(path / ".write-test", lambda tmp: tmp.write_text(""))
        (path / ".write-test").unlink()
    except OSError as err:
        raise MechgrokError(f"output directory {path} is not writable ({err.strerror or err})") from None
    return None


def lock_run_dir(path: Path):
    """An exclusive lock on ``path/.lock``, held while the returned file stays open.

    Two processes training one run dir would interleave checkpoints and metrics; the second fails here.
    """
    handle = open(path / ".lock", "a")
    if fcntl is not None:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise MechgrokError(f"{path} is being trained by another process; wait for it or choose another --out") \
                from None
    return handle


class Trainer:
    """Holds the model, optimizer and data of one run; ``run()`` trains to cfg.steps."""

    def __init__(self, cfg: TrainConfig, progress: bool = True):
        self.cfg = cfg.validate()
        self.progress = progress
        self.path = run_dir_for(cfg)
        self.device = resolve_device(cfg.device)
        existing = prepare_run_dir(self.path, cfg)
        self._lock = lock_run_dir(self.path)
        if existing is None:
            self.data = make_dataset(cfg.task, cfg.p, cfg.frac_train, cfg.seed)
            save_dataset(self.path / "dataset.safetensors", self.data, cfg)
        else:
            self.data = load_dataset(self.path / "dataset.safetensors")
        write_run_config(self.path, cfg, self.data.d_vocab, self.data.n_classes)

        torch.manual_seed(cfg.seed)
        self.model = Transformer(cfg, self.data.d_vocab, self.data.n_classes).to(self.device)
        self.optimizer = make_optimizer(self.model, cfg)
        self.grad_filter = make_grad_filter(self.model, cfg)
        self.train_x, self.train_y = (t.to(self.device) for t in self.data.train())
        self.label_table = self.data.label_table(train_only=cfg.aug_scope == "train")
        self.negation = negation_map(cfg.task, cfg.p)
        self.test_x, self.test_y = (t.to(self.device) for t in self.data.test())
        self.step, self.elapsed = 0, 0.0
        if existing is not None and (self.path / "resume.safetensors").exists():
            self._load_resume_state()
        else:  # a run killed before its first checkpoint starts over
            self._truncate_metrics(-1)

    # -- state ---------------------------------------------------------------
    def _save(self, row: dict[str, Any]) -> None:
        weights = weights_only(self.model.state_dict())
        meta = {"kind": "checkpoint", "step": self.step, "config": self.cfg.to_dict(), "metrics": row}
        save_tensors(self.path / "checkpoints" / checkpoint_name(self.step), weights, meta)
        save_tensors(self.path / "resume.safetensors", training_state(self.model, self.optimizer, self.grad_filter),
                     {"kind": "resume", "step": self.step, "elapsed": self.elapsed})

    def _load_resume_state(self) -> None:
        tensors, meta = load_tensors(self.path / "resume.safetensors", "resume")
        restore_training_state(tensors, self.model, self.optimizer, self.grad_filter)
        self.step, self.elapsed = meta["step"], meta["elapsed"]
        self._truncate_metrics(self.step)

    def _truncate_metrics(self, last_step: int) -> None:
        """Drop metrics logged after the checkpoint we resume from (they will be logged again)."""
        rows = [r for r in read_jsonl(self.path / "metrics.jsonl") if r["step"] <= last_step]
        atomic_write(self.path / "metrics.jsonl",
                     lambda tmp: tmp.write_text("".join(json.dumps(r) + "\n" for r in rows)))

    # -- loop ----------------------------------------------------------------
    def _batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        cfg = self.cfg
        n = len(self.train_y)
        generator = torch.Generator().manual_seed(cfg.seed * 1_000_003 + self.step)
        x, y = self.train_x, self.train_y
        if cfg.batch_size and cfg.batch_size < n:
            index = torch.randperm(n, generator=generator)[: cfg.batch_size].to(self.device)
            x, y = x[index], y[index]
        if cfg.aug_reverse or cfg.aug_negate:
            x, y = augment(x, y, self.label_table, self.negation, cfg.aug_reverse, cfg.aug_negate, generator)
        return x, y

    def _log(self) -> dict[str, Any]:
        train_loss, train_acc = evaluate(self.model, self.train_x, self.train_y)
        test_loss, test_acc = evaluate(self.model, self.test_x, self.test_y)
        row = {"step": self.step, "train_loss": train_loss, "test_loss": test_loss, "train_acc": train_acc,
               "test_acc": test_acc, "sum_sq_weights": self.model.sum_sq_weights(),
               "wall_seconds": round(self.elapsed, 3)}
        with open(self.path / "metrics.jsonl", "a") as handle:
            handle.write(json.dumps(row) + "\n")
        return row

    def train_step(self) -> None:
        cfg = self.cfg
        for group in self.optimizer.param_groups:
            group["lr"] = warmup_lr(cfg, self.step)
        x, y = self._batch()
        loss = F.cross_entropy(self.model(x).double(), y)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.grad_filter:
            self.grad_filter.apply()
        self.optimizer.step()
        self.step += 1

    def time_steps(self, steps: int, warmup: int = 10) -> float:
        """Steps per second of ``train_step`` alone (no logging, no saving), after ``warmup`` untimed steps."""
        for _ in range(warmup):
            self.train_step()
        start = time.perf_counter()
        for _ in range(steps):
            self.train_step()
        return steps / (time.perf_counter() - start)

    def run(self) -> TrainResult:
        cfg = self.cfg
        if self.step == 0:
            row = self._log()
            self._save(row)
        bar = tqdm(total=cfg.steps, initial=min(self.step, cfg.steps), disable=not self.progress or None,
                   desc=cfg.run_name, dynamic_ncols=True)
        started = time.perf_counter() - self.elapsed
        logged_rows = read_jsonl(self.path / "metrics.jsonl")
        reached = bool(cfg.stop_at_test_acc) and logged_rows[-1]["test_acc"] >= cfg.stop_at_test_acc
        while self.step < cfg.steps and not reached:
            self.train_step()
            self.elapsed = time.perf_counter() - started
            logged = self.step % cfg.log_every == 0 or self.step == cfg.steps
            saved = is_save_step(cfg, self.step)
            if logged or saved:
                row = self._log()
                bar.set_postfix(train_loss=f"{row['train_loss']:.3g}", test_loss=f"{row['test_loss']:.3g}",
                                train_acc=f"{row['train_acc']:.3f}", test_acc=f"{row['test_acc']:.3f}")
                reached = bool(cfg.stop_at_test_acc) and row["test_acc"] >= cfg.stop_at_test_acc
                if saved or reached:
                    self._save(row)
            bar.update(1)
        bar.close()
        rows = read_jsonl(self.path / "metrics.jsonl")
        last = rows[-1]
        summary = {"task": cfg.task, "p": cfg.p, "steps": self.step, "wall_seconds": self.elapsed,
                   "train_loss": last["train_loss"], "test_loss": last["test_loss"],
                   "train_acc": last["train_acc"], "test_acc": last["test_acc"],
                   "grok_step": first_grok_step(rows),
                   "steps_per_second": self.step / self.elapsed if self.elapsed else math.nan}
        write_json(self.path / "summary.json", summary)
        self._lock.close()
        return TrainResult(self.path, summary)


def train(cfg: TrainConfig, progress: bool = True) -> TrainResult:
    """Train (or resume) the run described by ``cfg``; returns its directory and summary."""
    return Trainer(cfg, progress).run()
