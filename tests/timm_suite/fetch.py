"""Fetch the tests/ folder of the installed timm's source distribution into the checkout's .cache/.

    python tests/timm_suite/fetch.py      # `make install` runs it, so `make test` needs no network

The sdist comes from PyPI (``pip download``); only its tests/ folder is kept, so the installed timm is
the one tested. ``TIMM_TESTS_DIR`` may point at an unpacked tests/ folder instead.
"""
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import timm

CACHE = Path(__file__).resolve().parents[2] / ".cache" / "timm-tests"


def timm_tests_dir() -> Path:
    """Where the unpacked tests/ folder of the installed timm's sdist is (or would be) kept."""
    if os.environ.get("TIMM_TESTS_DIR"):
        return Path(os.environ["TIMM_TESTS_DIR"])
    return CACHE / f"timm-{timm.__version__}" / "tests"


def fetch() -> Path:
    """Download and unpack the tests/ folder once; return it."""
    target = timm_tests_dir()
    if (target / "test_models.py").is_file():
        return target
    CACHE.mkdir(parents=True, exist_ok=True)
    (CACHE.parent / ".gitignore").write_text("*\n")
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
        pip = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "-q",
               f"timm=={timm.__version__}", "-d", tmp]
        done = subprocess.run(pip, capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            raise RuntimeError(f"could not download timm=={timm.__version__}'s sdist from PyPI for its tests "
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


if __name__ == "__main__":
    print(fetch())
