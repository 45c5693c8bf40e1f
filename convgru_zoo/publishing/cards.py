"""Model cards, generated from the committed results of a release, never edited by hand.

    convgru-zoo cards            # (re)write model_cards/<name>/README.md for every released tag
    convgru-zoo cards --check    # exit 1 when a committed card differs from what the results give

A card is the Hub's format: YAML front matter (license, library, tags, pipeline tag, datasets and a
``model-index`` with every measured metric, written by huggingface_hub's ``ModelCardData`` and
``EvalResult``) and a Markdown body: what the model is for, its limits, how to load it in every
door, the recipe with its command and training hours, the metrics beside their baselines, pictures,
the data caveat and the citation. Every number comes from ``release.json`` and the evaluation JSONs
beside it (``convgru_zoo.publishing.release``); figures quoted from other work from ``model_cards/reference/``.
"""
import json
from pathlib import Path

import numpy as np

from .. import machine, specs
from ..data.moving_mnist import DIRECTIONS
from ..evaluation.metrics import wilson_interval
from ..train import settings_in_use
from .release import result_dir

REFERENCE = Path("reference") / "openstl_moving_mnist.json"  # in cards_dir: quoted figures of other work, with source
CITATION = """@article{ballas2015delving,
  title   = {Delving Deeper into Convolutional Networks for Learning Video Representations},
  author  = {Ballas, Nicolas and Yao, Li and Pal, Chris and Courville, Aaron},
  journal = {arXiv preprint arXiv:1511.06432},
  year    = {2015}
}"""
DATA_CAVEAT = ("The clips are made of MNIST's official *test* digits (10,000 images), split into disjoint "
               "train / validation / test images (80 / 10 / 10 %, `convgru_zoo.data.split_indices`): no test "
               "digit image is ever seen in training, but the training digits are not MNIST's training set.")


def released_names(cards_dir):
    """Names of the tags with a release (``release.json``) in ``cards_dir``, in ``specs.PRETRAINED`` order."""
    return [name for name in specs.PRETRAINED if (result_dir(name, cards_dir) / "release.json").is_file()]


def _load(name, cards_dir):
    folder = result_dir(name, cards_dir)
    release = json.loads((folder / "release.json").read_text())
    task = release["task"]
    evals = {fw: json.loads((folder / f"eval_{task}_{fw}.json").read_text()) for fw in specs.PRETRAINED[name].frameworks}
    return release, evals


def parameter_count(name, cards_dir) -> int:
    """Parameters in the released PyTorch file (buffers such as BatchNorm statistics not counted)."""
    from ..run_files import read_weights
    from .release import weights_path

    arrays, _ = read_weights(weights_path(specs.PRETRAINED[name], "torch", cards_dir))
    return int(sum(a.size for k, a in arrays.items() if not k.endswith(("running_mean", "running_var",
                                                                        "num_batches_tracked"))))


def card_data(name, cards_dir):
    """The front matter: huggingface_hub's ``ModelCardData`` with one ``EvalResult`` per metric."""
    from huggingface_hub import EvalResult, ModelCardData

    weights = specs.PRETRAINED[name]
    _, evals = _load(name, cards_dir)
    metrics = evals["torch"]["metrics"]
    if weights.task == "classify":
        task, dataset = "video-classification", ("motion-mnist", "Motion MNIST (digit x direction, 40 classes)")
        values = [("accuracy", "top-1", metrics["clip"]["top1"]), ("accuracy", "top-5", metrics["clip"]["top5"])]
    else:
        task, dataset = "video-to-video", ("moving-mnist", "Moving MNIST (2 digits, 10 -> 10 frames)")
        values = [("mse", "MSE per frame", metrics["mse"]), ("mae", "MAE per frame", metrics["mae"]),
                  ("ssim", "SSIM", metrics["ssim"]), ("psnr", "PSNR (dB)", metrics["psnr"])]
    results = [EvalResult(task_type=task, dataset_type=dataset[0], dataset_name=dataset[1], dataset_split="test",
                          metric_type=kind, metric_name=label, metric_value=round(float(value), 6))
               for kind, label, value in values]
    tags = ["convgru", "video", "timm" if weights.task == "classify" else "video-prediction",
            *(["gru-rcn"] if weights.arch in specs.RCN_MODELS else []),
            *(["mindspore"] if "mindspore" in weights.frameworks else []), "pytorch", task]
    return ModelCardData(
        model_name=name, license=weights.license, library_name="timm" if weights.task == "classify" else "pytorch",
        tags=tags, pipeline_tag=task, datasets=["mnist"], eval_results=results)


