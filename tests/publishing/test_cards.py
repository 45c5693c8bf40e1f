"""Model cards: generated from committed results only, parsed offline with huggingface_hub's own classes,
their metrics those of the evaluation JSON, and a committed card that differs from its results fails."""
import json
import re

import pytest

pytest.importorskip("huggingface_hub")
from huggingface_hub import ModelCard  # noqa: E402

from convgru_zoo.publishing import cards, release  # noqa: E402
from convgru_zoo import machine, specs  # noqa: E402
from convgru_zoo.evaluation.metrics import wilson_interval  # noqa: E402
from conftest import RELEASED_NAME  # noqa: E402
from helpers import CARDS_DIR, REPO  # noqa: E402


def test_committed_cards_are_what_their_results_give():
    stale = cards.write_cards(CARDS_DIR, check=True)
    assert stale == [], f"regenerate with `convgru-zoo cards`: {stale}"
    for name in cards.released_names(CARDS_DIR):
        assert (CARDS_DIR / name / "README.md").is_file()


@pytest.fixture
def card(published):
    tmp = published[0]
    cards.write_cards(cards_dir=tmp / "cards")
    path = tmp / "cards" / RELEASED_NAME / "README.md"
    assert cards.write_cards(cards_dir=tmp / "cards", check=True) == []  # rendering is deterministic
    return path, ModelCard.load(path)


def test_card_front_matter_parses_with_huggingface_hub(card):
    _, parsed = card
    data = parsed.data
    assert data.license == "mit" and data.library_name == "pytorch" and data.pipeline_tag == "video-to-video"
    assert {"convgru", "mindspore", "video-to-video"} <= set(data.tags)
    assert data.datasets == ["mnist"]


def test_card_metrics_are_the_evaluation_json(card, published):
    path, parsed = card
    evaluation = json.loads((path.parent / "eval_forecast_torch.json").read_text())["metrics"]
    results = {r.metric_type: r for r in parsed.data.eval_results}
    assert sorted(results) == ["mae", "mse", "psnr", "ssim"]
    for metric, result in results.items():
        assert result.metric_value == pytest.approx(evaluation[metric], abs=1e-6)
        assert (result.task_type, result.dataset_type, result.dataset_split) == ("video-to-video", "moving-mnist", "test")


def test_card_body_has_command_hours_files_pictures_caveat_and_citation(card, published):
    path, parsed = card
    record = json.loads((path.parent / "release.json").read_text())
    text = parsed.text
    assert f"convgru-zoo train --recipe {RELEASED_NAME}" in text
    assert (f"{record['trained']['cpu_hours']:.2f} CPU-hours ({release.CPU_HOURS_FROM}; the training process's CPU "
            f"time: {record['trained']['process_cpu_hours']:.2f} hours)") in text
    assert record["trained"]["amp"] == "none" and re.search(r" (in one run|in \d+ runs joined by `--resume`) in "
                                                            r"float32, ", text)
    for file in record["files"].values():
        assert file["sha256"] in text
    for picture in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text):
        assert (path.parent / picture).is_file(), picture
    assert "ConvLSTM-S" in text and "repeating the last input frame" in text
    assert cards.DATA_CAVEAT in text and "arXiv:1511.06432" in text


def test_a_hand_edited_card_is_reported_stale(card, published):
    path, _ = card
    tmp = published[0]
    path.write_text(path.read_text().replace("MSE", "MSE (edited)", 1))
    assert cards.write_cards(cards_dir=tmp / "cards", check=True) == [RELEASED_NAME]
    assert cards.write_cards(cards_dir=tmp / "cards") == [RELEASED_NAME]  # rewritten
    assert cards.write_cards(cards_dir=tmp / "cards", check=True) == []


def test_every_published_tag_has_a_card_once_released():
    names = set(cards.released_names(CARDS_DIR))
    assert names <= set(specs.PRETRAINED)
    assert all((CARDS_DIR / n / "release.json").is_file() for n in names)


def test_readme_tables_are_generated_from_the_committed_results():
    assert cards.write_readme(REPO / "README.md", CARDS_DIR, check=True) is False, "regenerate with `convgru-zoo cards`"
    figures = json.loads((REPO / cards.BACKBONE_FIGURES).read_text())["rows"]
    text = (REPO / "README.md").read_text()
    assert all(f"| {row['model']} | {row['params_m']:.3f} | {row['gflops']:.3f} |" in text for row in figures)
    serving = json.loads((REPO / cards.SERVING).read_text())
    for runtime, timing in serving["per_frame"].items():  # every runtime, its time a frame from the JSON
        assert f"| {runtime} | {timing['median'] / serving['frames_per_call'] * 1e3:.1f} |" in text, runtime


