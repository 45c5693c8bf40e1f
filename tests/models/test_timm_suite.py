"""timm's own model tests (tests/test_models.py of the installed timm's sdist) for every convgru_* model,
the GRU-RCN ones (convgru_rcn*) included.

``make install`` caches timm's tests/ folder under the repo's ``.cache/`` (``tests/timm_suite/fetch.py``),
so this needs no network; ``TIMM_TESTS_DIR`` may point at an unpacked tests/ folder instead.
The suite runs in a subprocess with the plugin ``tests/timm_suite/convgru_test_weights.py``, which
registers the models before timm's test module lists them and publishes test-made weights for every
pretrained tag, so timm's pretrained-loading tests run too, through the sha256-checked path, offline.
"""
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

timm = pytest.importorskip("timm")

from convgru_zoo import specs  # noqa: E402
from helpers import TESTS  # noqa: E402
from timm_suite.fetch import fetch, timm_tests_dir  # noqa: E402

MODELS = tuple(sorted(specs.BACKBONES)) + tuple(sorted(specs.RCN_MODELS))  # the GRU-RCNs at timm's own sizes
# Every test of test_models.py that takes any model from list_models(); each must pass for each model,
# the pretrained-loading ones for each model with a pretrained tag.
PRETRAINED_TESTS = ("test_model_load_pretrained", "test_model_features_pretrained")
EXPECTED_TESTS = (
    "test_model_forward", "test_model_backward", "test_model_default_cfgs", "test_model_forward_torchscript",
    "test_model_forward_features", "test_model_forward_fx", "test_model_backward_fx",
    "test_model_forward_fx_torchscript", *PRETRAINED_TESTS,
)


@pytest.mark.slow
def test_timm_model_tests_pass_for_every_convgru_model(tmp_path):
    tests = timm_tests_dir()
    if not (tests / "test_models.py").is_file():
        pytest.fail(f"timm's tests are not in {tests}: run `make install` or `python tests/timm_suite/fetch.py` "
                    f"(downloads timm's sdist from PyPI once)")
    report = tmp_path / "report.xml"
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "convgru_test_weights", "-p", "no:cacheprovider",
           "-W", "ignore::pytest.PytestUnknownMarkWarning", f"--rootdir={tests}", f"--junitxml={report}",
           str(tests / "test_models.py"), "-k", "convgru"]
    plugin_dir = str(TESTS / "timm_suite")
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
            if test in PRETRAINED_TESTS and specs.default_weights(model) is None:
                continue
            case = re.compile(rf"{test}\[\d+-{re.escape(model)}(\.\w+)?\]")  # the model or one of its tags
            ran = {name: outcome for name, outcome in outcomes.items() if case.fullmatch(name)}
            assert ran, f"{test} did not run for {model}; ran: {sorted(outcomes)}"
            assert set(ran.values()) == {"passed"}, f"{test} for {model}: {ran}"


@pytest.mark.network
def test_fetch_unpacks_the_tests_of_the_installed_timm(tmp_path, monkeypatch):
    from timm_suite import fetch as fetching

    monkeypatch.delenv("TIMM_TESTS_DIR", raising=False)
    monkeypatch.setattr(fetching, "CACHE", tmp_path / "timm-tests")
    tests = fetch()
    assert tests == tmp_path / "timm-tests" / f"timm-{timm.__version__}" / "tests"
    assert (tests / "test_models.py").is_file() and not list((tmp_path / "timm-tests").glob("*.tar.gz"))
