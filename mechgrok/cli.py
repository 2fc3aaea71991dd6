"""``mechgrok`` command line: ``train``, ``analyze``, ``explore``, ``experiment``, ``sweep`` and ``import``.

Every TrainConfig field is a ``train`` flag named after it in kebab case (``frac_train`` ->
``--frac-train``), grouped by config section. Precedence: recipe < ``--config FILE`` < flags.
Bad input ends in one ``mechgrok: error: ...`` line and exit status 2.
"""

from __future__ import annotations

import argparse
import os
import re
import sys

from .config import FIELD_KIND, FIELD_SECTION, SECTIONS, TrainConfig, field_parser
from .errors import MechgrokError
from .grokfast import FILTERS
from .presets import RECIPES
from .tasks import TASKS

FIELD_HELP = {
    "task": f"one of {', '.join(TASKS)} (perm: p is the degree k of S_k; miiii: one head per prime q < p)",
    "p": "modulus (the degree k for perm, the base for miiii)",
    "frac_train": "fraction of all pairs used for training, in (0, 1)",
    "seed": "seeds the split, the initial weights and the batch, augmentation and dropout draws",
    "aug_reverse": "probability of swapping the operands of a training example (augmentation study)",
    "aug_negate": "probability of negating each operand of a training example (perm: inverting it)",
    "aug_scope": "pairs augmentation may produce: all (the paper; held-out pairs too) or train",
    "n_layers": "transformer layers",
    "d_model": "residual stream width",
    "n_heads": "attention heads per layer",
    "d_head": "width of each head",
    "d_mlp": "MLP neurons per layer",
    "act_fn": "MLP activation: relu, gelu or silu",
    "init_scale": "multiplies the initial weights",
    "init": "initial weights: paper (N(0, 1/d_model), Nanda et al.) or he (truncated He normal, the miiii code)",
    "dropout": "dropout while training, in [0, 1)",
    "dropout_on": "where dropout acts: sublayer (attention and MLP outputs) or residual (the stream, the miiii code)",
    "dropout_mask": "example (a mask per example) or step (one mask shared by every example of a step, the miiii code)",
    "biases": "which biases train: mlp (b_in and b_out, Nanda et al.) or none (the miiii code)",
    "mlp_init": "independent, or tied (W_out drawn from W_in's draws, rescaled to its fan-in, the miiii code)",
    "dtype": "training float type: float32 or float64 (the miiii code)",
    "lr": "AdamW learning rate (after the warm-up)",
    "weight_decay": "AdamW weight decay",
    "beta1": "AdamW beta1",
    "beta2": "AdamW beta2",
    "warmup_steps": "linear learning-rate warm-up steps",
    "steps": "optimisation steps (may grow when resuming, to extend a run)",
    "batch_size": "mini-batch size; 0 = full batch",
    "grokfast": f"gradient filter: {', '.join(FILTERS)} (Lee et al. 2024)",
    "grokfast_alpha": "Grokfast EMA decay, in [0, 1)",
    "grokfast_lamb": "Grokfast amplification of the slow gradient",
    "grokfast_window": "Grokfast MA window (steps)",
    "grokfast_start": "the Grokfast EMA's first value: gradient (the first gradient) or zero (the miiii code)",
    "task_loss": "several heads (miiii): sum or mean over the heads of CE_q / ln q (the miiii code: mean)",
    "decay_at_test_acc": "once a logged test accuracy reaches this, multiply lr by --decay-factor (0 = never)",
    "decay_factor": "the lr cut of --decay-at-test-acc, in [0, 1]",
    "save_every": "checkpoint interval (steps)",
    "dense_save_every": "extra checkpoint interval early in training ...",
    "dense_save_until": "... up to this step",
    "log_every": "metrics interval (steps)",
    "stop_at_test_acc": "stop at the first logged step with test accuracy >= this (0 = never)",
    "device": "auto (CUDA when present, else CPU), cpu, cuda, cuda:N",
    "threads": "torch CPU threads (0 = torch's default); two trainings on 2 cores want 1 each",
    "out": "run directory",
}


def _add_train_parser(commands) -> None:
    parser = commands.add_parser("train", help="train a model and write a run directory",
                                 description="Train a model with periodic checkpoints. Re-running on an "
                                             "existing run directory resumes it.")
    parser.add_argument("--recipe", choices=sorted(RECIPES), default="paper",
                        help="starting values: 'paper' (Nanda et al., the default) or 'fast' (groks p=113 "
                             "addition in seconds); overridden by --config and by flags")
    parser.add_argument("--config", metavar="FILE", help="TOML or JSON file of config fields (flat, or in "
                                                         "[data] [model] [optim] [run] tables)")
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    defaults = TrainConfig().to_dict()
    for section in SECTIONS:
        summary = " ".join(section.__doc__.split()).split(". ")[0].rstrip(".")  # the docstring's first sentence
        group = parser.add_argument_group(f"{section.NAME} ({summary})")
        for name, owner in FIELD_SECTION.items():
            if owner is not section:
                continue
            kind = FIELD_KIND[name]
            default = "checkpoints/<task>_p<p>_seed<seed>" if name == "out" else repr(defaults[name])
            group.add_argument(f"--{name.replace('_', '-')}", dest=name, default=argparse.SUPPRESS,
                               type=field_parser(kind),
                               metavar=kind.upper(), help=f"{FIELD_HELP[name]} (default {default})")


