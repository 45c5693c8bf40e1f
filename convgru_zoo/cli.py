"""``convgru-zoo``: train, evaluate and demo ConvGRU models on Moving MNIST from the command line.

    convgru-zoo train --task forecast --model convgru_forecaster --mnist DIR --out runs/fc
    convgru-zoo eval  --task forecast --weights runs/fc --mnist DIR
    convgru-zoo demo  --mnist DIR
    convgru-zoo train --task classify --model convgru_small --data DIR --out runs/mine   (your clips)
    convgru-zoo train --task classify --model convgru_rcn_resnet18 --freeze-backbone --data DIR --out runs/rcn
    torchrun --nproc_per_node=2 -m convgru_zoo.cli train ...   (data-parallel)

Argument errors name the argument, what was expected and what came, and exit with status 2
before any work starts.
"""
import argparse
import dataclasses
import math
import sys
from pathlib import Path

from . import train as training
from .data.datasets import DATASETS, DEFAULT
from .data.video_folder import EVAL_SPLITS
from .models import list_image_backbones
from .deploy.export import FORMATS as EXPORT_FORMATS
from .publishing.release import CARDS
from .specs import FRAMEWORKS, INPUT_SIZE

EXIT_FAILURE = 1
EXIT_USAGE = 2


def _integer(expected, ok):
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if not ok(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value
    parse.__name__ = expected
    return parse


_positive_int = _integer("a positive int", lambda v: v > 0)
_non_negative_int = _integer("an int >= 0", lambda v: v >= 0)


def _positive_ints(text):
    """``2`` or ``1,2,1``: a list of positive ints."""
    try:
        values = [int(part) for part in text.split(",")]
    except ValueError:
        values = []
    if not values or min(values) <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive int or a comma-separated list of them, got {text!r}")
    return values


def _number(rule, ok):
    def parse(text):
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number {rule}, got {text!r}") from None
        if not math.isfinite(value) or not ok(value):
            raise argparse.ArgumentTypeError(f"expected a finite number {rule}, got {text!r}")
        return value
    parse.__name__ = f"number {rule}"
    return parse


_positive_float = _number("> 0", lambda v: v > 0)
_non_negative_float = _number(">= 0", lambda v: v >= 0)


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _task_datasets():
    return ", ".join(f"{task} {name}" for task, name in DEFAULT.items())


def _add_train_arguments(p, defaults):
    d = defaults
    p.add_argument("--recipe", default=None, metavar="NAME",
                   help="train with every setting of a published recipe, e.g. convgru_tiny.mmnist_motion "
                        "(convgru_zoo.specs.PRETRAINED); then --task, --model and the other training flags are not given")
    p.add_argument("--task", choices=training.TASKS, default=None,
                   help="forecast: 10 frames in, the next 10 predicted; classify: one class per clip (see --dataset); "
                        f"{training.FRAMES_TASK}: a GRU-RCN's image backbone on single frames, by digit (then "
                        "--init-weights of the GRU-RCN)")
    p.add_argument("--model", default=None, help="forecaster name, convgru_* backbone or convgru_rcn_* model (timm); "
                                                  f"for --task {training.FRAMES_TASK} a GRU-RCN's image backbone "
                                                  f"({', '.join(list_image_backbones())})")
    p.add_argument("--dataset", choices=sorted(DATASETS), default=d.dataset,
                   help=f"the clips made from --mnist (default: the task's own, {_task_datasets()})")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--mnist", help="folder of MNIST idx files (the digits clips are made of)")
    source.add_argument("--data", help="folder of your clips (video files or folders of frames), one subfolder "
                                       "per class for classify; optional train.txt/val.txt/test.txt split lists")
    p.add_argument("--num-frames", type=_positive_int, default=None,
                   help=f"--data: frames per clip sample (classify default {training.CONTEXT_FRAMES}; "
                        f"forecast: {2 * training.CONTEXT_FRAMES})")
    p.add_argument("--frame-stride", type=_non_negative_int, default=None,
                   help="--data: take every N-th frame from a random place (eval: the middle); 0: spread the "
                        "frames over the whole clip (classify default 0, forecast 1)")
    p.add_argument("--image-size", type=_positive_int, default=None,
                   help=f"--data: square frame side the model sees (default {INPUT_SIZE[1]})")
    p.add_argument("--hflip", action="store_true",
                   help="--data: random horizontal flips (off by default: a flip swaps left and right motion)")
    p.add_argument("--skip-bad-clips", action="store_true",
                   help="--data: leave unreadable, truncated, too short or missing clips out (counted) "
                        "instead of stopping with an error naming the first")
    p.add_argument("--pretrained", default=None, metavar="TAG",
                   help="fine-tune published weights of --model, e.g. mmnist_motion or convgru_small.mmnist_motion "
                        "(a new classifier for the data's classes); like --init-weights with the tag's file")
    p.add_argument("--out", required=True, help="run folder: metrics.jsonl, checkpoints/, model.safetensors")
    p.add_argument("--no-pretrained-backbone", dest="pretrained_backbone", action="store_false",
                   default=d.pretrained_backbone,
                   help="GRU-RCN models: start the image backbone from random weights instead of its ImageNet "
                        "ones (timm's, converted in --framework mindspore)")
    p.add_argument("--freeze-backbone", action="store_true", default=d.freeze_backbone,
                   help="GRU-RCN models: train only the ConvGRUs, projections and head (backbone BatchNorm in eval mode)")
    p.add_argument("--backbone-lr-scale", type=_non_negative_float, default=d.backbone_lr_scale,
                   help="GRU-RCN models: the image backbone's learning rate as a fraction of --lr (e.g. 0.1)")
    p.add_argument("--framework", choices=FRAMEWORKS, default=d.framework,
                   help="the training loop: torch (torchrun for data parallel) or mindspore (compiled, float32)")
    p.add_argument("--init-weights", default=d.init_weights, help="start from these weights (run folder or file)")
    p.add_argument("--steps", type=_positive_int, default=d.steps)
    p.add_argument("--batch-size", type=_positive_int, default=d.batch_size, help="global batch (all ranks)")
    p.add_argument("--num-sequences", type=_positive_int, default=d.num_sequences, help="training clips (epoch size)")
    p.add_argument("--augment", action="store_true",
                   help="Moving MNIST: a random affine (scale, rotation, shear) and stroke width of each training "
                        "clip's digits")
    p.add_argument("--seed", type=_non_negative_int, default=d.seed)
    p.add_argument("--loss", choices=training.FORECAST_LOSSES, default=d.loss,
                   help="forecast loss: per-pixel cross-entropy or MSE (classify: cross-entropy)")
    p.add_argument("--optimizer", choices=training.OPTIMIZERS, default=d.optimizer)
    p.add_argument("--lr", type=_positive_float, default=d.lr)
    p.add_argument("--weight-decay", type=_non_negative_float, default=d.weight_decay)
    p.add_argument("--momentum", type=_non_negative_float, default=d.momentum, help="sgd only")
    p.add_argument("--schedule", choices=training.SCHEDULES, default=d.schedule)
    p.add_argument("--warmup-steps", type=_non_negative_int, default=d.warmup_steps)
    p.add_argument("--min-lr", type=_non_negative_float, default=d.min_lr, help="end of the cosine schedule")
    p.add_argument("--amp", choices=training.AMP_MODES, default=d.amp,
                   help="mixed precision: bf16 (CPU or GPU), fp16 with a GradScaler (GPU), or auto: bf16 where "
                        "the device computes it natively (AVX-512 BF16/AMX CPUs, bf16 GPUs), else float32")
    p.add_argument("--grad-clip", type=_non_negative_float, default=d.grad_clip, help="max grad norm; 0: off")
    p.add_argument("--ckpt-every", type=_positive_int, default=d.ckpt_every, help="checkpoint every N steps")
    p.add_argument("--keep-checkpoints", type=_non_negative_int, default=training.Runtime.keep_checkpoints,
                   help="the newest checkpoints kept; 0 keeps every one (to score the run along its way, "
                        "benchmarks/rcn_transfer.py); --framework torch")
    p.add_argument("--val-every", type=_non_negative_int, default=d.val_every, help="validate every N steps; 0: off")
    p.add_argument("--val-sequences", type=_positive_int, default=d.val_sequences)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--workers", type=_non_negative_int, default=0, help="DataLoader worker processes")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its newest checkpoint")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _add_eval_arguments(p):
    p.add_argument("--task", choices=training.TASKS, default=None,
                   help="default: the task recorded in the weights' metadata")
    p.add_argument("--weights", required=True, help="a run folder or a .safetensors weights file")
    p.add_argument("--model", default=None, help="model name, when the weights file does not record it")
    p.add_argument("--mnist", default=None, help="folder of MNIST idx files (test clips are generated from it)")
    p.add_argument("--dataset", choices=sorted(DATASETS), default=None,
                   help=f"the test clips made from --mnist (default: the run's own, else the task's: {_task_datasets()})")
    p.add_argument("--data", default=None, help="folder of your clips, sampled as the run was trained (top-1/top-5, "
                                                "per-class accuracy, confusion matrix)")
    p.add_argument("--split", choices=EVAL_SPLITS, default=None,
                   help="--data: the clips scored (default: test for the folder the run trained on, all for another)")
    p.add_argument("--skip-bad-clips", action="store_true", help="--data: leave bad clips out (counted)")
    p.add_argument("--fixed-test", default=None, help="standard fixed Moving MNIST test file (.npy, (20, N, 64, 64))")
    p.add_argument("--num-sequences", type=_positive_int, default=None,
                   help="test clips: generated (default 1000) or the first N of --fixed-test (default all)")
    p.add_argument("--batch-size", type=_positive_int, default=32)
    p.add_argument("--framework", choices=FRAMEWORKS, default="torch")
    p.add_argument("--mindspore-checkpoint", default=None,
                   help="--framework mindspore: evaluate this .ckpt (converted from --weights) instead of "
                        "converting --weights in memory")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (MindSpore: CPU or GPU)")
    p.add_argument("--out", default=None, help="where JSON and PNGs go (default: RUN/eval for a run folder, "
                                               "eval/<file stem> here for a weights file)")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier evaluation's results in --out")
    p.add_argument("--no-progress", action="store_true")


