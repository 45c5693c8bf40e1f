"""The package as an index would serve it: sdist and wheel build, metadata, `twine check`, and installs
into fresh environments, offline: every Python that pyproject.toml claims, and PyTorch without MindSpore
on numpy 2 (numpy<2 belongs to the mindspore extra only).

The wheels these environments need (numpy, tqdm for each Python) are fetched once by the set-up
(``make install`` fills ``.cache/wheels``), so the tests run with ``--no-index``.
"""
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

from convgru_zoo.specs import BACKBONES
from helpers import REPO

WHEELHOUSE = REPO / ".cache" / "wheels"
OTHER_PYTHONS = ("3.10", "3.12")  # with this interpreter's 3.11: what requires-python claims and the Makefile fetches


def run(*command, **kwargs):
    """Run ``command`` in a clean environment: no PYTHONPATH pointing back at the checkout."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    done = subprocess.run([str(c) for c in command], capture_output=True, text=True, timeout=600, env=env, **kwargs)
    assert done.returncode == 0, f"{' '.join(map(str, command))}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


@pytest.fixture(scope="module")
def dist(tmp_path_factory):
    """sdist and wheel built from a copy of the checkout's package files, offline (no build isolation)."""
    root = tmp_path_factory.mktemp("package")
    source = root / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(REPO / name, source / name)
    shutil.copytree(REPO / "convgru_zoo", source / "convgru_zoo", ignore=shutil.ignore_patterns("__pycache__"))
    run(sys.executable, "-m", "build", "--no-isolation", "--sdist", "--wheel", "--outdir", root / "dist", source)
    (wheel,) = (root / "dist").glob("convgru_zoo-*.whl")
    (sdist,) = (root / "dist").glob("convgru_zoo-*.tar.gz")
    return wheel, sdist


def wheel_metadata(wheel):
    with zipfile.ZipFile(wheel) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        return Parser().parsestr(archive.read(name).decode())


def test_twine_accepts_the_sdist_and_wheel(dist):
    assert "PASSED" in run(sys.executable, "-m", "twine", "check", "--strict", *dist)


def test_metadata_declares_ranges_and_numpy_below_2_for_mindspore_only(dist):
    meta = wheel_metadata(dist[0])
    assert meta["Requires-Python"] == ">=3.10"
    requires = meta.get_all("Requires-Dist")
    assert "numpy>=1.24" in requires and 'numpy<2; extra == "mindspore"' in requires, requires
    pinned = [r for r in requires if "==" in r.split(";")[0]]
    assert not pinned, f"dependencies are ranges, exact versions live in constraints.txt: {pinned}"
    assert {"torch", "mindspore", "hub", "plot", "video", "export", "all"} <= set(meta.get_all("Provides-Extra"))
    assert meta.get_content_type() == "text/plain" and "# convgru-zoo" in meta.get_payload()  # the README


def test_constraints_pin_every_declared_dependency():
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    declared = list(project["dependencies"])
    for extra, items in project["optional-dependencies"].items():
        declared += [i for i in items if not i.startswith("convgru-zoo")]
    names = {d.split(";")[0].split(">")[0].split("<")[0].split("=")[0].strip().lower().replace("_", "-")
             for d in declared}
    pinned = {line.split("==")[0].lower().replace("_", "-") for line in (REPO / "constraints.txt").read_text().splitlines()
              if "==" in line and not line.startswith("#")}
    assert names <= pinned, sorted(names - pinned)


def interpreter(version):
    """Python ``version``'s interpreter: pyenv's own (its shims answer only for the selected version), else PATH's."""
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    found = sorted(pyenv.glob(f"{version}.*/bin/python{version}"))
    return str(found[-1]) if found else shutil.which(f"python{version}")


def fresh_env(tmp_path, version):
    """A new virtual environment of Python ``version`` (pyenv's interpreter), or this one's for None."""
    python = sys.executable if version is None else interpreter(version)
    if python is None:
        pytest.fail(f"python{version} is not on PATH: requires-python claims it, so the machine must have it")
    env = tmp_path / f"venv{version or ''}"
    run(python, "-m", "venv", env)
    return env / "bin" / "python"


@pytest.mark.parametrize("version", OTHER_PYTHONS)
def test_the_wheel_installs_and_generates_clips_on_every_claimed_python(dist, tmp_path, version):
    python = fresh_env(tmp_path, version)
    run(python, "-m", "pip", "install", "-q", "--no-index", "--find-links", WHEELHOUSE, dist[0])
    script = ("import sys, convgru_zoo, numpy as np\n"
              "from convgru_zoo.data import MovingMNIST\n"
              "from convgru_zoo.specs import BACKBONES\n"
              "digits = (np.full((20, 28, 28), 200, np.uint8), np.arange(20) % 10)\n"
              "clips = MovingMNIST(digits, 'train', 2, seq_len=3).batch([0, 1])\n"
              "print(sys.version_info[:2], clips.shape, sorted(BACKBONES)[0])\n")
    out = run(python, "-c", script, cwd=tmp_path)
    assert f"({version.replace('.', ', ')}) (2, 3, 1, 64, 64) {sorted(BACKBONES)[0]}" in out


def test_pytorch_without_mindspore_on_numpy_2_loads_a_shipped_tag(dist, tmp_path):
    """A PyTorch user's environment: numpy 2, no MindSpore. This interpreter's torch, timm and safetensors
    are reused (a .pth after the new environment's own site-packages, so its numpy 2 comes first)."""
    torch = pytest.importorskip("torch")
    import timm

    import convgru_zoo  # noqa: F401  (registers the models)

    python = fresh_env(tmp_path, None)
    run(python, "-m", "pip", "install", "-q", "--no-index", "--find-links", WHEELHOUSE, "numpy>=2", "tqdm")
    run(python, "-m", "pip", "install", "-q", "--no-deps", dist[0])
    site = Path(run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").strip())
    (site / "zz_reuse_test_env.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    (site / "sitecustomize.py").write_text(
        "import sys\n"
        "class _NoMindSpore:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('mindspore', 'mindcv'):\n"
        "            raise ImportError(f'{name} is not installed in this environment')\n"
        "sys.meta_path.insert(0, _NoMindSpore())\n")
    script = ("import numpy, torch, timm, convgru_zoo\n"
              "assert numpy.__version__.startswith('2'), numpy.__version__\n"
              "torch.manual_seed(0)\n"
              "model = timm.create_model('convgru_tiny', pretrained=True).eval()\n"
              "with torch.no_grad():\n"
              "    out = model(torch.rand(2, 4, 3, 64, 64))\n"
              "print(numpy.__version__, convgru_zoo.__file__)\n"
              "print(' '.join(f'{v:.6f}' for v in out.flatten()[:8].tolist()))\n")
    head, values = run(python, "-c", script, cwd=tmp_path).splitlines()[-2:]
    version, location = head.split()
    assert version.startswith("2.") and str(site) in location  # the installed wheel, not the checkout
    torch.manual_seed(0)
    model = timm.create_model("convgru_tiny", pretrained=True).eval()
    with torch.no_grad():
        want = model(torch.rand(2, 4, 3, 64, 64)).flatten()[:8]
    assert [float(v) for v in values.split()] == pytest.approx(want.tolist(), abs=1e-5)
