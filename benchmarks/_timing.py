"""Timing helpers shared by the benchmarks: interleaved rounds, medians, FLOP counts.

Candidates are timed side by side in rounds (each round runs every candidate once, in a rotated
order), so a slow spell of a shared machine hits all of them alike; the median of the rounds is
the figure, the min-max spread says how noisy the run was.
"""
import json
import statistics
import time
from dataclasses import asdict, dataclass
from typing import Callable, Dict, Optional

from convgru_zoo._files import atomic_write_json


@dataclass
class Timing:
    """Seconds per call of one candidate over the rounds of one run."""

    median: float
    low: float
    high: float
    rounds: int

    @property
    def spread(self) -> float:
        """(high - low) / median: how much the rounds disagreed."""
        return (self.high - self.low) / self.median


def interleaved(candidates: Dict[str, Callable[[], object]], rounds: int, warmup: int = 1,
                sync: Optional[Callable[[], None]] = None,
                clock: Callable[[], float] = time.perf_counter) -> Dict[str, Timing]:
    """Time every candidate ``rounds`` times, interleaved, after ``warmup`` untimed calls each.

    ``sync`` (e.g. ``torch.cuda.synchronize``) runs before and after each timed call, for devices
    that run asynchronously. ``clock``: wall time by default; ``time.process_time`` for single-threaded
    candidates on a shared machine (the time spent waiting for a core is not the candidate's).
    """
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    sync = sync or (lambda: None)
    names = list(candidates)
    for name in names:
        for _ in range(warmup):
            candidates[name]()
    seconds = {name: [] for name in names}
    for r in range(rounds):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            sync()
            start = clock()
            candidates[name]()
            sync()
            seconds[name].append(clock() - start)
    return {name: Timing(statistics.median(s), min(s), max(s), len(s)) for name, s in seconds.items()}


def count_flops(fn: Callable[[], object]) -> int:
    """FLOPs of the matmuls and convolutions (forward and backward) that ``fn`` runs in PyTorch."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        fn()
    return counter.get_total_flops()


def gflops(flops: float, seconds: float) -> float:
    return flops / seconds / 1e9


def write_json(path: str, payload: dict) -> None:
    """Write ``payload`` (Timings as dicts) as JSON to ``path`` atomically."""
    atomic_write_json(path, json.loads(json.dumps(
        payload, default=lambda o: asdict(o) if isinstance(o, Timing) else str(o))))