def build_parser():
    parser = _Parser(prog="convgru-zoo", description="ConvGRU video models on Moving MNIST: train, eval, demo")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    defaults = training.TrainConfig(task="forecast", model="")
    _add_train_arguments(sub.add_parser("train", help="train a forecaster or backbone"), defaults)
    _add_eval_arguments(sub.add_parser("eval", help="evaluate weights; write JSON and PNGs"))
    release = sub.add_parser("release", help="check a finished recipe run, convert it to MindSpore, evaluate both, "
                                             "record files, sha256s and results (convgru_zoo.publishing.release)")
    release.add_argument("--repo", default=".", help="the convgru-zoo checkout to write into (default: here)")
    release.add_argument("name", help="published weights, e.g. convgru_tiny.mmnist_motion")
    release.add_argument("--run", required=True, help="the run folder trained by `train --recipe NAME`")
    release.add_argument("--mnist", required=True, help="folder of MNIST idx files (the fixed test set is made of them)")
    release.add_argument("--train-threads", type=_positive_ints, default=None,
                         help="threads the training used (one, or one per resumed segment: 1,2,1), for a log "
                              "that does not record them; default: each segment's count in the log, else "
                              "what train_summary.json records")
    release.add_argument("--no-progress", action="store_true")
    cards = sub.add_parser("cards", help="write model_cards/<tag>/README.md of every released tag and the README's "
                                         "tables from the committed results")
    cards.add_argument("--repo", default=".", help="the convgru-zoo checkout to write into (default: here)")
    cards.add_argument("--check", action="store_true", help="write nothing; exit 1 if a card or table is stale")
    publish = sub.add_parser("publish", help="publish released tags to the Hugging Face Hub (card, both frameworks' "
                                             "weights, config.json, pictures), every file checked first")
    publish.add_argument("--repo", default=".", help="the convgru-zoo checkout to publish from (default: here)")
    publish.add_argument("tags", nargs="*", help="tags to publish, e.g. convgru_tiny.mmnist_motion (default: all released)")
    publish.add_argument("--org", default=None, help="Hub namespace (default: convgru-zoo)")
    publish.add_argument("--dry-run", action="store_true", help="build and check the repo folders, list what would go up")
    publish.add_argument("--out", default=None, help="keep the repo folders here (default: a temporary folder)")
    demo = sub.add_parser("demo", help="the models whose weights ship in the package on held-out clips: frames, "
                                       "metrics, pictures and a JSON report; --train trains a tiny forecaster instead")
    demo.add_argument("--mnist", required=True, help="folder of MNIST idx files")
    demo.add_argument("--out", default="runs/demo")
    demo.add_argument("--train", action="store_true", help="train the tiny forecaster for a few minutes, then evaluate it")
    demo.add_argument("--steps", type=_positive_int, default=None, help="with --train: override the step count")
    demo.add_argument("--framework", choices=FRAMEWORKS, default="torch", help="train and evaluate in this framework")
    demo.add_argument("--no-progress", action="store_true")
    titles = [f.title for f in EXPORT_FORMATS.values()]
    _add_export_arguments(sub.add_parser("export", help=f"write a model's clip or one-step graph as "
                                                        f"{', '.join(titles[:-1])} or {titles[-1]} "
                                                        f"(convgru_zoo.deploy.export)"))
    _add_stream_arguments(sub.add_parser("stream", help="run a model frame by frame over a video or a folder of "
                                                        "frames; print and plot its per-frame answer"))
    return parser


