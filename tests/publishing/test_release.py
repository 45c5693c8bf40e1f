"""Recipes and releases: `train --recipe` replays a published recipe; `release` checks the run against it,
converts it to MindSpore, evaluates both frameworks on the same clips and records every sha256."""
import dataclasses
import json

import numpy as np
import pytest

from convgru_zoo import cli, pretrained, specs
from convgru_zoo.publishing import release
from convgru_zoo.publishing.release import SHIPPED
from convgru_zoo._files import sha256_of
from conftest import RELEASED_NAME
from helpers import MNIST, needs_mnist

pytestmark = [needs_mnist, pytest.mark.slow, pytest.mark.usefixtures("one_thread")]  # whole releases
NAME = RELEASED_NAME


def test_train_recipe_runs_exactly_the_recipe(released):
    _, run, _, weights = released
    assert json.loads((run / "config.json").read_text())["train"] == dict(weights.recipe)


def test_release_records_files_their_sha256_and_the_training(released):
    tmp, run, record, weights = released
    torch_file, ms_file = tmp / SHIPPED / f"{NAME}.safetensors", tmp / SHIPPED / f"{NAME}.ckpt"
    assert torch_file.read_bytes() == (run / "model.safetensors").read_bytes()
    assert record["files"]["torch"]["sha256"] == sha256_of(torch_file)
    assert record["files"]["mindspore"]["sha256"] == sha256_of(ms_file)
    assert json.loads((tmp / SHIPPED / "published.json").read_text())[NAME] == {
        "mindspore": sha256_of(ms_file), "torch": sha256_of(torch_file)}
    assert record["recipe"] == dict(weights.recipe) and record["trained"]["steps"] == 2 and record["trained"]["threads"] == 1
    assert json.loads((run / "train_summary.json").read_text())["machine"]["cores"] >= 1  # what the training ran on
    cards = tmp / "cards" / NAME
    assert json.loads((cards / "release.json").read_text()) == record
    assert (cards / "metrics.jsonl").read_text() == (run / "metrics.jsonl").read_text()
    assert (cards / "training_curves.png").is_file()


def test_the_mindspore_checkpoint_is_reproducible_and_loads_with_plain_mindspore(released, tmp_path):
    ms = pytest.importorskip("mindspore")
    tmp, _, record, _ = released
    again = tmp_path / "again.ckpt"
    assert release.convert_to_mindspore(tmp / SHIPPED / f"{NAME}.safetensors", again, NAME.split(".")[0]) == \
        record["files"]["mindspore"]["sha256"]
    from convgru_zoo.run_files import read_weights
    from convgru_zoo.convert import torch_to_mindspore
    params = ms.load_checkpoint(str(tmp / SHIPPED / f"{NAME}.ckpt"))
    expected = torch_to_mindspore(read_weights(tmp / SHIPPED / f"{NAME}.safetensors")[0])
    assert sorted(params) == sorted(expected)
    for key, value in expected.items():
        np.testing.assert_array_equal(params[key].asnumpy(), value)


def test_both_frameworks_score_the_same_clips_alike(released):
    tmp, _, record, _ = released
    cards = tmp / "cards" / NAME
    reports = {fw: json.loads((cards / f"eval_forecast_{fw}.json").read_text()) for fw in specs.FRAMEWORKS}
    assert reports["torch"]["data"]["sha256"] == reports["mindspore"]["data"]["sha256"] == record["test_set"]["sha256"]
    for metric in ("mse", "mae", "ssim", "psnr"):
        np.testing.assert_allclose(reports["mindspore"]["metrics"][metric], reports["torch"]["metrics"][metric],
                                   rtol=1e-5)
    assert all("/" not in file for file in reports["torch"]["files"].values())  # committed: no local paths