def _fmt(value, digits=4):
    return "-" if value is None or (isinstance(value, float) and np.isnan(value)) else f"{value:.{digits}f}"


def _loading(weights):
    """The card's code: self-contained blocks, frames made the model's input by its clip transform."""
    name, repo, hub = weights.name, specs.GITHUB_REPO, weights.hf_hub_id
    if weights.arch in specs.RCN_MODELS:
        return _rcn_loading(weights)
    if weights.task == "classify":
        return f"""```python
import numpy as np, timm, torch
import convgru_zoo                                  # registers the convgru_* models with timm and MindCV
from convgru_zoo.data import create_clip_transform

model = timm.create_model("{name}", pretrained=True).eval()
transform = create_clip_transform(model)           # frames -> the input the weights were trained on:
                                                   # {weights.input_size[0]} channels, {weights.input_size[1]}x{weights.input_size[2]}, normalised by model.pretrained_cfg's mean/std
frames = np.random.randint(0, 256, (10, 96, 128, 3), np.uint8)   # your clip: uint8 (T, H, W, C), PIL
                                                   # images or [0, 1] tensors; raw [0, 1] frames score near chance
with torch.no_grad():
    logits = model(transform(frames, return_tensors="pt"))       # (1, {weights.num_classes})
model = timm.create_model("hf-hub:{hub}", pretrained=True)   # straight from this repo
model = torch.hub.load("{repo}", "{weights.arch}", pretrained=True)
```

```python
import numpy as np, mindcv, mindspore              # MindSpore: the same architecture and weights
import convgru_zoo
from convgru_zoo.data import create_clip_transform
from huggingface_hub import hf_hub_download

net = mindcv.create_model("{weights.arch}", pretrained=True, num_classes={weights.num_classes})
net.set_train(False)
frames = np.random.randint(0, 256, (10, 64, 64, 3), np.uint8)
logits = net(create_clip_transform(net)(frames, return_tensors="ms"))   # (1, {weights.num_classes})
params = mindspore.load_checkpoint(hf_hub_download("{hub}", "{specs.WEIGHT_FILES['mindspore']}"))  # plain MindSpore
```"""
    return f"""```python
import numpy as np, torch
from convgru_zoo import create_forecaster
from convgru_zoo.data import create_clip_transform

model = create_forecaster("{weights.arch}", pretrained=True).eval()
transform = create_clip_transform(model)           # frames -> {weights.input_size[0]}-channel {weights.input_size[1]}x{weights.input_size[2]} frames in [0, 1] (not normalised)
frames = np.random.randint(0, 256, (10, 64, 64, 1), np.uint8)    # your clip: uint8 (T, H, W, C), PIL images
                                                   # or [0, 1] tensors
with torch.no_grad():
    future = model(transform(frames, return_tensors="pt"))       # (1, 10, 1, 64, 64): the next 10 frames
model = torch.hub.load("{repo}", "{weights.arch}", pretrained=True)
```

```python
import numpy as np, mindspore                      # MindSpore: the same architecture and weights
from convgru_zoo import create_forecaster
from convgru_zoo.data import create_clip_transform
from huggingface_hub import hf_hub_download

model = create_forecaster("{weights.arch}", framework="mindspore", pretrained=True)
model.set_train(False)
frames = np.random.randint(0, 256, (10, 64, 64, 1), np.uint8)
future = model(create_clip_transform(model)(frames, return_tensors="ms"))   # (1, 10, 1, 64, 64)
params = mindspore.load_checkpoint(hf_hub_download("{hub}", "{specs.WEIGHT_FILES['mindspore']}"))  # plain MindSpore
```"""


