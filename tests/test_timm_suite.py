"""timm's own model tests (tests/test_models.py of the installed timm's sdist) for every convgru_* model.

The sdist comes from PyPI once (``pip download``) and its tests/ folder is kept under the repo's
``.cache/`` (ignored by git); ``TIMM_TESTS_DIR`` may point at an unpacked tests/ folder instead.
The suite runs in a subprocess with the plugin ``tests/timm_suite/convgru_test_weights.py``, which
registers the models before timm's test module lists them and publishes test-made weights for every
pretrained tag, so timm's pretrained-loading tests run too, through the sha256-checked path, offline.
"""
import os
import subprocess
import sys
import tarfile
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

timm = pytest.importorskip("timm")

REPO = Path(__file__).resolve().parents[1]
CACHE = REPO / ".cache" / "timm-tests"
MODELS = ("convgru_tiny", "convgru_small", "convgru_base")
# Every test of test_models.py that takes any model from list_models(); each must pass for each model.
EXPECTED_TESTS = (
    "test_model_forward", "test_model_backward", "test_model_default_cfgs", "test_model_forward_torchscript",
    "test_model_forward_features", "test_model_forward_fx", "test_model_backward_fx",
    "test_model_forward_fx_torchscript", "test_model_load_pretrained", "test_model_features_pretrained",
)


def timm_tests_dir() -> Path:
    """The unpacked tests/ folder of the installed timm's sdist, downloaded once into .cache/."""
    if os.environ.get("TIMM_TESTS_DIR"):
        return Path(os.environ["TIMM_TESTS_DIR"])
    target = CACHE / f"timm-{timm.__version__}" / "tests"
    if (target / "test_models.py").is_file():
        return target
    CACHE.mkdir(parents=True, exist_ok=True)
    (CACHE.parent / ".gitignore").write_text("*\n")
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
        pip = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "-q",
               f"timm=={timm.__version__}", "-d", tmp]
        done = subprocess.run(pip, capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            pytest.fail(f"could not download timm=={timm.__version__}'s sdist from PyPI for its tests "
                        f"(set TIMM_TESTS_DIR to an unpacked tests/ folder):\n{done.stderr[-2000:]}")
        (sdist,) = Path(tmp).glob("timm-*.tar.gz")
        prefix = f"timm-{timm.__version__}/tests/"
        with tarfile.open(sdist) as tar:
            members = [m for m in tar.getmembers() if m.name.startswith(prefix)]
            tar.extractall(tmp, members=members, filter="data")
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(Path(tmp) / prefix, target)  # atomic: a half-unpacked folder is never seen
        except OSError:
            if not (target / "test_models.py").is_file():  # not a concurrent run that got there first
                raise
    return target


def test_timm_model_tests_pass_for_every_convgru_model(tmp_path):
    tests = timm_tests_dir()
    report = tmp_path / "report.xml"
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "convgru_test_weights", "-p", "no:cacheprovider",
           "-W", "ignore::pytest.PytestUnknownMarkWarning", f"--rootdir={tests}", f"--junitxml={report}",
           str(tests / "test_models.py"), "-k", "convgru"]
    plugin_dir = str(Path(__file__).resolve().parent / "timm_suite")
    env = dict(os.environ, HF_HUB_OFFLINE="1", CONVGRU_TEST_WEIGHTS_DIR=str(tmp_path / "weights"),
               PYTHONPATH=os.pathsep.join(filter(None, [plugin_dir, os.environ.get("PYTHONPATH")])))
    done = subprocess.run(cmd, cwd=tests, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"timm's model tests failed:\n{done.stdout[-6000:]}\n{done.stderr[-2000:]}"

    outcomes = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        bad = [child.tag for child in case if child.tag in ("failure", "error", "skipped")]
        outcomes[case.get("name")] = bad[0] if bad else "passed"
    for test in EXPECTED_TESTS:
        for model in MODELS:
            ran = {name: outcome for name, outcome in outcomes.items()
                   if name.startswith(test + "[") and model in name}
            assert ran, f"{test} did not run for {model}; ran: {sorted(outcomes)}"
            assert set(ran.values()) == {"passed"}, f"{test} for {model}: {ran}"
