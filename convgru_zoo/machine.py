"""What a figure was measured on: the CPU (and its vector extensions), threads and accelerator.

Machines of one name differ (AVX2 one session, AVX-512 with native bf16 the next), so every recorded
time or speed carries this description.
"""
import os
import platform


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), or the platform's processor string elsewhere."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_flags() -> set:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def native_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX-512 BF16 or AMX): where bf16 autocast pays (docs/design.md)."""
    return bool(cpu_flags() & {"avx512_bf16", "amx_bf16"})


def describe() -> dict:
    """JSON-ready description of this machine as PyTorch sees it (torch imported only if installed)."""
    flags = cpu_flags()
    info = {"cpu": cpu_model(), "cores": os.cpu_count(),
            "avx512": "avx512f" in flags, "native_bf16": native_bf16()}
    try:
        import torch
    except ImportError:
        return info
    info["torch_threads"] = torch.get_num_threads()
    info["isa"] = torch.backends.cpu.get_cpu_capability()
    info["gpu"] = torch.cuda.get_device_name() if torch.cuda.is_available() else None
    return info


def summary_line(info: dict) -> str:
    """One line for a README or card: ``AMD EPYC (AVX2, no native bf16), 2 cores, 1 thread``."""
    isa = "AVX-512" if info.get("avx512") else info.get("isa", "").upper() or "no AVX-512"
    bf16 = "native bf16" if info.get("native_bf16") else "no native bf16"
    threads = info.get("threads", info.get("torch_threads"))
    line = f"{info['cpu']} ({isa}, {bf16}), {info['cores']} cores"
    if isinstance(threads, list):  # a run resumed with other thread counts
        line += f", {', '.join(map(str, threads))} threads in its successive segments"
    elif threads:
        line += f", {threads} thread{'s' if threads != 1 else ''}"
    if info.get("gpu"):
        line += f", GPU {info['gpu']}"
    return line