def _rcn_loading(weights):
    """A GRU-RCN tag's code: timm and torch.hub; MindSpore through ``convgru_zoo.create_model`` where MindCV has the
    image backbone (MindCV's own ``pretrained=True`` loads the backbone's ImageNet weights, not the tag)."""
    name, hub, side = weights.name, weights.hf_hub_id, weights.input_size[1]
    torch_block = f"""```python
import numpy as np, timm, torch
import convgru_zoo                                  # registers the convgru_rcn_* models with timm
from convgru_zoo.data import create_clip_transform

model = timm.create_model("{name}", pretrained=True).eval()
transform = create_clip_transform(model)           # frames -> the input the weights were trained on: {weights.input_size[0]} channels,
                                                   # {side}x{side}, normalised as the image backbone was (model.pretrained_cfg)
frames = np.random.randint(0, 256, (10, 96, 128, 3), np.uint8)   # your clip: uint8 (T, H, W, C), PIL
                                                   # images or [0, 1] tensors
with torch.no_grad():
    logits = model(transform(frames, return_tensors="pt"))       # (1, {weights.num_classes})
    states = model.init_states(1, {side}, {side})                       # or frame by frame, constant memory
    for frame in transform(frames, return_tensors="pt").unbind(1):
        step_logits, states = model.step(frame, states)
model = timm.create_model("hf-hub:{hub}", pretrained=True)   # straight from this repo
model = torch.hub.load("{specs.GITHUB_REPO}", "{weights.arch}", pretrained=True)
```"""
    if "mindspore" not in weights.frameworks:
        return torch_block
    return torch_block + f"""

```python
import numpy as np, mindspore                      # MindSpore: the same architecture and weights
from convgru_zoo import create_model
from convgru_zoo.data import create_clip_transform
from huggingface_hub import hf_hub_download

net = create_model("{weights.arch}", framework="mindspore", pretrained="{weights.tag}")
net.set_train(False)
frames = np.random.randint(0, 256, (10, 64, 64, 3), np.uint8)
logits = net(create_clip_transform(net, image_size={side})(frames, return_tensors="ms"))   # (1, {weights.num_classes})
params = mindspore.load_checkpoint(hf_hub_download("{hub}", "{specs.WEIGHT_FILES['mindspore']}"))  # plain MindSpore
```"""


def _metrics_section(weights, evals, cards_dir):
    m = evals["torch"]["metrics"]
    if weights.task == "classify":
        ceiling = m["single_frame_ceiling"]
        ms = [evals[fw]["metrics"]["clip"] for fw in evals if fw == "mindspore"]
        rows = [f"| {weights.name} (PyTorch) | {_fmt(m['clip']['top1'])} | {_fmt(m['clip']['top5'])} |",
                *(f"| {weights.name} (MindSpore, same file converted) | {_fmt(clip['top1'])} | {_fmt(clip['top5'])} |"
                  for clip in ms),
                f"| best any one frame allows (analytic: this model's digit accuracy {_fmt(ceiling['digit_top1'])} "
                f"/ 4 directions) | {_fmt(ceiling['top1'])} | {_fmt(ceiling['top5'])} |",
                f"| chance | {_fmt(1 / weights.num_classes)} | {_fmt(5 / weights.num_classes)} |"]
        per_direction = ", ".join(f"{d} {_fmt(m['per_direction_top1'][d])}" for d in DIRECTIONS)
        low, high = wilson_interval(m["clip"]["top1"], m["num_sequences"])
        return "\n".join(["| | top-1 | top-5 |", "|---|---|---|", *rows, "",
                          f"On {m['num_sequences']} clips, top-1 {_fmt(m['clip']['top1'])} has a 95% Wilson interval "
                          f"of {low:.3f}-{high:.3f}: differences within it between two tags may be the test "
                          "sample's, not the models'.", "",
                          f"Top-1 per direction of motion: {per_direction}.", "",
                          "![top-1 per digit and direction](eval_classify_torch_per_class.png)"])
    ms, base = evals["mindspore"]["metrics"], m["baseline_last_frame"]
    rows = [f"| {weights.name} (PyTorch) | {parameter_count(weights.name, cards_dir) / 1e6:.3f} | "
            f"{_fmt(m['mse'], 2)} | {_fmt(m['mae'], 2)} | {_fmt(m['ssim'])} | {_fmt(m['psnr'], 2)} |",
            f"| {weights.name} (MindSpore, same file converted) | | {_fmt(ms['mse'], 2)} | {_fmt(ms['mae'], 2)} | "
            f"{_fmt(ms['ssim'])} | {_fmt(ms['psnr'], 2)} |",
            f"| repeating the last input frame | 0 | {_fmt(base['mse'], 2)} | {_fmt(base['mae'], 2)} | "
            f"{_fmt(base['ssim'])} | {_fmt(base['psnr'], 2)} |"]
    header = ["| | params (M) | MSE / frame | MAE / frame | SSIM | PSNR (dB) |", "|---|---|---|---|---|---|"]
    reference = json.loads((Path(cards_dir) / REFERENCE).read_text())
    quoted = [f"| {r['name']} ({r['training']}) | {r['params_m']:.1f} | {_fmt(r['mse'], 2)} | "
              f"{_fmt(r.get('mae'), 2)} | {_fmt(r['ssim'])} | {_fmt(r.get('psnr'), 2)} |" for r in reference["models"]]
    per_step = m["per_frame"]
    steps = " | ".join(str(i + 1) for i in range(len(per_step["mse"])))
    return "\n".join([
        *header, *rows, "",
        "MSE and MAE are summed over a frame's pixels on the 0-1 scale and averaged over frames and clips "
        "(OpenSTL's convention); SSIM is the Gaussian-window SSIM; PSNR is capped for identical frames.", "",
        f"For scale only, quoted from [{reference['source']}]({reference['url']}), not measured here: on "
        f"{reference['source']}'s own Moving MNIST test set, with its training budget (in the row), so not "
        "comparable row for row with the fixed test set above.", "",
        *header, *quoted, "",
        f"| predicted frame | {steps} |", "|---|" + "---|" * len(per_step["mse"]),
        "| MSE | " + " | ".join(_fmt(v, 1) for v in per_step["mse"]) + " |",
        "| SSIM | " + " | ".join(_fmt(v, 3) for v in per_step["ssim"]) + " |", "",
        "![input, truth and forecast frames](eval_forecast_torch_frames.png)", "",
        "![metrics per predicted frame](eval_forecast_torch_per_step.png)"])