def test_the_mindspore_evaluation_reads_the_checkpoint_it_is_given(released, tmp_path):
    pytest.importorskip("mindspore")
    from convgru_zoo.evaluation import evaluate
    from convgru_zoo.run_files import read_weights
    from convgru_zoo.convert import save_mindspore_checkpoint, torch_to_mindspore
    tmp, _, _, _ = released
    torch_file, ms_file = tmp / SHIPPED / f"{NAME}.safetensors", tmp / SHIPPED / f"{NAME}.ckpt"
    params = torch_to_mindspore(read_weights(torch_file)[0])
    halved = save_mindspore_checkpoint({k: v / 2 for k, v in params.items()}, tmp_path / "halved.ckpt")
    kwargs = dict(mnist=MNIST, num_sequences=4, framework="mindspore", progress=False)
    shipped = evaluate.evaluate(torch_file, out=tmp_path / "a", mindspore_checkpoint=ms_file, **kwargs)
    in_memory = evaluate.evaluate(torch_file, out=tmp_path / "b", **kwargs)
    other = evaluate.evaluate(torch_file, out=tmp_path / "c", mindspore_checkpoint=halved, **kwargs)
    assert shipped["weights"] == str(ms_file) and shipped["metrics"]["mse"] == in_memory["metrics"]["mse"]
    assert other["metrics"]["mse"] != shipped["metrics"]["mse"]

    del params[sorted(params)[0]]
    short = save_mindspore_checkpoint(params, tmp_path / "short.ckpt")
    with pytest.raises(cli.training.ConfigError, match=r"--mindspore-checkpoint must fit .*missing"):
        evaluate.evaluate(torch_file, out=tmp_path / "d", mindspore_checkpoint=short, **kwargs)
    with pytest.raises(cli.training.ConfigError, match=r"--mindspore-checkpoint needs --framework mindspore, "
                                                       r"got --framework 'torch'"):
        evaluate.evaluate(torch_file, out=tmp_path / "e", mindspore_checkpoint=ms_file, **{**kwargs, "framework": "torch"})
    with pytest.raises(cli.training.ConfigError, match=r"--mindspore-checkpoint must be a MindSpore .ckpt file, "
                                                       r"got .*nothing.ckpt' \(not found\)"):
        evaluate.evaluate(torch_file, out=tmp_path / "f", mindspore_checkpoint=tmp_path / "nothing.ckpt", **kwargs)
    assert not (tmp_path / "e").exists() and not (tmp_path / "f").exists()  # refused before any work


def _folder_digests(folder):
    return {p.name: sha256_of(p) for p in sorted(folder.iterdir())}


def test_release_writes_into_the_checkout_it_is_given_not_the_installed_package(released, tmp_path, monkeypatch):
    """The release of a tag that ships, into a stand-in checkout, scoring the MindSpore file it wrote."""
    pytest.importorskip("mindspore")
    _, run, _, weights = released
    assert pretrained.WEIGHTS_DIR.parts[-2:] == SHIPPED.parts and specs.PUBLISHED_FILE.parent == pretrained.WEIGHTS_DIR
    installed = _folder_digests(pretrained.WEIGHTS_DIR)
    monkeypatch.setitem(specs.PRETRAINED, NAME, weights)
    monkeypatch.setattr(release, "TEST_SEQUENCES", 4)
    from convgru_zoo.mindspore import weights as ms_weights
    read = []
    original = ms_weights.read_mindspore_checkpoint
    monkeypatch.setattr(ms_weights, "read_mindspore_checkpoint", lambda path: read.append(path) or original(path))
    record = release.release(NAME, run, MNIST, cards_dir=tmp_path / "cards", train_threads=1, progress=False)
    assert read == [tmp_path / SHIPPED / f"{NAME}.ckpt"]
    assert _folder_digests(pretrained.WEIGHTS_DIR) == installed  # the installed package untouched
    assert _folder_digests(tmp_path / SHIPPED) == {
        f"{NAME}.safetensors": record["files"]["torch"]["sha256"], f"{NAME}.ckpt": record["files"]["mindspore"]["sha256"],
        "published.json": sha256_of(tmp_path / SHIPPED / "published.json")}
    assert record["files"]["torch"]["path"] == str(SHIPPED / f"{NAME}.safetensors")  # relative to the checkout


def _run_with_config(run, folder, edit):
    """A copy of ``run``'s weights in ``folder`` whose ``config.json`` has its training fields changed by ``edit``;
    returns ``(folder, that config)``."""
    folder.mkdir()
    (folder / "model.safetensors").write_bytes((run / "model.safetensors").read_bytes())
    config = json.loads((run / "config.json").read_text())
    edit(config["train"])
    (folder / "config.json").write_text(json.dumps(config))
    return folder, config


def test_a_run_that_is_not_the_recipe_is_refused(released, tmp_path):
    _, run, _, _ = released
    other, _ = _run_with_config(run, tmp_path / "other", lambda train: train.update(lr=0.5))
    with pytest.raises(cli.training.ConfigError, match=r"lr: the run has 0.5, the recipe 0.005"):
        release.release(NAME, other, MNIST, cards_dir=tmp_path / "cards", train_threads=1)  # the real recipe
    assert not (tmp_path / "cards").exists()


