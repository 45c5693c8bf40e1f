"""MindSpore devices: ``--device`` as MindSpore's (target, index), for training and evaluation."""
from .._checks import ConfigError


def device_target(device: str):
    """``--device`` (auto, cpu, cuda, cuda:N) as MindSpore's (target, index); auto: MindSpore's default."""
    if device == "auto":
        return None, None
    kind, _, index = device.partition(":")
    if kind not in ("cpu", "cuda") or (index and not index.isdigit()):
        raise ConfigError(f"--device must be auto, cpu, cuda or cuda:N, got {device!r}")
    return ("CPU" if kind == "cpu" else "GPU"), (int(index) if index else None)