COST_CURVE = "cost_curve.json"  # in a forecaster's card folder: benchmarks/forecast_cost.py


def _recipe_named(settings: dict):
    """The ``specs.PRETRAINED`` name whose recipe is exactly ``settings`` (as a run records the ones in use), or None."""
    return next((name for name, w in specs.PRETRAINED.items() if settings_in_use(dict(w.recipe)) == settings), None)


def _cost_section(name, cards_dir) -> str:
    """The forecaster options tried, quality against training cost, from the card folder's ``cost_curve.json``:
    a row per option and the commands that train and score them again."""
    path = Path(cards_dir) / name / COST_CURVE
    if not path.is_file():
        return ""
    results = json.loads(path.read_text())
    options = [(run["label"], run["params_m"], run["points"][-1]["step"], run["points"][-1]) for run in results["runs"]]
    options += [(tag["label"], tag["params_m"], tag["steps"], tag) for tag in results["released"]]
    rows = [f"| {label} | {params:.3f} | {steps} | {_fmt(p['process_cpu_hours'], 2)} | {_fmt(p['cpu_hours'], 2)} | "
            f"{_fmt(p['mse'], 2)} | {_fmt(p['ssim'])} |" for label, params, steps, p in options]
    trains = [f"convgru-zoo train --recipe {recipe} --mnist MNIST_DIR --out {run['run']} --keep-checkpoints 0"
              if (recipe := _recipe_named(run["train"])) else
              f"# {run['run']}: settings in {COST_CURVE} (runs[].train), no published recipe" for run in results["runs"]]
    score = " ".join(["python benchmarks/forecast_cost.py score --mnist MNIST_DIR",
                      *(f"--run {run['run']}" for run in results["runs"]),
                      *(f"--tag {tag['tag']}" for tag in results["released"]),
                      f"--every {results['every']} --num-sequences {results['test_set']['num_sequences']}",
                      f"--json model_cards/{name}/{COST_CURVE}"])
    return "\n".join([
        "", "### Quality against training cost", "",
        "The options tried, each scored on the fixed test set above, a run at its last scored checkpoint; CPU-hours "
        "as the training process's CPU time and as this card counts them (wall-clock hours x threads):", "",
        "| option | params (M) | steps | CPU-hours (process) | CPU-hours (wall x threads) | MSE / frame | SSIM |",
        "|---|---|---|---|---|---|---|", *rows, "",
        f"![MSE against CPU-hours]({Path(COST_CURVE).with_suffix('.png').name})", "",
        f"To train each run again (every checkpoint kept) and score its checkpoints at multiples of "
        f"{results['every']} steps (these scores: {machine.summary_line(results['machine'])}):", "",
        "```bash", *trains, score, "```", ""])