def test_a_run_that_predates_a_training_field_is_the_recipes_with_its_default(released, tmp_path):
    _, run, _, weights = released
    # trained before --dataset and --augment existed
    old, config = _run_with_config(run, tmp_path / "old", lambda train: [train.pop(k) for k in ("dataset", "augment")])
    assert release.check_run_matches_recipe(weights, old) == config


def test_recipe_flags_are_checked():
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["train", "--recipe"])
    assert cli.main(["train", "--recipe", NAME, "--lr", "0.1", "--mnist", str(MNIST), "--out", "x"]) == 2
    assert cli.main(["train", "--recipe", "nope.tag", "--mnist", str(MNIST), "--out", "x"]) == 2


def test_training_time_adds_up_resumed_segments():
    lines = [json.dumps({"step": s, "elapsed_s": e}) for s, e in [(1, 10.0), (2, 20.0), (3, 5.0), (4, 15.0)]]
    assert release.training_time(lines) == {"steps": 4, "wall_hours": 35.0 / 3600, "segments": 2,
                                            "segment_hours": [20.0 / 3600, 15.0 / 3600]}
    timed = [json.dumps({"step": s, "elapsed_s": e, "cpu_s": c})
             for s, e, c in [(1, 10.0, 18.0), (2, 20.0, 36.0), (3, 5.0, 9.0), (4, 15.0, 20.0)]]
    assert release.training_time(timed) == {"steps": 4, "wall_hours": 35.0 / 3600, "segments": 2,
                                            "segment_hours": [20.0 / 3600, 15.0 / 3600],
                                            "process_cpu_hours": 56.0 / 3600}
    # a segment starts where a record names its threads and precision, even if its first step outlasts the
    # previous segment's run time
    named = [json.dumps({"step": s, "elapsed_s": e, **extra}) for s, e, extra in [
        (1, 10.0, {"threads": 1, "amp": "bf16"}), (2, 20.0, {}), (3, 25.0, {"threads": 2, "amp": "none"}), (4, 30.0, {})]]
    assert release.training_time(named) == {"steps": 4, "wall_hours": 50.0 / 3600, "segments": 2,
                                            "segment_hours": [20.0 / 3600, 30.0 / 3600],
                                            "segment_threads": [1, 2], "segment_amp": ["bf16", "none"]}


def test_cpu_hours_are_each_segments_hours_times_its_threads_whatever_the_log_measured():
    spent = {"segment_hours": [2.0, 1.0], "process_cpu_hours": 3.5}
    assert release.training_cost(spent, [1, 2], world=2, gpu=False) == {
        "cpu_hours": 8.0, "cpu_hours_from": release.CPU_HOURS_FROM, "process_cpu_hours": 7.0}
    del spent["process_cpu_hours"]
    assert release.training_cost(spent, [1, 2], world=1, gpu=False) == {
        "cpu_hours": 4.0, "cpu_hours_from": release.CPU_HOURS_FROM}
    assert release.training_cost(spent, [1, 2], world=1, gpu=True) == {"cpu_hours": None}


def test_thread_counts_must_match_the_runs_segments(published, tmp_path, capsys):
    _, run, _, _ = published
    with pytest.raises(cli.training.ConfigError, match=r"--train-threads must give one count or one per segment "
                                                       r"of the run \(1\), got 3: \[1, 2, 1\]"):
        release.release(NAME, run, MNIST, cards_dir=tmp_path / "cards", train_threads=[1, 2, 1])
    assert not (tmp_path / "cards").exists()
    with pytest.raises(SystemExit):
        cli.main(["release", NAME, "--run", str(run), "--mnist", str(MNIST), "--train-threads", "0,2"])
    assert "--train-threads: expected a positive int or a comma-separated list of them, got '0,2'" in (
        capsys.readouterr().err)


def test_every_recipe_is_a_full_train_config():
    fields = {f.name for f in dataclasses.fields(cli.training.TrainConfig)}
    for weights in specs.PRETRAINED.values():
        recipe = dict(weights.recipe)
        assert set(recipe) == fields, weights.name
        assert recipe["model"] == weights.arch and recipe["task"] == weights.task
