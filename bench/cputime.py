"""CPU time from /proc: of one process and of the whole machine, to show who used the cores."""

import os
import resource
import time
from collections.abc import Callable
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
NOISY_OTHER_CORES = 0.1  # other processes' CPU above this makes a measurement unreliable


def process_cpu_seconds(pid: int) -> float:
    """User + system time of a process, all its threads, so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime


def thread_cpu_seconds(pid: int) -> dict[str, float]:
    """User + system time of each thread of a process so far, keyed by thread id; the main
    thread (an asyncio server's event loop) is 'main'."""
    times = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # the thread ended meanwhile
            continue
        name = "main" if task.name == str(pid) else f"thread {task.name}"
        times[name] = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return times


def busiest_threads(
    before: dict[str, float], after: dict[str, float], wall_s: float, count: int = 3
) -> dict[str, float]:
    """The `count` threads that used the most CPU between two readings, in cores."""
    used = {name: after[name] - before.get(name, 0.0) for name in after}
    top = sorted(used, key=lambda name: used[name], reverse=True)[:count]
    return {name: round(used[name] / wall_s, 3) for name in top}


def own_cpu_seconds(who: int = resource.RUSAGE_SELF) -> float:
    """User + system time of this process (or, with RUSAGE_CHILDREN, of its waited-for children)."""
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def machine_busy_seconds() -> float:
    """CPU time all cores spent on anything but idling since boot, steal included (/proc/stat)."""
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(
        int, Path("/proc/stat").read_text().split()[1:9]
    )
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS


class CpuWindow:
    """Over a `with` block: wall time, CPU time of the whole machine, and of one process."""

    def __init__(self, process_seconds: Callable[[], float] = own_cpu_seconds) -> None:
        self._process_seconds = process_seconds
        self.wall_s = self.machine_s = self.process_s = 0.0

    def __enter__(self) -> "CpuWindow":
        self._start = (time.perf_counter(), machine_busy_seconds(), self._process_seconds())
        return self

    def __exit__(self, *exc_info: object) -> None:
        wall, machine, process = self._start
        self.wall_s = time.perf_counter() - wall
        self.machine_s = machine_busy_seconds() - machine
        self.process_s = self._process_seconds() - process

    def cores(self, cpu_seconds: float) -> float:
        """Average cores busy over the window for `cpu_seconds` of CPU time."""
        return cpu_seconds / self.wall_s


def wait_until_quiet(timeout_s: float = 120.0, window_s: float = 0.5) -> float:
    """Wait until the machine idles (a server may still be draining the last load's backlog:
    the textbook server keeps computing queued requests after the load generator stops).
    Returns the seconds waited."""
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        busy = machine_busy_seconds()
        time.sleep(window_s)
        if (machine_busy_seconds() - busy) / window_s < NOISY_OTHER_CORES:
            break
    return time.monotonic() - start