DIGIT_GAP = "digit_gap.json"  # in a classifier's card folder: benchmarks/digit_gap.py


def _release_label(row, current_sha256) -> str:
    if row["sha256"] == current_sha256:
        return "this release"
    return f"release at `{row['revision']}`" if row["revision"] else f"weights sha256 `{row['sha256'][:12]}`"


def _digit_gap_section(name, release, cards_dir) -> str:
    """Top-1 on clips of the training, validation and test digit images, this release's and earlier ones', from
    the card folder's ``digit_gap.json``: how much of the accuracy is memorised digit images."""
    path = Path(cards_dir) / name / DIGIT_GAP
    if not path.is_file():
        return ""
    results = json.loads(path.read_text())
    images = results["digit_images"]
    test_top1 = results["releases"][-1]["top1"]["test"]
    low, high = wilson_interval(test_top1, results["num_sequences"])
    half_width = (high - low) / 2
    before = "".join(f" --before {row['revision']}" for row in results["releases"] if row["revision"])
    rows = [f"| {_release_label(row, release['files']['torch']['sha256'])} | {row['steps']} | "
            f"{'yes' if row['augment'] else 'no'} | {_fmt(row['top1']['train'])} | {_fmt(row['top1']['val'])} | "
            f"{_fmt(row['top1']['test'])} | {row['gap'] * 100:+.1f} |" for row in results["releases"]]
    return "\n".join([
        "", "", "### Digits learnt, or digit images memorised", "",
        f"Top-1 on {results['num_sequences']} new clips (seed {results['seed']}) of each split's digit images: "
        f"the {images['train']} images training saw, and the {images['val']} validation and {images['test']} test "
        f"images it never saw (`python benchmarks/digit_gap.py --mnist MNIST_DIR --tag {name}{before} --seed "
        f"{results['seed']} --num-sequences {results['num_sequences']} "
        f"--json model_cards/{name}/{DIGIT_GAP}`). Training minus test is the part of the accuracy owed to "
        "having seen the images, which digit augmentation (a random affine and stroke width per clip) is meant "
        f"to remove; on {results['num_sequences']} clips a top-1 near {_fmt(test_top1)} is known to about "
        f"+-{half_width * 100:.1f} pts (95% Wilson interval).", "",
        "| weights | steps | digit augmentation | top-1, training digits | validation digits | test digits | "
        "training - test (pts) |", "|---|---|---|---|---|---|---|", *rows])


def _architecture(weights) -> str:
    """What the model is, from its spec."""
    if weights.arch in specs.RCN_MODELS:
        spec = specs.RCN_MODELS[weights.arch]
        return (f"a GRU-RCN video classifier (Ballas et al. 2015): {spec.summary()}; the image backbone runs once per "
                "frame and the ConvGRUs carry its maps through time")
    if weights.task == "classify":
        spec = specs.BACKBONES[weights.arch]
        strides = [str(spec.stem_stride * 2 ** i) for i in range(len(spec.dims))]
        return (f"a video classification backbone: ConvGRUs carry a state through time at strides "
                f"{', '.join(strides[:-1])} and {strides[-1]} and the classifier reads the final state (the stacked "
                "GRU-RCN of Ballas et al. 2015)")
    return ("a video forecaster: a stacked ConvGRU reads 10 frames (folded space-to-depth) and forecasts the "
            "next 10 closed loop, each prediction fed back as the next input")


_PRECISIONS = {"none": "float32", "bf16": "bf16 autocast", "fp16": "fp16 autocast"}


def _precision(amp) -> str:
    """How the run computed: one precision, or each resumed segment's where they differ (``--amp auto`` on
    machines with and without native bf16)."""
    if isinstance(amp, list):
        segments = {}
        for number, each in enumerate(amp, 1):
            segments.setdefault(each, []).append(number)
        return " in " + " and ".join(f"{_PRECISIONS.get(each, each)} (segment{'s' * (len(numbers) > 1)} "
                                     f"{', '.join(map(str, numbers))})" for each, numbers in segments.items())
    if amp not in _PRECISIONS:
        return ""
    return f" in {_PRECISIONS[amp]}" if amp == "none" else f" with {_PRECISIONS[amp]}"


