"""Shared pieces of the benchmarks: cold whole-process runs, medians and markdown tables.

Every measured command runs in a fresh Python process (imports included), with its own empty
datasets cache folder, so each run is a cold build; wall time and peak resident memory are taken
for that one child (see :func:`run_cold`). Ours and the reference are
interleaved (ABAB..., alternating which goes first) so that a noisy machine slows both alike.
"""

from __future__ import annotations

import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Run:
    """One cold run of a command."""

    wall_s: float
    max_rss_mb: float
    stdout: str


@dataclass
class Series:
    """Repeated runs of one benchmarked command."""

    name: str
    runs: list[Run] = field(default_factory=list)
    notes: dict[str, str] = field(default_factory=dict)

    @property
    def median_s(self) -> float:
        """Median wall time in seconds."""
        return statistics.median(run.wall_s for run in self.runs)

    @property
    def median_rss_mb(self) -> float:
        """Median peak resident memory in MB."""
        return statistics.median(run.max_rss_mb for run in self.runs)

    def spread(self) -> str:
        """``min-max`` of the wall times."""
        times = [run.wall_s for run in self.runs]
        return f"{min(times):.2f}-{max(times):.2f}"


def quiet_environment(hf_home: Path) -> dict[str, str]:
    """Environment for a measured child: offline, isolated HF home, no progress bars."""
    env = dict(os.environ)
    env.update(
        HF_HOME=str(hf_home),
        HF_HUB_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        HF_DATASETS_DISABLE_PROGRESS_BARS="1",
        TOKENIZERS_PARALLELISM="false",
    )
    return env


_TIME = Path("/usr/bin/time")


def run_cold(argv: Sequence[str], env: dict[str, str] | None = None) -> Run:
    """Run ``argv`` to completion in a fresh process; its wall time, peak RSS and standard output.

    Peak RSS comes from GNU ``/usr/bin/time`` when present: Linux folds the *parent's* peak RSS into
    a child's ``ru_maxrss`` at fork/exec, so a child of this (large) benchmark process would report
    at least our own peak; one small intermediate process isolates the measured command. Without
    GNU time, ``os.wait4`` is used and the figure is an upper bound.
    """
    with tempfile.TemporaryDirectory() as scratch:
        rss_file = Path(scratch) / "rss"
        wrapped = [str(_TIME), "-f", "%M", "-o", str(rss_file), *argv] if _TIME.exists() else list(argv)
        with open(Path(scratch) / "out", "w+b") as out, open(Path(scratch) / "err", "w+b") as err:
            start = time.perf_counter()
            process = subprocess.Popen(wrapped, stdout=out, stderr=err, env=env)
            _, status, usage = os.wait4(process.pid, 0)
            wall = time.perf_counter() - start
            process.returncode = os.waitstatus_to_exitcode(status)
            out.seek(0)
            err.seek(0)
            stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
        if process.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed ({process.returncode}):\n{stderr[-3000:]}")
        max_rss_kb = int(rss_file.read_text().split()[-1]) if rss_file.exists() else usage.ru_maxrss
    return Run(wall_s=wall, max_rss_mb=max_rss_kb / 1024, stdout=stdout)


def interleave(series: Sequence[Series], repeats: int, measure: Callable[[Series, int], Run], log: bool = True) -> None:
    """Run each series ``repeats`` times, interleaved, rotating which goes first."""
    for repeat in range(repeats):
        order = list(series[repeat % len(series) :]) + list(series[: repeat % len(series)])
        for item in order:
            run = measure(item, repeat)
            item.runs.append(run)
            if log:
                message = f"{item.name}: {run.wall_s:.2f} s, {run.max_rss_mb:.0f} MB"
                print(f"  [{repeat + 1}/{repeats}] {message}", flush=True)


def folder_size(path: Path) -> int:
    """Total bytes of the files under ``path``."""
    return sum(item.stat().st_size for item in path.rglob("*") if item.is_file())


def fresh_dir(path: Path) -> Path:
    """``path``, emptied."""
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines.extend("| " + " | ".join(str(cell) for cell in row) + " |" for row in rows)
    return "\n".join(lines)


_BUSY_LOOP = "import time; start = time.perf_counter(); sum(range(20_000_000)); print(time.perf_counter() - start)"


def parallel_capacity(processes: int) -> float:
    """How many cores' worth of work ``processes`` busy processes really get (shared VMs may give fewer)."""
    alone = float(subprocess.run([sys.executable, "-c", _BUSY_LOOP], capture_output=True, text=True).stdout)
    busy = [
        subprocess.Popen([sys.executable, "-c", _BUSY_LOOP], stdout=subprocess.PIPE, text=True)
        for _ in range(processes)
    ]
    together = [float(process.communicate()[0]) for process in busy]
    return processes * alone / max(together)


def machine_description() -> str:
    """Cores available to this process (and how many it really gets in parallel), CPU model, Python and OS."""
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    capacity = parallel_capacity(cores or 1)
    return (
        f"{cores} cores ({model}; {cores} busy processes get {capacity:.1f} cores' worth of CPU right now), "
        f"Python {platform.python_version()}, {platform.system()} {platform.release()}"
    )


def venv_script(name: str) -> str:
    """Path of a console script installed next to the running interpreter (e.g. ``covid-ct``)."""
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else name
