"""Training steps per second, side by side in one run, against what the machine's matmuls allow.

Default model (Nanda et al.'s p=113 addition, full batch), on every thread:
- ours: ``Trainer.train_step`` alone (forward, float64 loss, backward, AdamW), and the whole
  loop (``train()``: evaluation every 10 steps, checkpoints) over 300 steps;
- a plain ``transformer_lens.HookedTransformer`` step with the same optimiser (what a notebook
  runs; the paper's own code, from which HookedTransformer descends, is not vendored here);
- the FLOPs of one step (torch's FlopCounterMode) and the rate torch's matmuls reach on this
  CPU for the step's own shapes; their product with our steps/s is the achieved fraction.
Then the augmentation study's 2-layer model (batch 512): one thread, every thread, and two
single-threaded runs side by side. Run: ``.venv/bin/python bench/train_speed.py``.
"""

import multiprocessing
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor

import torch
import torch.nn.functional as F

from mechgrok import TrainConfig, train
from mechgrok.hooked import build_model
from mechgrok.optim import make_optimizer
from mechgrok.presets import AUGMENTATION as AUGMENTATION_PRESET
from mechgrok.tasks import make_dataset
from mechgrok.train import Trainer

AUGMENTATION = dict(task="add", p=97, aug_reverse=0.15, aug_negate=0.15, **AUGMENTATION_PRESET)


def steps_per_second(settings: dict, threads: int, steps: int = 200) -> float:
    torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory() as tmp:
        return Trainer(TrainConfig(**settings, out=f"{tmp}/run"), progress=False).time_steps(steps, warmup=20)


def loop_rate(steps: int = 300) -> float:
    """Steps/s of the whole ``train()`` loop: evaluation every 10 steps and checkpoints included."""
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        train(TrainConfig(steps=steps, save_every=100, out=f"{tmp}/run"), progress=False)
        return steps / (time.perf_counter() - start)


def hooked_transformer_rate(cfg: TrainConfig, steps: int = 20) -> float:
    """Steps/s of full-batch AdamW on HookedTransformer itself (logits at the last position, float64 loss)."""
    data = make_dataset(cfg.data.task, cfg.data.p, cfg.data.frac_train, cfg.data.seed)
    model = build_model(cfg.model, data.d_vocab, data.n_classes)
    optimizer = make_optimizer(model, cfg.optim)
    x, y = data.train()

    def step():
        loss = F.cross_entropy(model(x)[:, -1].double(), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    for _ in range(3):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return steps / (time.perf_counter() - start)


def matmul_rate(n: int, d_model: int, d_mlp: int, classes: int, repeats: int = 30) -> float:
    """GFLOP/s of torch.mm on the step's big shapes: [n, d] x [d, m], [n, m] x [m, d], [n, d] x [d, c] and backward's."""
    g = torch.Generator().manual_seed(0)
    shapes = [(n, d_model, d_mlp), (n, d_mlp, d_model), (n, d_model, classes), (d_model, n, d_mlp),
              (d_mlp, n, d_model), (n, d_mlp, d_model)]
    pairs = [(torch.randn(a, b, generator=g), torch.randn(b, c, generator=g)) for a, b, c in shapes]
    flops = sum(2 * a * b * c for a, b, c in shapes)
    for x, w in pairs:
        x @ w
    start = time.perf_counter()
    for _ in range(repeats):
        for x, w in pairs:
            x @ w
    return flops * repeats / (time.perf_counter() - start) / 1e9


def main() -> None:
    cores = torch.get_num_threads()
    cfg = TrainConfig()
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(TrainConfig(out=f"{tmp}/run"), progress=False)
        ours = trainer.time_steps(100, warmup=10)
        flops = trainer.step_flops()
    loop = loop_rate()
    hooked = hooked_transformer_rate(cfg)
    n = int(cfg.data.frac_train * cfg.data.p ** 2)
    attainable = matmul_rate(n, cfg.model.d_model, cfg.model.d_mlp, cfg.data.p)
    achieved = flops * ours / 1e9
    print(f"default model, p={cfg.data.p}, {n} training pairs, full batch, {cores} threads:")
    print(f"  ours, train step alone      {ours:6.1f} steps/s ({1000 / ours:.1f} ms/step); "
          f"20k steps ~ {cfg.optim.steps / ours / 60:.1f} min")
    print(f"  ours, whole loop            {loop:6.1f} steps/s (evaluation every 10 steps, checkpoints)")
    print(f"  plain HookedTransformer     {hooked:6.1f} steps/s; ours / HookedTransformer = {ours / hooked:.1f}x")
    print(f"  one step: {flops / 1e9:.2f} GFLOP; matmuls of its shapes reach {attainable:.0f} GFLOP/s here; "
          f"ours runs at {achieved:.0f} GFLOP/s = {achieved / attainable:.0%} of that "
          f"(target 70%: {0.7 * attainable * 1e9 / flops:.1f} steps/s)")
    one, every = steps_per_second(AUGMENTATION, 1), steps_per_second(AUGMENTATION, cores)
    with ProcessPoolExecutor(cores, mp_context=multiprocessing.get_context("spawn")) as pool:
        side_by_side = sum(pool.map(steps_per_second, [AUGMENTATION] * cores, [1] * cores))
    print(f"augmentation model (2 layers, batch 512): 1 thread {one:.1f} steps/s, {cores} threads {every:.1f}, "
          f"{cores} one-thread runs side by side {side_by_side:.1f} in total ({side_by_side / every:.2f}x)")


if __name__ == "__main__":
    main()