def _add_model_arguments(p):
    from .models import list_models
    p.add_argument("model", choices=list_models(), help="backbone or forecaster")
    p.add_argument("--pretrained", default=None, metavar="TAG", help="load the tag's sha256-checked weights "
                   "(convgru_zoo.specs.PRETRAINED: mmnist_motion or the full convgru_tiny.mmnist_motion); export without it: "
                   "random weights")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")


def _add_export_arguments(p):
    _add_model_arguments(p)
    p.add_argument("--format", choices=sorted(EXPORT_FORMATS), required=True,
                   help="; ".join(f"{name}: {f.title} of the {f.framework} model" for name, f in EXPORT_FORMATS.items()))
    p.add_argument("--out", required=True, help="file to write, ending in " + ", ".join(
        f"{f.suffix} ({name})" for name, f in EXPORT_FORMATS.items()))
    p.add_argument("--step", action="store_true", help="the one-step graph (frame, states -> output, states) "
                   "instead of the whole-clip graph")
    p.add_argument("--batch", type=_positive_int, default=None, help="example batch (default 2); fixed in MINDIR")
    p.add_argument("--frames", type=_positive_int, default=None,
                   help="example clip length (default: the model's); fixed in MINDIR")
    p.add_argument("--size", type=_positive_int, nargs=2, default=None, metavar=("H", "W"),
                   help="example frame size (default 64 64); fixed in MINDIR")


