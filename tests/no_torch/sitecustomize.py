"""On PYTHONPATH, makes this interpreter one without PyTorch: importing torch, timm or torchvision fails."""
import importlib.abc
import sys

BLOCKED = ("torch", "timm", "torchvision")


class _NoTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):
        if fullname.split(".")[0] in BLOCKED:
            raise ImportError(f"No module named {fullname!r} (blocked: a MindSpore-only install)")
        return None


sys.meta_path.insert(0, _NoTorch())
