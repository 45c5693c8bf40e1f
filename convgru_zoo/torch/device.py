"""PyTorch devices and precision: ``--device`` and ``--amp`` as torch objects, for training and evaluation."""
import torch

from .. import machine
from .._checks import ConfigError


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """``--device`` (auto, cpu, cuda, cuda:N) as a torch device; under torchrun, cuda is the ``local_rank``'s."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        device = None
    if device is None or device.type not in ("cpu", "cuda"):
        raise ConfigError(f"--device must be auto, cpu, cuda or cuda:N, got {name!r}")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"--device must name an available device, got {name!r} but CUDA is not available")
        if device.index is None:
            device = torch.device("cuda", local_rank)
        if device.index >= torch.cuda.device_count():
            raise ConfigError(f"--device must name one of the {torch.cuda.device_count()} CUDA devices, got {name!r}")
    return device


def resolve_amp(amp: str, device: torch.device) -> str:
    """``--amp auto`` on ``device``: bf16 where it is native (a CUDA GPU with bf16, a CPU with AVX-512 BF16 or
    AMX), else none. Decided at every start, so a run resumed on another machine may change precision."""
    if amp != "auto":
        return amp
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "none"
    return "bf16" if machine.native_bf16() else "none"


def autocast_for(amp: str, device: torch.device):
    """A no-argument context factory: bf16/fp16 autocast on ``device`` or nothing (``auto`` is resolved before)."""
    dtypes = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}
    if amp not in dtypes:
        raise ValueError(f"amp must be one of {sorted(dtypes)} (resolve 'auto' first), got {amp!r}")
    if dtypes[amp] is None:
        return lambda: torch.autocast(device.type, enabled=False)
    return lambda: torch.autocast(device.type, dtype=dtypes[amp])
