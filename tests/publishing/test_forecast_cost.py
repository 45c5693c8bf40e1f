"""benchmarks/forecast_cost.py: a forecaster's quality against its training cost, the curve its card shows.

What a user of the card relies on: a run's last point is the run itself (the MSE its release scored, the
CPU-hours its card counts), a released tag joins only when scored on the same clips, and the card's cost table
and plot come from the JSON in its folder, which publishing uploads."""
import json
import os
import shutil
import subprocess
import sys

import pytest

pytest.importorskip("torch")
pytest.importorskip("huggingface_hub")

from convgru_zoo.publishing import cards, publish  # noqa: E402
from conftest import RELEASED_NAME  # noqa: E402
from helpers import MNIST, REPO  # noqa: E402

SCRIPT = REPO / "benchmarks" / "forecast_cost.py"


def _score(*args):
    return subprocess.run([sys.executable, str(SCRIPT), "score", "--mnist", str(MNIST), *map(str, args)],
                          capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})


def test_a_runs_last_point_is_its_release_and_the_card_shows_the_curve(published, tmp_path):
    root, run, record, _ = published
    results = tmp_path / "cost_curve.json"
    done = _score("--run", run, "--tag", RELEASED_NAME, "--cards", root / "cards", "--every", 1,
                  "--num-sequences", record["test_set"]["num_sequences"], "--json", results)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(results.read_text())
    assert results.with_suffix(".png").is_file()
    (scored,), (tag,) = report["runs"], report["released"]
    assert [p["step"] for p in scored["points"]] == [1, 2] and scored["steps"] == 2
    assert report["test_set"]["sha256"] == record["test_set"]["sha256"]
    evaluation = json.loads((root / "cards" / RELEASED_NAME / "eval_forecast_torch.json").read_text())["metrics"]
    last = scored["points"][-1]  # the final checkpoint holds the released weights: the release's scores and cost
    assert last["mse"] == pytest.approx(evaluation["mse"], rel=1e-6)
    assert last["ssim"] == pytest.approx(evaluation["ssim"], rel=1e-6)
    assert last["cpu_hours"] == pytest.approx(record["trained"]["cpu_hours"], rel=1e-9)
    assert last["process_cpu_hours"] == pytest.approx(record["trained"]["process_cpu_hours"], rel=1e-9)
    assert scored["points"][0]["process_cpu_hours"] < last["process_cpu_hours"]
    assert (tag["mse"], tag["cpu_hours"], tag["steps"]) == (evaluation["mse"], record["trained"]["cpu_hours"], 2)

    card_json = root / "cards" / RELEASED_NAME / cards.COST_CURVE
    try:
        shutil.copyfile(results, card_json)
        shutil.copyfile(results.with_suffix(".png"), card_json.with_suffix(".png"))
        text = cards.render(RELEASED_NAME, root / "cards")
        assert "### Quality against training cost" in text and f"]({card_json.with_suffix('.png').name})" in text
        assert f"| {scored['label']} | " in text and f"| {tag['label']} | " in text
        assert f"| {last['mse']:.2f} | {last['ssim']:.4f} |" in text
        # the commands that train the run again (by its recipe) and score it as the table was scored
        assert f"convgru-zoo train --recipe {RELEASED_NAME} --mnist MNIST_DIR --out {run.name} --keep-checkpoints 0" in text
        assert (f"python benchmarks/forecast_cost.py score --mnist MNIST_DIR --run {run.name} --tag {RELEASED_NAME} "
                f"--every 1 --num-sequences {record['test_set']['num_sequences']} --json model_cards/{RELEASED_NAME}/"
                f"{cards.COST_CURVE}") in text
        (root / "cards" / RELEASED_NAME / "README.md").write_text(text)
        changed = {**report, "runs": [{**scored, "train": {**scored["train"], "lr": 2 * scored["train"]["lr"]}}]}
        card_json.write_text(json.dumps(changed))  # a run no recipe describes: named as such, no wrong command
        other = cards.render(RELEASED_NAME, root / "cards")
        assert f"# {run.name}: settings in {cards.COST_CURVE} (runs[].train), no published recipe" in other
        assert f"--recipe {RELEASED_NAME} --mnist MNIST_DIR --out {run.name}" not in other
        card_json.write_text(json.dumps(report))
        uploaded = publish.build_folder(RELEASED_NAME, tmp_path / "staged", root / "cards")
        assert cards.COST_CURVE in uploaded and card_json.with_suffix(".png").name in uploaded
    finally:
        card_json.unlink(missing_ok=True)
        card_json.with_suffix(".png").unlink(missing_ok=True)
        cards.write_cards(root / "cards", names=[RELEASED_NAME])
    assert cards.COST_CURVE not in cards.render(RELEASED_NAME, root / "cards")