def render(name, cards_dir) -> str:
    """The card of ``name`` as text (front matter + body), from its committed results only."""
    from huggingface_hub import ModelCard

    weights = specs.PRETRAINED[name]
    release, evals = _load(name, cards_dir)
    trained, recipe = release["trained"], release["recipe"]
    process = (f"; the training process's CPU time: {trained['process_cpu_hours']:.2f} hours"
               if trained.get("process_cpu_hours") is not None else "")
    hours = (f"{trained['cpu_hours']:.2f} CPU-hours ({trained['cpu_hours_from']}{process})"
             if trained.get("cpu_hours") is not None else f"{trained['wall_hours']:.2f} GPU-hours")
    runs = "in one run" if trained["segments"] == 1 else f"in {trained['segments']} runs joined by `--resume`"
    precision = _precision(trained.get("amp"))
    what = _architecture(weights)
    limits = ("It was trained on synthetic clips of one grey MNIST digit moving in one of four diagonal "
              "directions; it is a starting point for fine-tuning on real videos (`convgru-zoo train --data`), "
              "not a general video classifier."
              if weights.task == "classify" else
              "It was trained on synthetic Moving MNIST clips of two bouncing digits at 64x64; forecasts blur "
              "as the horizon grows, and it knows nothing of real-world motion.")
    recipe_rows = "\n".join(f"| {k} | {v!r} |" for k, v in sorted(settings_in_use(recipe).items()))
    files = "\n".join(f"| {fw} | `{specs.WEIGHT_FILES[fw]}` | `{f['sha256']}` |" for fw, f in release["files"].items())
    frameworks = ("PyTorch (timm) and MindSpore (MindCV)" if weights.task == "classify" else
                  "PyTorch and MindSpore (`convgru_zoo.create_forecaster`, `framework=\"torch\"` or `\"mindspore\"`)")
    same = (f"Architecture and weights are the same in {frameworks}:\nthe MindSpore checkpoint is converted from the "
            "PyTorch file by `convgru_zoo.convert` and scores the same\non the test set (table below)."
            if "mindspore" in weights.frameworks else
            f"PyTorch (timm) only: MindCV has no {specs.RCN_MODELS[weights.arch].backbone}.")
    body = f"""
# {name}

{weights.description}. This is {what}. {same}

{limits}

## How to use

```bash
pip install "convgru-zoo[torch] @ git+https://github.com/{specs.GITHUB_REPO}"   # or [mindspore,hub], or [all]
```

{_loading(weights)}

## Results

On the fixed test set: the first {release['test_set']['num_sequences']} clips of the generated `test`
split (seed {release['test_set']['seed']}; regenerated bit-exactly, sha256 of the clips
`{release['test_set']['sha256']}`).

{_metrics_section(weights, evals, cards_dir)}{_digit_gap_section(name, release, cards_dir)}

## Training

```bash
convgru-zoo train --recipe {name} --mnist MNIST_DIR --out RUN_DIR      # add --resume to continue
convgru-zoo release {name} --run RUN_DIR --mnist MNIST_DIR
```

{trained['steps']} steps {runs}{precision}, {hours} on {machine.summary_line({**trained['machine'], 'threads': trained['threads']})}.

![training curves](training_curves.png)

| setting | value |
|---|---|
{recipe_rows}
{_cost_section(name, cards_dir)}
## Files

| framework | file | sha256 |
|---|---|---|
{files}

## Data

{DATA_CAVEAT}

## Citation

```bibtex
{CITATION}
```
"""
    return ModelCard(f"---\n{card_data(name, cards_dir).to_yaml()}\n---\n{body}").content


def write_cards(cards_dir, names=None, check=False):
    """Write (or with ``check`` compare) the cards; return the names whose committed card differs."""
    from .._files import atomic_write_bytes

    stale = []
    for name in names or released_names(cards_dir):
        path = result_dir(name, cards_dir) / "README.md"
        text = render(name, cards_dir)
        if not path.is_file() or path.read_text() != text:
            stale.append(name)
            if not check:
                atomic_write_bytes(path, text.encode())
    return stale


