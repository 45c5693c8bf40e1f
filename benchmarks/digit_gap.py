"""Does a video classifier know digits, or the digit images it trained on? (issue 18) Top-1 of a tag's release,
and of earlier releases of it, on clips of the training, validation and test digit images.

Motion MNIST's clips are made of disjoint train / val / test digit images (80 / 10 / 10 % of MNIST's test
digits). The same weights scored on clips of the images they trained on and on clips of images they never saw
show how much of their accuracy is memorised images: the gap that digit augmentation (``--augment``) is meant
to close. Every split's clips here are new paths (``--seed``, 1 by default), so no clip is one of the training
stream (seed 0) and the test column differs from the card's fixed test set (seed 0) by sampling alone; other
seeds show how much a top-1 on so many clips moves with the sample.

    python benchmarks/digit_gap.py --mnist DIR --tag convgru_small.mmnist_motion --before 61f8c97 \\
        --json model_cards/convgru_small.mmnist_motion/digit_gap.json

``--before REV`` (repeatable) adds the tag's release as committed at that git revision: its ``release.json``
and PyTorch file, checked by the sha256 the release recorded. The card of the tag shows the JSON in its folder
as a table (``convgru-zoo cards``), the release whose file is the current one marked as this release.
"""
import argparse
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from convgru_zoo import specs  # noqa: E402
from convgru_zoo._files import atomic_write_json  # noqa: E402
from convgru_zoo.data.datasets import CONTEXT_FRAMES, DATASETS  # noqa: E402
from convgru_zoo.data.moving_mnist import SPLITS, MotionMNIST  # noqa: E402
from convgru_zoo.evaluation import evaluate  # noqa: E402
from convgru_zoo.publishing import cards, release as releasing  # noqa: E402
from _runs import items_sha256  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
DATASET = "motion_mnist"  # what the classifier tags train on
SEED = 1  # the clips' paths by default: not the training stream's (seed 0)


def released_weights(tag: str, cards_dir: Path, revision=None) -> dict:
    """The PyTorch weights of ``tag``'s release in ``cards_dir`` (the working tree) or, given ``revision``, as
    committed at that git revision of the repository holding ``cards_dir``: ``{"state", "sha256", "steps",
    "augment", "revision"}``, the file checked against the sha256 its ``release.json`` records."""
    from safetensors.numpy import load

    repo = releasing.repository(cards_dir)
    record_path = releasing.result_dir(tag, cards_dir) / "release.json"

    def read(path: Path) -> bytes:
        if revision is None:
            return path.read_bytes()
        relative = path.resolve().relative_to(repo.resolve()).as_posix()
        shown = subprocess.run(["git", "-C", str(repo), "show", f"{revision}:{relative}"], capture_output=True)
        if shown.returncode:
            raise SystemExit(f"--before {revision}: no {relative} at that revision of {repo} "
                             f"({shown.stderr.decode().strip()})")
        return shown.stdout

    if revision is None and not record_path.is_file():
        raise SystemExit(f"--tag must name a released classifier with a release.json in {cards_dir}, got {tag!r}")
    record = json.loads(read(record_path))
    data = read(repo / record["files"]["torch"]["path"])
    digest = hashlib.sha256(data).hexdigest()
    if digest != record["files"]["torch"]["sha256"]:
        where = f"at {revision}" if revision else "in the working tree"
        raise SystemExit(f"{tag}'s PyTorch file {where} has sha256 {digest}, its release.json records "
                         f"{record['files']['torch']['sha256']}")
    return {"state": load(data), "sha256": digest, "steps": record["trained"]["steps"],
            "augment": record["recipe"].get("augment", False), "revision": revision}


def score_weights(model: str, weights: dict, clips: dict, batch_size: int) -> dict:
    """Clip top-1 of ``weights`` on each split's clips."""
    predict = evaluate.TorchPredictor(model, weights["state"], device="cpu",
                                      num_classes=DATASETS[DATASET].num_classes)
    return {split: evaluate.evaluate_classify(predict, dataset, batch_size, DATASETS[DATASET].grid,
                                              progress=False)["clip"]["top1"] for split, dataset in clips.items()}


def score(args) -> dict:
    weights = specs.PRETRAINED.get(args.tag)
    if weights is None or weights.task != "classify":
        raise SystemExit(f"--tag must be a classifier tag of {sorted(specs.BACKBONE_WEIGHTS)}, got {args.tag!r}")
    cards_dir = Path(args.cards)
    releases = [*(released_weights(args.tag, cards_dir, rev) for rev in args.before),
                released_weights(args.tag, cards_dir)]  # every file read and checked before any scoring
    clips = {split: MotionMNIST(args.mnist, split, args.num_sequences, seq_len=CONTEXT_FRAMES,
                                channels=specs.INPUT_SIZE[0], seed=args.seed) for split in SPLITS}
    digests = {split: items_sha256(dataset, args.batch_size) for split, dataset in clips.items()}
    rows = []
    for found in releases:
        top1 = score_weights(weights.arch, found, clips, args.batch_size)
        rows.append({"revision": found["revision"], "sha256": found["sha256"], "steps": found["steps"],
                     "augment": found["augment"], "top1": top1, "gap": top1["train"] - top1["test"]})
        print(f"{args.tag} at {found['revision'] or 'the working tree'}: " +
              ", ".join(f"{split} digits {value:.4f}" for split, value in top1.items()) + f", gap {rows[-1]['gap']:+.4f}")
    results = {"tag": args.tag, "dataset": DATASET, "seed": args.seed, "num_sequences": args.num_sequences,
               "digit_images": {split: len(clips[split].digits) for split in SPLITS}, "clips_sha256": digests,
               "releases": rows}
    atomic_write_json(args.json, results)
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mnist", required=True, help="folder of MNIST idx files (the clips are made of them)")
    parser.add_argument("--tag", required=True, help="a released classifier, e.g. convgru_small.mmnist_motion")
    parser.add_argument("--before", action="append", default=[], metavar="REV",
                        help="a git revision holding an earlier release of the tag (repeat for several)")
    parser.add_argument("--cards", default=str(REPO / "model_cards"), help="the released tags' folders")
    parser.add_argument("--num-sequences", type=int, default=releasing.TEST_SEQUENCES, help="clips per split")
    parser.add_argument("--seed", type=int, default=SEED,
                        help="the clips' paths (0: the training stream's and the fixed test set's)")
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--json", required=True,
                        help=f"results file (the tag's card reads model_cards/<tag>/{cards.DIGIT_GAP})")
    args = parser.parse_args(argv)
    for flag, value, least in (("--num-sequences", args.num_sequences, 1), ("--batch-size", args.batch_size, 1),
                               ("--seed", args.seed, 0)):
        if value < least:
            parser.error(f"{flag} must be >= {least}, got {value}")
    if not Path(args.mnist).is_dir():
        parser.error(f"--mnist must be a folder of MNIST idx files, got {args.mnist!r}")
    score(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