def test_readme_lists_a_release_with_its_results(card, published):
    root = published[0]
    evaluation = json.loads((root / "cards" / RELEASED_NAME / "eval_forecast_torch.json").read_text())["metrics"]
    text = cards.render_readme((REPO / "README.md").read_text(), cards_dir=root / "cards")
    assert f"[{RELEASED_NAME}](model_cards/{RELEASED_NAME}/README.md)" in text
    assert f"MSE {evaluation['mse']:.1f}, SSIM {evaluation['ssim']:.3f}" in text


@pytest.mark.parametrize("name", cards.released_names(CARDS_DIR))
def test_each_committed_card_parses_and_states_its_evaluation(name):
    folder = CARDS_DIR / name
    parsed = ModelCard.load(folder / "README.md")
    weights = specs.PRETRAINED[name]
    evaluation = json.loads((folder / f"eval_{weights.task}_torch.json").read_text())["metrics"]
    expected = ({"top-1": evaluation["clip"]["top1"], "top-5": evaluation["clip"]["top5"]} if weights.task == "classify"
                else {"MSE per frame": evaluation["mse"], "SSIM": evaluation["ssim"]})
    stated = {r.metric_name: r.metric_value for r in parsed.data.eval_results}
    for metric, value in expected.items():
        assert stated[metric] == pytest.approx(value, abs=1e-6), metric
    assert parsed.data.license == weights.license and weights.hf_hub_id.split("/")[1] in parsed.text
    if weights.task == "classify":  # the top-1's sampling error on the test clips, stated with it
        low, high = wilson_interval(evaluation["clip"]["top1"], evaluation["num_sequences"])
        assert f"a 95% Wilson interval of {low:.3f}-{high:.3f}" in parsed.text


@pytest.mark.parametrize("name", cards.released_names(CARDS_DIR))
def test_committed_cards_count_cpu_hours_one_way_and_state_only_what_applies(name):
    """CPU-hours derived alike for every tag from its committed log; no forecaster called a timm/MindCV model;
    no loss printed for a classifier (it trains with cross-entropy), no image-backbone setting for a model without
    one; figures quoted from elsewhere kept out of
    the fixed test set's table."""
    folder, weights = CARDS_DIR / name, specs.PRETRAINED[name]
    trained = json.loads((folder / "release.json").read_text())["trained"]
    spent = release.training_time((folder / "metrics.jsonl").read_text().splitlines())
    threads = trained["threads"] if isinstance(trained["threads"], list) else [trained["threads"]] * spent["segments"]
    assert trained["cpu_hours_from"] == release.CPU_HOURS_FROM
    assert trained["cpu_hours"] == pytest.approx(sum(h * n for h, n in zip(spent["segment_hours"], threads)))
    text = (folder / "README.md").read_text()
    process = trained.get("process_cpu_hours")
    assert f"{trained['cpu_hours']:.2f} CPU-hours ({release.CPU_HOURS_FROM}" + (
        f"; the training process's CPU time: {process:.2f} hours)" if process is not None else ")") in text
    recipe = text.split("| setting | value |")[1].split("## Files")[0].split("### Quality against training cost")[0]
    settings = re.findall(r"^\| (\w+) \| .* \|$", recipe, re.M)
    assert ("loss" in settings) == (weights.task == "forecast") and "momentum" not in settings  # adamw recipes
    assert ("backbone_lr_scale" in settings) == (weights.arch in specs.RCN_MODELS)  # an image backbone's setting
    if weights.task == "forecast":
        assert "timm" not in text and "MindCV" not in text
        fixed_table = text.split("On the fixed test set")[1].split("\n\n")[1]
        assert "repeating the last input frame" in fixed_table and "OpenSTL" not in fixed_table
        assert re.search(r"quoted from \[OpenSTL\]\([^)]+\), not measured here: on OpenSTL's own Moving MNIST test "
                         r"set, with its training budget .*\n\n\| .*\n\|---.*\n\| ConvLSTM-S \(200 epochs\)", text)


def test_the_machine_line_names_the_threads_of_each_resumed_segment():
    info = {"cpu": "AMD EPYC", "isa": "avx2", "native_bf16": False, "cores": 2}
    assert machine.summary_line({**info, "threads": 1}) == "AMD EPYC (AVX2, no native bf16), 2 cores, 1 thread"
    assert machine.summary_line({**info, "threads": [1, 2, 1]}).endswith(
        ", 2 cores, 1, 2, 1 threads in its successive segments")


def test_the_training_line_names_the_precision_of_each_resumed_segment():
    assert cards._precision("bf16") == " with bf16 autocast" and cards._precision("none") == " in float32"
    # --amp auto resumed on a machine without native bf16
    assert cards._precision(["bf16", "bf16", "none"]) == " in bf16 autocast (segments 1, 2) and float32 (segment 3)"