def _add_stream_arguments(p):
    _add_model_arguments(p)
    p.add_argument("source", help="a video file (read with PyAV) or a folder of .png/.jpg frames")
    p.add_argument("--framework", choices=FRAMEWORKS, default="torch")
    p.add_argument("--size", type=_positive_int, default=64, help="side of the square the frames are cropped "
                   "and resized to")
    p.add_argument("--top", type=_positive_int, default=3, help="classes printed and plotted per frame (backbones)")
    p.add_argument("--out", default=None, help="PNG of the per-frame curve")
    p.add_argument("--random-weights", action="store_true", help="stream untrained weights (instead of --pretrained)")


def _run_deploy(args):
    """``export`` and ``stream``: a bad argument, file or tag exits with status 2 and the error's message."""
    from .pretrained import PretrainedWeightsError
    try:
        if args.command == "export":
            from .deploy.export import export
            size = args.size or (None, None)
            path = export(args.model, args.format, args.out, pretrained=args.pretrained, step=args.step,
                          batch=args.batch, frames=args.frames, height=size[0], width=size[1],
                          overwrite=args.overwrite)
            weights = f"{args.pretrained} weights" if args.pretrained else "random weights"
            print(f"exported {args.model} ({'step' if args.step else 'clip'} graph, {args.format}, {weights}): {path}")
        else:
            from .deploy.stream import run
            run(args.model, args.source, args.framework, args.pretrained, args.size, args.out, args.top,
                args.overwrite, args.random_weights)
    except (ValueError, FileExistsError, FileNotFoundError, PretrainedWeightsError) as err:
        raise training.ConfigError(str(err)) from None
    return 0


