"""``mechgrok`` command line: ``train`` and ``analyze``.

Every TrainConfig field is a ``train`` flag named after it in kebab case (``frac_train`` ->
``--frac-train``). Precedence: defaults < ``--config FILE`` < flags.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import fields

from .config import RECIPES, TrainConfig
from .errors import MechgrokError
from .tasks import TASKS

FIELD_HELP = {
    "task": f"one of {', '.join(TASKS)} (perm: p is the degree k of S_k)",
    "p": "modulus (or the degree k for perm)",
    "frac_train": "fraction of all pairs used for training, in (0, 1)",
    "batch_size": "mini-batch size; 0 = full batch",
    "device": "auto (CUDA when present, else CPU), cpu, cuda, cuda:N",
    "out": "run directory (default checkpoints/<task>_p<p>_seed<seed>)",
    "dense_save_every": "extra checkpoint interval early in training ...",
    "dense_save_until": "... up to this step",
    "aug_scope": "pairs --aug-reverse/--aug-negate may produce: all (the paper; held-out pairs too) or train",
}


def _add_train_parser(commands) -> None:
    parser = commands.add_parser("train", help="train a model and write a run directory",
                                 description="Train a model with periodic checkpoints. Re-running on an "
                                             "existing run directory resumes it.")
    parser.add_argument("--recipe", choices=sorted(RECIPES), default="paper",
                        help="starting values: 'paper' (Nanda et al., the default) or 'fast' (groks p=113 "
                             "addition in seconds); overridden by --config and by flags")
    parser.add_argument("--config", metavar="FILE", help="TOML or JSON file of config fields")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    defaults = TrainConfig()
    for f in fields(TrainConfig):
        kind = {"int": int, "float": float, "str": str}[f.type]
        parser.add_argument(f"--{f.name.replace('_', '-')}", dest=f.name, type=kind, default=argparse.SUPPRESS,
                            help=f"{FIELD_HELP.get(f.name, '')} (default {getattr(defaults, f.name)!r})".strip())


def _add_analyze_parser(commands) -> None:
    parser = commands.add_parser("analyze", help="compute progress measures of every checkpoint of a run",
                                 description="Analyse a run directory; writes RUN_DIR/analysis/.")
    parser.add_argument("run_dir")
    parser.add_argument("--every", type=int, default=1, help="analyse every N-th checkpoint (the last always)")
    parser.add_argument("--steps", type=int, nargs="+", help="analyse only these checkpoint steps")
    parser.add_argument("--force", action="store_true", help="recompute instead of reusing finished work")
    parser.add_argument("--no-figures", action="store_true", help="write report and table only")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _add_experiment_parser(commands) -> None:
    from .experiments import EXPERIMENTS

    parser = commands.add_parser("experiment", help="run an experiment of the seed studies",
                                 description="Experiments: " + "; ".join(f"{k}: {v}" for k, v in EXPERIMENTS.items()))
    parser.add_argument("name", help=", ".join(EXPERIMENTS))
    parser.add_argument("--quick", action="store_true", help="a seconds-long version (what CI runs)")
    parser.add_argument("--out", help="results directory (default experiments/results/NAME, or a -quick suffix)")
    parser.add_argument("--jobs", type=int, default=1,
                        help="train this many runs side by side, one thread each (augmentation, grokfast)")
    parser.add_argument("--partial", action="store_true",
                        help="write the tables from the runs finished so far and train nothing (augmentation)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mechgrok", description="Train and mechanistically analyse grokking models.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_train_parser(commands)
    _add_analyze_parser(commands)
    _add_experiment_parser(commands)
    return parser


def _train(args: argparse.Namespace) -> None:
    from .train import train

    values = {f.name: getattr(args, f.name) for f in fields(TrainConfig) if hasattr(args, f.name)}
    from_file = TrainConfig.file_values(args.config) if args.config else {}
    cfg = TrainConfig.from_dict({**RECIPES[args.recipe], **from_file, **values}, source="command line")
    if not cfg.out and args.recipe != "paper":  # keep recipe runs apart from paper runs of the same task
        cfg.out = f"checkpoints/{cfg.run_name}_{args.recipe}"
    result = train(cfg, progress=not args.quiet)
    print(result.summary_line())


def _analyze(args: argparse.Namespace) -> None:
    from .analysis.report import analyze_run

    report = analyze_run(args.run_dir, every=args.every, steps=args.steps, force=args.force,
                         figures=not args.no_figures, progress=not args.quiet)
    print(report.summary_text())


def _experiment(args: argparse.Namespace) -> None:
    from .experiments import run_experiment

    out = args.out or f"experiments/results/{args.name}{'-quick' if args.quick else ''}"
    run_experiment(args.name, out, quick=args.quick, progress=not args.quiet, jobs=args.jobs,
                   partial=args.partial)
    print(f"results in {out}/")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        {"train": _train, "analyze": _analyze, "experiment": _experiment}[args.command](args)
    except MechgrokError as err:
        print(f"mechgrok: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mechgrok: interrupted; re-run the same command to resume from the last checkpoint", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
