"""The one training loop, for every transformer task (the Z_p grids, S_k and the miiii multi-task).

One step: the learning rate from the warm-up, ``loss = objective(model(x), y)`` (float64),
``backward``, the Grokfast filter if any, ``AdamW.step``. Every ``log_every`` steps (and at
every checkpoint) the model is evaluated in ``eval()`` mode, so dropout never touches a
logged number, and switched back to ``train()``. The trainer owns the whole resume state:
weights, AdamW moments, the Grokfast filter and the torch RNG (dropout draws from it), so a
run killed and resumed ends bit for bit where an uninterrupted one does on the CPU.

Gromov's quadratic MLP (``mechgrok.gromov``) keeps its own loop on purpose: it is trained by
plain full-batch gradient descent on an MSE loss of one-hot targets, with no optimiser state,
checkpoints or transformer, and sharing this loop would need an optimiser, objective and
model switch that only it uses.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from .config import TrainConfig
from .errors import MechgrokError
from .grokfast import GradientFilter
from .fileio import JSONObject
from .metrics import GROK_ACCURACY, MetricsRow, Objective, grok_step, sum_sq_weights
from .model import Transformer
from .optim import make_grad_filter, make_optimizer, scheduled_lr
from .batches import Batches
from .progress import Progress
from .run import RunWriter, default_run_dir, weights_only
from .runtime import apply_threads, check_memory, resolve_device
from .tasks import make_dataset


@dataclass
class TrainResult:
    run_dir: Path
    summary: JSONObject

    def summary_line(self) -> str:
        s = self.summary
        grok = (f"test acc first >= {GROK_ACCURACY:.0%} at step {s['grok_step']}"
                if s["grok_step"] is not None else f"test acc never reached {GROK_ACCURACY:.0%}")
        return (f"{s['task']} p={s['p']}: {s['steps']} steps in {s['wall_seconds']:.1f} s; "
                f"train acc {s['train_acc']:.4f}, test acc {s['test_acc']:.4f}; {grok}; run in {self.run_dir}")


def training_state(model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                   grad_filter: GradientFilter | None) -> dict[str, torch.Tensor]:
    """Weights, AdamW moments (``optimizer.<param>.<key>``), Grokfast state and RNG states: all a resume needs."""
    names = [name for name, _ in model.named_parameters()]
    optim = {f"optimizer.{names[index]}.{key}": value
             for index, state in optimizer.state_dict()["state"].items() for key, value in state.items()}
    rng = {"rng.cpu": torch.get_rng_state()}
    if next(model.parameters()).is_cuda:
        rng["rng.cuda"] = torch.cuda.get_rng_state()
    return {**weights_only(model.state_dict()), **optim, **(grad_filter.state_tensors() if grad_filter else {}), **rng}


def restore_training_state(tensors: dict[str, torch.Tensor], model: torch.nn.Module,
                           optimizer: torch.optim.Optimizer, grad_filter: GradientFilter | None) -> None:
    """The inverse of ``training_state`` (a resume file from before RNG states were saved leaves the RNG as is)."""
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
    if "rng.cpu" in tensors:
        torch.set_rng_state(tensors["rng.cpu"])
    if "rng.cuda" in tensors and device.type == "cuda":
        torch.cuda.set_rng_state(tensors["rng.cuda"])


def check_resume(resume, model: torch.nn.Module, run_dir: Path) -> None:
    """The resume file fits ``model`` (every weight's shape) and says where it stopped; one line otherwise."""
    where = run_dir / "resume.safetensors"
    step, elapsed = resume.meta.get("step"), resume.meta.get("elapsed")
    if not (isinstance(step, int) and not isinstance(step, bool) and step >= 0
            and isinstance(elapsed, (int, float)) and not isinstance(elapsed, bool)):
        raise MechgrokError(f"{where} does not say at which step it stopped; remove it to restart the run")
    for name, weight in weights_only(model.state_dict()).items():
        saved = resume.tensors.get(name)
        if saved is None or saved.shape != weight.shape:
            got = None if saved is None else tuple(saved.shape)
            raise MechgrokError(f"{where} does not fit this run's model ({name}: {got} vs {tuple(weight.shape)}); "
                                "remove it to restart the run")


def is_save_step(cfg: TrainConfig, step: int) -> bool:
    """Checkpoint every save_every steps, every dense_save_every up to dense_save_until, and at the end."""
    run = cfg.run
    dense = run.dense_save_every and step <= run.dense_save_until and step % run.dense_save_every == 0
    return step % run.save_every == 0 or step == cfg.optim.steps or bool(dense)


class Trainer:
    """Model, optimiser, data and run directory of one run; ``run()`` trains to ``cfg.optim.steps``.

    Everything is checked before anything is created: the config (on construction), the
    device, and the memory the run needs. A start that fails after that removes the
    scaffolding it made, so the corrected command is not refused.
    """

    def __init__(self, cfg: TrainConfig, progress: bool = True):
        self.cfg, self.progress = cfg, progress
        self.device = resolve_device(cfg.run.device)
        check_memory(cfg, self.device)
        apply_threads(cfg.run.threads)
        self.path = default_run_dir(cfg)
        self.writer = RunWriter.open(self.path, cfg)
        try:
            self._build()
        except BaseException:
            self.writer.abandon()
            raise

    def _build(self) -> None:
        cfg, writer = self.cfg, self.writer
        if writer.existing is None:
            self.data = make_dataset(cfg.data.task, cfg.data.p, cfg.data.frac_train, cfg.data.seed)
            writer.save_dataset(self.data, cfg)
        else:
            self.data = writer.load_dataset()
        writer.write_config(cfg, self.data.d_vocab, self.data.n_classes)
        torch.manual_seed(cfg.data.seed)
        self.model = Transformer(cfg.model, self.data.d_vocab, self.data.n_classes,
                                 len(self.data.heads)).to(self.device)
        self.objective = Objective(self.data.heads, mean=cfg.optim.task_loss == "mean")
        self.optimizer = make_optimizer(self.model, cfg.optim)
        self.grad_filter = make_grad_filter(self.model, cfg.optim)
        self.batches = Batches(self.data, cfg, self.device)
        self.step, self.elapsed = 0, 0.0
        resume = writer.load_resume() if writer.existing is not None else None
        if resume is not None:
            check_resume(resume, self.model, writer.path)
            restore_training_state(resume.tensors, self.model, self.optimizer, self.grad_filter)
            self.step, self.elapsed = resume.meta["step"], resume.meta["elapsed"]
        writer.truncate_metrics(self.step if resume is not None else -1)  # a run killed before its first save restarts
        # the lr cut is a function of the logged metrics, so a resumed run makes the same cut at the same step
        self.decayed = any(self._triggers(row) for row in writer.metrics())

    def _triggers(self, row: MetricsRow) -> bool:
        threshold = self.cfg.optim.decay_at_test_acc
        return bool(threshold) and row["test_acc"] >= threshold

    # -- one step, one evaluation, one save ---------------------------------------------------
    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """This step's learning rate set, and its (inputs, labels)."""
        for group in self.optimizer.param_groups:
            group["lr"] = scheduled_lr(self.cfg.optim, self.step, self.decayed)
        return self.batches.batch(self.step)

    def update(self) -> None:
        """The Grokfast filter (if any) and AdamW on the gradients in ``.grad``; one step done."""
        if self.grad_filter:
            self.grad_filter.apply()
        self.optimizer.step()
        self.step += 1

    def train_step(self) -> None:
        x, y = self.next_batch()
        loss = self.objective.loss(self.model(x), y)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.update()

    def evaluate(self) -> MetricsRow:
        """The metrics row at this step, computed in eval mode (no dropout), training mode restored after."""
        self.model.eval()
        with torch.no_grad():
            row = {"step": self.step}
            for split, (x, y) in (("train", self.batches.train), ("test", self.batches.test)):
                row.update(self.objective.scores(self.model(x), y, split))
        self.model.train()
        return {**row, "sum_sq_weights": sum_sq_weights(self.model.parameters()),
                "wall_seconds": round(self.elapsed, 3)}

    def _log(self) -> MetricsRow:
        row = self.evaluate()
        if not all(math.isfinite(row[key]) for key in ("train_loss", "test_loss")):
            raise MechgrokError(f"training diverged: the loss is not finite at step {self.step} (lr too large, or "
                                f"the weights overflowed); nothing of that step is kept, the last checkpoint is the "
                                f"last finite one")
        self.writer.append_metrics(row)
        self.decayed = self.decayed or self._triggers(row)
        return row

    def _save(self, row: MetricsRow) -> None:
        self.writer.save_checkpoint(self.step, weights_only(self.model.state_dict()),
                                    {"config": self.cfg.to_dict(), "metrics": row})
        self.writer.save_resume(training_state(self.model, self.optimizer, self.grad_filter),
                                {"step": self.step, "elapsed": self.elapsed})

    def time_steps(self, steps: int, warmup: int = 10) -> float:
        """Steps per second of ``train_step`` alone (no logging, no saving), after ``warmup`` untimed steps."""
        for _ in range(warmup):
            self.train_step()
        start = time.perf_counter()
        for _ in range(steps):
            self.train_step()
        return steps / (time.perf_counter() - start)

    def step_flops(self) -> int:
        """Floating-point operations of one ``train_step`` (torch's FlopCounterMode; the step is taken)."""
        from torch.utils.flop_counter import FlopCounterMode

        with FlopCounterMode(display=False) as counter:
            self.train_step()
        return counter.get_total_flops()

    # -- the loop ----------------------------------------------------------------------------
    def start(self) -> None:
        """Log (and save) step 0 of a new run; start the clock and the progress bar."""
        cfg = self.cfg
        if self.step == 0 and not self.writer.metrics():  # a resume at step 0 has its step-0 row already
            self._save(self._log())
        stop = cfg.run.stop_at_test_acc
        self.reached = bool(stop) and self.writer.metrics()[-1]["test_acc"] >= stop
        self.bar = Progress(cfg.optim.steps, min(self.step, cfg.optim.steps), self.path.name, self.progress)
        self.started = time.perf_counter() - self.elapsed

    @property
    def finished(self) -> bool:
        return self.step >= self.cfg.optim.steps or self.reached

    def after_step(self) -> None:
        """Log, save and check the early stop where this step asks for it."""
        cfg = self.cfg
        self.elapsed = time.perf_counter() - self.started
        logged = self.step % cfg.run.log_every == 0 or self.step == cfg.optim.steps
        saved = is_save_step(cfg, self.step)
        if logged or saved:
            row = self._log()
            self.bar.set(train_loss=f"{row['train_loss']:.3g}", test_loss=f"{row['test_loss']:.3g}",
                         test_acc=f"{row['test_acc']:.3f}")
            stop = cfg.run.stop_at_test_acc
            self.reached = bool(stop) and row["test_acc"] >= stop
            if saved or self.reached:
                self._save(row)
        self.bar.update(1)

    def finish(self) -> TrainResult:
        self.bar.close()
        return TrainResult(self.path, self._summary())

    def run(self) -> TrainResult:
        try:
            self.start()
            while not self.finished:
                self.train_step()
                self.after_step()
            return self.finish()
        finally:
            self.writer.close()

    def _summary(self) -> JSONObject:
        rows = self.writer.metrics()
        if not rows:
            raise MechgrokError(f"{self.path} has no metrics to summarise")
        last = rows[-1]
        summary = {"task": self.cfg.data.task, "p": self.cfg.data.p, "steps": self.step,
                   "wall_seconds": self.elapsed, "train_loss": last["train_loss"], "test_loss": last["test_loss"],
                   "train_acc": last["train_acc"], "test_acc": last["test_acc"], "grok_step": grok_step(rows),
                   "steps_per_second": self.step / self.elapsed if self.elapsed else math.nan}
        self.writer.write_summary(summary)
        return summary


def train(cfg: TrainConfig, progress: bool = True) -> TrainResult:
    """Train (or resume) the run described by ``cfg``; returns its directory and summary."""
    return Trainer(cfg, progress).run()