def train_config_from(args):
    """The run's TrainConfig: a published recipe (``--recipe``), or the flags with --task and --model."""
    fields = {f.name for f in dataclasses.fields(training.TrainConfig)}
    given = {k: v for k, v in vars(args).items() if k in fields}
    if args.recipe is None:
        missing = [f"--{k}" for k in ("task", "model") if given[k] is None]
        if missing:
            raise training.ConfigError(f"{' and '.join(missing)} must be given (or --recipe NAME), got no {missing[0]}")
        config = training.TrainConfig(**given)
    else:
        from .pretrained import PretrainedWeightsError, get
        try:
            recipe = dict(get(args.recipe).recipe)
        except PretrainedWeightsError as err:
            raise training.ConfigError(f"--recipe must name published weights: {err}") from None
        defaults = training.TrainConfig(task="", model="")
        extra = [f"--{k.replace('_', '-')}" for k, v in given.items()
                 if v is not None and v != getattr(defaults, k)]
        if extra:
            raise training.ConfigError(f"--recipe {args.recipe} fixes every training setting, got {', '.join(extra)} too")
        config = training.TrainConfig(**recipe)
    if args.pretrained is not None:
        config = dataclasses.replace(config, init_weights=_pretrained_file(args, config.model))
    runtime = training.Runtime(mnist=args.mnist, out=args.out, device=args.device, workers=args.workers,
                               progress=not args.no_progress, resume=args.resume, data=video_data_from(args, config.task),
                               keep_checkpoints=args.keep_checkpoints)
    return config, runtime


VIDEO_FLAGS = ("num_frames", "frame_stride", "image_size", "hflip", "skip_bad_clips")


def video_data_from(args, task):
    """``--data`` and its sampling flags as a VideoFolderConfig (defaults by task), or None for Moving MNIST."""
    given = {k: getattr(args, k) for k in VIDEO_FLAGS if getattr(args, k) not in (None, False)}
    if args.data is None:
        if given:
            raise training.ConfigError(f"--{next(iter(given)).replace('_', '-')} applies to --data, got --mnist")
        return None
    defaults = ({"num_frames": 2 * training.CONTEXT_FRAMES, "frame_stride": 1} if task == "forecast"
                else {"num_frames": training.CONTEXT_FRAMES, "frame_stride": 0})
    return training.VideoFolderConfig(args.data, **{"image_size": INPUT_SIZE[1], **defaults, **given})


def _pretrained_file(args, model):
    """The torch weights file of ``--pretrained TAG`` (a tag of ``model`` or its full name; sha256-checked,
    downloaded if needed)."""
    from .pretrained import PretrainedWeightsError, weights_file, weights_name
    if args.init_weights:
        raise training.ConfigError(f"--pretrained and --init-weights both name the starting weights, got "
                                   f"{args.pretrained!r} and {args.init_weights!r}; give one")
    try:
        return str(weights_file(weights_name(model, args.pretrained), "torch"))
    except PretrainedWeightsError as err:
        raise training.ConfigError(f"--pretrained must name published weights: {err}") from None


def _repository(path):
    """``--repo``: a convgru-zoo checkout (pyproject.toml and model_cards/), where the publishing commands write."""
    repo = Path(path)
    if not (repo / "pyproject.toml").is_file() or not (repo / CARDS).is_dir():
        raise training.ConfigError(f"--repo must be a convgru-zoo checkout (pyproject.toml, {CARDS}/), got "
                                   f"{str(path)!r}; run from the checkout's root or pass --repo")
    return repo


def _run(args):
    if args.command == "train":
        config, runtime = train_config_from(args)
        summary = training.train(config, runtime)
        if training.dist_from_env().main:
            print(f"trained {summary['model']} for {summary['steps']} steps: {args.out}/model.safetensors")
        return 0
    if args.command == "cards":
        from .publishing.cards import write_cards, write_readme
        repo = _repository(args.repo)
        stale = write_cards(repo / CARDS, check=args.check) + (
            [str(repo / "README.md")] if write_readme(repo / "README.md", repo / CARDS, check=args.check) else [])
        print(("stale: " if args.check else "written: ") + (", ".join(stale) or "none"))
        return EXIT_FAILURE if args.check and stale else 0
    if args.command == "publish":
        from .publishing.publish import PublishError, publish
        from .specs import HF_ORG
        try:
            publish(_repository(args.repo) / CARDS, args.tags, org=args.org or HF_ORG, dry_run=args.dry_run,
                    out=args.out)
        except PublishError as err:
            print(f"convgru-zoo publish: error: {err}", file=sys.stderr)
            return EXIT_FAILURE
        return 0
    if args.command == "release":
        from .publishing.release import release
        record = release(args.name, args.run, args.mnist, _repository(args.repo) / CARDS, train_threads=args.train_threads,
                         progress=not args.no_progress)
        for framework, file in record["files"].items():
            print(f"{args.name} {framework}: {file['path']} sha256 {file['sha256']}")
        return 0
    if args.command == "eval":
        from .evaluation import evaluate
        report = evaluate.evaluate_from_args(args)
        print(evaluate.summary_line(report))
        for kind, path in report["files"].items():
            print(f"  {kind}: {path}")
        return 0
    if args.command in ("export", "stream"):
        return _run_deploy(args)
    return run_demo(args)