def test_a_tag_scored_on_other_clips_is_refused_naming_both_digests(published, tmp_path):
    root, _, record, _ = published
    done = _score("--tag", RELEASED_NAME, "--cards", root / "cards", "--num-sequences", 3, "--json",
                  tmp_path / "cost.json")
    assert done.returncode != 0 and not (tmp_path / "cost.json").exists()
    assert f"{RELEASED_NAME} was scored on other clips (sha256 {record['test_set']['sha256']})" in done.stderr


def test_a_run_still_going_is_counted_at_the_threads_its_log_records_or_refused_before_scoring(published, tmp_path):
    _, run, _, _ = published
    going = tmp_path / "going"
    shutil.copytree(run / "checkpoints", going / "checkpoints")
    shutil.copyfile(run / "metrics.jsonl", going / "metrics.jsonl")  # no train_summary.json yet
    done = _score("--run", going, "--every", 2, "--num-sequences", 2, "--json", tmp_path / "cost.json")
    assert done.returncode == 0, done.stderr[-3000:]
    [point] = json.loads((tmp_path / "cost.json").read_text())["runs"][0]["points"]
    records = [json.loads(line) for line in (going / "metrics.jsonl").read_text().splitlines()]
    assert records[0]["threads"] == 1 and point["step"] == 2  # the run trained on one thread (one_thread)
    assert point["cpu_hours"] == pytest.approx(records[1]["elapsed_s"] / 3600)

    for record in records:  # a log from before segments recorded their threads
        record.pop("threads", None)
    (going / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    done = _score("--run", going, "--json", tmp_path / "old.json")
    assert done.returncode != 0 and "--train-threads must be given" in done.stderr
    assert "step 2" not in done.stdout and not (tmp_path / "old.json").exists()  # nothing scored first
    again = _score("--run", going, "--train-threads", 2, "--every", 2, "--num-sequences", 2, "--json", tmp_path / "old.json")
    assert again.returncode == 0, again.stderr[-3000:]
    assert json.loads((tmp_path / "old.json").read_text())["runs"][0]["points"][0]["cpu_hours"] == pytest.approx(
        2 * point["cpu_hours"])
    none = _score("--run", going, "--train-threads", 1, "--every", 3, "--num-sequences", 2, "--json", tmp_path / "no.json")
    assert none.returncode != 0 and "holds no intact checkpoint at a multiple of 3 steps" in none.stderr


def test_the_plot_draws_every_run_even_two_of_one_model_and_schedule(monkeypatch, tmp_path):
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        import forecast_cost
    finally:
        sys.path.remove(str(SCRIPT.parent))
    drawn = {}
    monkeypatch.setattr(forecast_cost.plots, "save_curves", lambda path, series, **kw: drawn.update(series) or path)
    point = {"process_cpu_hours": 1.0, "mse": 90.0}
    runs = [{"run": name, "model": "convgru_forecaster", "steps": 12000, "points": [point]} for name in ("a", "b")]
    forecast_cost.plot({"runs": runs, "released": [], "test_set": {"num_sequences": 4}}, tmp_path / "cost.png")
    assert len(drawn) == 2