# ---------------------------------------------------------------- README tables
BACKBONE_FIGURES = Path("benchmarks") / "results" / "backbone_figures.json"  # in the repository
SERVING = Path("benchmarks") / "results" / "online_convgru_small.json"  # in the repository
RCN_SPEED = Path("benchmarks") / "results" / "rcn_resnet18.json"  # in the repository: benchmarks/bench_rcn.py
RCN_TRANSFER = Path("benchmarks") / "results" / "rcn_transfer.json"  # in the repository: benchmarks/rcn_transfer.py


def _backbone_figures_table(cards_dir):
    rows = json.loads((Path(cards_dir).parent / BACKBONE_FIGURES).read_text())["rows"]
    clip = "x".join(map(str, rows[0]["clip"]))
    return "\n".join([f"| model | params (M) | GFLOPs ({clip} clip) |", "|---|---|---|",
                      *(f"| {r['model']} | {r['params_m']:.3f} | {r['gflops']:.3f} |" for r in rows), "",
                      "(`python benchmarks/backbone_figures.py --json benchmarks/results/backbone_figures.json`)"])


def _pretrained_table(cards_dir):
    names = released_names(cards_dir)
    if not names:
        return "No weights are released yet: every `pretrained=True` says so, naming the tag."
    lines = ["| weights | task | test result | baseline | trained |", "|---|---|---|---|---|"]
    for name in names:
        record, evals = _load(name, cards_dir)
        m, hours = evals["torch"]["metrics"], record["trained"]
        if record["task"] == "classify":
            low, high = wilson_interval(m["clip"]["top1"], m["num_sequences"])
            result = (f"top-1 {_fmt(m['clip']['top1'])} (95% interval {low:.3f}-{high:.3f}), "
                      f"top-5 {_fmt(m['clip']['top5'])}")
            baseline = f"one frame at best: top-1 {_fmt(m['single_frame_ceiling']['top1'])}"
        else:
            base = m["baseline_last_frame"]
            result = f"MSE {_fmt(m['mse'], 1)}, SSIM {_fmt(m['ssim'], 3)}"
            baseline = f"last frame repeated: MSE {_fmt(base['mse'], 1)}, SSIM {_fmt(base['ssim'], 3)}"
        cost = (f"{hours['cpu_hours']:.1f} CPU-h" if hours.get("cpu_hours") is not None
                else f"{hours['wall_hours']:.1f} GPU-h")
        lines.append(f"| [{name}](model_cards/{name}/README.md) | {record['task']} | {result} | {baseline} | "
                     f"{hours['steps']} steps, {cost} |")
    return "\n".join(lines)


def _serving_table(cards_dir):
    run = json.loads((Path(cards_dir).parent / SERVING).read_text())
    frame, clip = run["per_frame"], run["per_clip"]
    frames, (batch, steps, *_, side) = run["frames_per_call"], run["clip_shape"]
    eager_frame, eager_clip = frame["torch eager"]["median"], clip["torch eager"]["median"]
    lines = [f"| runtime | ms a frame (batch 1, {side}x{side}) | vs PyTorch eager | clips/s (batch {batch}, T={steps}) "
             "| vs PyTorch eager |", "|---|---|---|---|---|"]
    for runtime in sorted(frame, key=lambda name: name != "torch eager"):
        lines.append(f"| {runtime} | {frame[runtime]['median'] / frames * 1e3:.1f} | "
                     f"{frame[runtime]['median'] / eager_frame:.2f}x the time | {batch / clip[runtime]['median']:.1f} | "
                     f"{clip[runtime]['median'] / eager_clip:.2f}x the time |")
    return "\n".join([*lines, "", f"{run['model']} on {machine.summary_line(run['machine'])}, load average "
                       f"{run['load_average']:.1f} at the start (medians of interleaved rounds; "
                       f"`python benchmarks/bench_online.py --threads 1 --json benchmarks/results/{SERVING.name}`)"])