def _add_analyze_parser(commands) -> None:
    parser = commands.add_parser("analyze", help="compute progress measures of every checkpoint of a run",
                                 description="Analyse a run directory; writes RUN_DIR/analysis/.")
    parser.add_argument("run_dir")
    parser.add_argument("--every", type=int, default=1, help="analyse every N-th checkpoint (the last always)")
    parser.add_argument("--steps", type=int, nargs="+", help="analyse only these checkpoint steps")
    parser.add_argument("--force", action="store_true", help="recompute instead of reusing finished work")
    parser.add_argument("--no-figures", action="store_true", help="write report and table only")
    parser.add_argument("--png", action="store_true", help="PNG copies of the figures too (kaleido + Chromium)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _add_explore_parser(commands) -> None:
    parser = commands.add_parser("explore", help="write one offline HTML explorer of one or more runs",
                                 description="Write a self-contained HTML page (no server, no network) whose "
                                             "checkpoint slider moves every view through training. Runs "
                                             "`analyze` first where the analysis is missing.")
    parser.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    parser.add_argument("--out", metavar="FILE", help="where to write it (default RUN_DIR/analysis/explorer.html; "
                                                      "needed for several runs)")


def _add_experiment_parser(commands) -> None:
    from .experiments import EXPERIMENTS

    parser = commands.add_parser("experiment", help="run an experiment of the seed studies",
                                 description="Experiments: " + "; ".join(f"{k}: {v}" for k, v in EXPERIMENTS.items()))
    parser.add_argument("name", help=", ".join(EXPERIMENTS))
    parser.add_argument("--quick", action="store_true", help="a seconds-long version (what CI runs)")
    parser.add_argument("--out", help="results directory (default results/experiments/NAME, or a -quick suffix)")
    parser.add_argument("--jobs", type=int, default=1,
                        help="train this many runs side by side, one thread each (augmentation, grokfast)")
    parser.add_argument("--partial", action="store_true",
                        help="write the tables from the runs (or checkpoints) so far and train nothing "
                             "(augmentation, miiii)")
    parser.add_argument("--as", dest="variant", choices=("text", "code"), default="text",
                        help="miiii: the study as its paper's text describes it (frac 0.3) or as its code ran it "
                             "(frac 0.5, shared dropout mask, mean task loss, no biases, float64, 65,536 steps)")
    parser.add_argument("--backend", choices=("local", "ray"), default="local",
                        help="where the runs train (augmentation, grokfast): local processes or Ray")
    parser.add_argument("--device", default="auto", help="where to train (gromov, miiii): auto, cpu, cuda[:N]")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def _add_sweep_parser(commands) -> None:
    parser = commands.add_parser("sweep", help="train (and analyse) every point of a grid over config fields",
                                 description="Run a sweep spec (TOML: base config, [grid] of field lists, analyze). "
                                             "Re-running continues it: finished runs are reused, interrupted ones "
                                             "resume.")
    parser.add_argument("spec", metavar="SPEC.toml")
    parser.add_argument("--backend", choices=("local", "ray"), default="local",
                        help="local worker processes (default) or Ray (pip install 'mechgrok[ray]')")
    parser.add_argument("--address", help="an existing Ray cluster's address (default: start a local one)")
    parser.add_argument("--jobs", type=int, help="runs side by side, one thread each (default: CPU count)")
    parser.add_argument("--out", help="sweep directory (default: the spec's out, else checkpoints/sweep_NAME)")
    parser.add_argument("--partial", action="store_true", help="write the table from finished runs; train nothing")
    parser.add_argument("--batch", type=int, help="train up to N runs together in each worker, one stacked step "
                                                  "(runs that share the model's shapes; default: the spec's batch, "
                                                  "else 1)")
    parser.add_argument("--png", action="store_true", help="PNG copies of the figures too (kaleido + Chromium)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _add_import_parser(commands) -> None:
    from .foreign import FORMATS

    parser = commands.add_parser(
        "import", help="turn a run saved by other code into a run directory (then analyze, explore, notebooks)",
        description="Read a foreign grokking run without unpickling code (TransformerLens's grokking demo, "
                    "ARENA's full_run_data.pth, the progress-measures paper's directory, or a directory of "
                    "HookedTransformer state dicts) and write it as an ordinary run directory.")
    parser.add_argument("path", metavar="PATH", help="the file or directory")
    parser.add_argument("--out", required=True, metavar="RUN_DIR", help="the run directory to write (new or empty)")
    parser.add_argument("--format", choices=FORMATS, help="the format (default: detected from the file's keys)")
    parser.add_argument("--task", help="the task (the files do not record it), e.g. add")
    parser.add_argument("--p", type=int, help="p (default: the model's number of output classes)")
    parser.add_argument("--frac-train", type=float, help="a split drawn as mechgrok draws one, for files that "
                                                         "store none (arena, state-dicts)")
    parser.add_argument("--seed", type=int, default=0, help="the seed of that split (default 0)")
    parser.add_argument("--index-file", metavar="JSON", help="the split instead: {\"train_indices\": [a*p+b, ...], "
                                                             "\"test_indices\": [...] (optional)}")
    parser.add_argument("--act-fn", choices=("relu", "gelu", "silu"), help="the activation, for files that do not "
                                                                          "record it (default relu)")


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a bad command line is one ``mechgrok: error:`` line (the usage block on ``--help`` only), and
    a value such as ``-1e-3`` is read as a number, not as a flag (then checked like any other value)."""

    NUMBER = re.compile(r"^-(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._negative_number_matcher = self.NUMBER  # argparse's own knows -1 and -.5, not -1e-3

    def error(self, message: str):
        self.exit(2, f"mechgrok: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="mechgrok", description="Train and mechanistically analyse grokking models.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_train_parser(commands)
    _add_analyze_parser(commands)
    _add_explore_parser(commands)
    _add_experiment_parser(commands)
    _add_sweep_parser(commands)
    _add_import_parser(commands)
    return parser


def _training_process() -> None:
    """This process trains: freed activations are reused, not mapped afresh each step (process-wide, so the
    commands set it, never the library)."""
    from .runtime import large_buffer_policy

    large_buffer_policy("reuse")


def _train(args: argparse.Namespace) -> None:
    from .train import train

    values = {name: getattr(args, name) for name in FIELD_SECTION if hasattr(args, name)}
    base = RECIPES[args.recipe]
    if args.config:  # the file's values are checked on their own first, so an error names the file
        base = TrainConfig.from_dict({**base, **TrainConfig.file_values(args.config)}, source=args.config).to_dict()
    cfg = TrainConfig.from_dict({**base, **values}, source="command line")
    if not cfg.run.out and args.recipe != "paper":  # keep recipe runs apart from paper runs of the same task
        cfg = cfg.replace(out=f"checkpoints/{cfg.run_name}_{args.recipe}")
    _training_process()
    result = train(cfg, progress=not args.quiet)
    print(result.summary_line())


def _import(args: argparse.Namespace) -> None:
    from .foreign import import_run

    out = import_run(args.path, args.out, args.format, args.task, args.p, args.frac_train, args.seed, args.index_file,
                     args.act_fn)
    from .run import load_run

    run = load_run(out)
    print(f"imported {args.path} ({run.imported_from['format']}): {run.config.data.task} p={run.config.data.p}, "
          f"{len(run.steps)} checkpoints (steps {run.steps[0]}..{run.steps[-1]}) -> {out}; next: mechgrok analyze {out}")


def _analyze(args: argparse.Namespace) -> None:
    from .run import load_run

    load_run(args.run_dir)  # a wrong path fails here, before the analysis (and TransformerLens) is imported
    from .analysis.pipeline import analyze_run

    # memory flat in the number of checkpoints; set by the command only, since it is process-wide
    # (a notebook kernel calling analyze_run keeps its own allocator settings)
    from .runtime import large_buffer_policy

    large_buffer_policy("release")
    report = analyze_run(args.run_dir, every=args.every, steps=args.steps, force=args.force,
                         figures=not args.no_figures, progress=not args.quiet, png=args.png)
    print(report.summary_text())


def _explore(args: argparse.Namespace) -> None:
    from .run import load_run

    for run_dir in args.run_dirs:  # every path is checked before anything is computed
        load_run(run_dir)
    from .analysis.explorer import write_explorer

    print(f"explorer: {write_explorer(args.run_dirs, args.out)}")


def _experiment(args: argparse.Namespace) -> None:
    from .experiments import RESULTS_ROOT, run_experiment

    variant = "" if args.variant == "text" else f"-{args.variant}"
    out = args.out or f"{RESULTS_ROOT}/{args.name}{variant}{'-quick' if args.quick else ''}"
    if not args.partial:
        _training_process()
    run_experiment(args.name, out, quick=args.quick, progress=not args.quiet, jobs=args.jobs,
                   partial=args.partial, device=args.device, backend=args.backend, variant=args.variant)
    print(f"results in {out}/")


def _sweep(args: argparse.Namespace) -> None:
    from .sweep import TABLE_NAME, run_sweep

    if args.address and args.backend != "ray":
        raise MechgrokError("--address applies to --backend ray only")
    if not args.partial:
        _training_process()
    spec, rows = run_sweep(args.spec, args.backend, args.jobs, args.address, args.out, args.partial,
                           not args.quiet, args.png, args.batch)
    print(f"{len(rows)} of {len(spec.points)} runs finished; table in {spec.out / TABLE_NAME}.md")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        {"train": _train, "analyze": _analyze, "explore": _explore, "experiment": _experiment,
         "sweep": _sweep, "import": _import}[args.command](args)
    except MechgrokError as err:
        print(f"mechgrok: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader left (e.g. `| head`): nothing more to say, and nothing went wrong
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print("mechgrok: interrupted; re-run the same command to resume from the last checkpoint", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