# The README's main job on this small CPU: a few minutes of training, then the evaluation.
# A high learning rate, grad clipping keeping it stable: at 1e-2 the validation cross-entropy after
# 100 steps is 0.157, at 3e-3 0.166 (measured, convgru_zoo.torch.forecaster's head over state and frame).
DEMO_CONFIG = dict(task="forecast", model="convgru_forecaster_tiny", steps=600, batch_size=8, num_sequences=10000,
                   seed=0, loss="bce", optimizer="adamw", lr=1e-2, weight_decay=0.01, schedule="cosine",
                   warmup_steps=50, grad_clip=1.0, ckpt_every=100, val_every=100, val_sequences=64)
DEMO_EVAL_SEQUENCES = 256


def run_demo(args):
    """Evaluate every shipped model on held-out clips (``--train``: train the tiny forecaster first)."""
    from pathlib import Path

    from .evaluation import evaluate
    from . import pretrained, specs
    from ._files import atomic_write_json

    out = Path(args.out)
    if args.train:
        return run_train_demo(args, out)
    if args.steps:
        raise training.ConfigError(f"--steps applies to --train, got --steps {args.steps} without it")
    report = {}
    for weights in (w for w in specs.PRETRAINED.values() if w.ships):
        if not weights.file_sha256("torch"):
            print(f"demo: {weights.name} is not released yet (`convgru-zoo train --recipe {weights.name}`)")
            continue
        result = evaluate.evaluate(pretrained.weights_file(weights.name, "torch"), mnist=args.mnist,
                                   num_sequences=DEMO_EVAL_SEQUENCES, framework=args.framework, out=out / weights.name,
                                   progress=not args.no_progress, overwrite=True)  # a demo rerun rewrites its own
        print(f"demo: {evaluate.summary_line(result)}")
        report[weights.name] = {key: result[key] for key in ("task", "framework", "data", "metrics", "files")}
    if not report:
        raise training.ConfigError("demo needs released weights in the package; none are yet: use --train")
    atomic_write_json(out / "demo_report.json", report)
    print(f"demo: report {out / 'demo_report.json'}; pictures and metrics in {out}/<weights>/")
    hub_only = [w.name for w in specs.PRETRAINED.values() if not w.ships and w.file_sha256("torch")]
    if hub_only:
        print(f"demo: skipped {' and '.join(hub_only)}: published on the Hugging Face Hub only (too large to ship "
              "in the package) and the demo stays offline; in a convgru-zoo checkout, evaluate one with")
        for name in hub_only:
            print(f"  convgru-zoo eval --weights model_cards/{name}/{specs.WEIGHT_FILES['torch']} --mnist {args.mnist}")
    return 0


def run_train_demo(args, out):
    """Train the tiny forecaster (resuming a demo run already in ``out``), evaluate it, print the files."""
    from .evaluation import evaluate

    config = training.TrainConfig(**{**DEMO_CONFIG, "framework": args.framework,
                                     **({"steps": args.steps} if args.steps else {})})
    runtime = training.Runtime(mnist=args.mnist, out=str(out), progress=not args.no_progress, resume=True)
    print(f"demo: training {config.model} for {config.steps} steps in {config.framework} (batch {config.batch_size}); "
          f"run folder {out}")
    training.train(config, runtime)
    report = evaluate.evaluate(out, mnist=args.mnist, num_sequences=DEMO_EVAL_SEQUENCES, framework=args.framework,
                               progress=not args.no_progress, overwrite=True)
    print(evaluate.summary_line(report))
    print("demo: files written")
    for kind, path in report["files"].items():
        print(f"  {kind}: {path}")
    return 0


def main(argv=None):
    """Entry point of ``convgru-zoo``; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return _run(args)
    except training.ConfigError as err:
        print(f"convgru-zoo {args.command}: error: {err}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