def _rcn_speed_table(cards_dir):
    run = json.loads((Path(cards_dir).parent / RCN_SPEED).read_text())
    names = {"eager": "PyTorch eager (`model.step`, checks included)",
             "onnxruntime": "onnxruntime (exported step graph vs exported image model)"}
    size, clip = run["size"], run["per_clip"]
    lines = [f"| per frame, batch 1, {size}x{size} | GRU-RCN step | {run['image_model']} forward | ratio (goal <= "
             f"{run['goal']}x) |", "|---|---|---|---|",
             *(f"| {names.get(runtime, runtime)} | {row['rcn_ms']:.1f} ms | {row['image_ms']:.1f} ms | {row['ratio']:.2f}x |"
               for runtime, row in run["per_frame"].items())]
    batch, steps = clip["shape"][:2]
    return "\n".join([*lines, "", f"Clips (batch {batch}, T={steps}, eager): `model(clip)` {clip['rcn_fps']:.1f} frames/s, "
                       f"{run['image_model']} alone over the same frames {clip['image_fps']:.1f} frames/s "
                       f"({clip['ratio']:.2f}x the time). {run['model']} (levels {', '.join(map(str, run['out_indices']))}, "
                       f"width {run['width']}) on {machine.summary_line(run['machine'])}, load average "
                       f"{run['load_average']:.1f} at the start, timed in process {run['clock'].upper()} time (medians of "
                       f"interleaved rounds; `OMP_NUM_THREADS=1 python benchmarks/bench_rcn.py --threads 1 --json "
                       f"benchmarks/results/{RCN_SPEED.name}`)"])


def _rcn_transfer_table(cards_dir):
    path = Path(cards_dir).parent / RCN_TRANSFER
    if not path.is_file():
        return ("Not measured yet: the commands (about 2.2 CPU-hours) are in docs/gru-rcn.md, \"Transfer\"; "
                f"`python benchmarks/rcn_transfer.py score ... --json {RCN_TRANSFER}` writes the results this table "
                "and the plot are made of.")
    run = json.loads(path.read_text())
    frames, equal = run["frames"], run["at_equal_cpu"]
    rows = []
    for key, what in (("rcn", f"frozen {frames['model']} trained on single frames ({frames['steps']} steps, "
                                f"{frames['cpu_hours']:.2f} CPU-h, digit top-1 {_fmt(frames['val_digit_top1'])} on "
                                "validation frames), ConvGRUs trained on clips"),
                      ("scratch", "from scratch")):
        last = run[key]["points"][-1]
        rows.append(f"| {run[key]['model']} | {what} | {_fmt(equal[key + '_top1'])} | {_fmt(last['top1'])} at "
                    f"{last['cpu_hours']:.2f} CPU-h |")
    test = run["test_set"]
    return "\n".join([f"| model | training | top-1 at {equal['cpu_hours']:.2f} CPU-h | top-1 at the end |",
                      "|---|---|---|---|", *rows, "",
                      f"Top-1 on the fixed test set ({test['num_sequences']} clips of the `{test['split']}` split, seed "
                      f"{test['seed']}) against the training process's CPU-hours, the GRU-RCN's counting its frame "
                      f"training; {machine.summary_line(run['machine'])}.", "",
                      f"![top-1 against CPU-hours]({RCN_TRANSFER.with_suffix('.png').as_posix()})"])


README_TABLES = {"backbone-figures": _backbone_figures_table, "pretrained": _pretrained_table,
                 "serving": _serving_table, "rcn-speed": _rcn_speed_table, "rcn-transfer": _rcn_transfer_table}


def render_readme(text, cards_dir):
    """``text`` with every generated block (between its BEGIN/END markers) rendered from the results."""
    for key, table in README_TABLES.items():
        begin, end = f"<!-- BEGIN generated:{key} (convgru-zoo cards) -->", f"<!-- END generated:{key} -->"
        if text.count(begin) != 1 or text.count(end) != 1:
            raise ValueError(f"README must hold one {begin} ... {end} block")
        head, rest = text.split(begin)
        text = f"{head}{begin}\n{table(cards_dir)}\n{end}{rest.split(end, 1)[1]}"
    return text


def write_readme(path, cards_dir, check=False):
    """Regenerate the README's tables (or with ``check`` only compare); True when the file differs."""
    from .._files import atomic_write_bytes

    text = Path(path).read_text()
    fresh = render_readme(text, cards_dir)
    if fresh != text and not check:
        atomic_write_bytes(path, fresh.encode())
    return fresh != text
