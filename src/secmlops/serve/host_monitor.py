"""The serving host's CPU, memory and GPU use, and a detector of cryptomining-like load.

A gateway host whose processor or GPU stays busy while almost no requests arrive is doing work for
someone else: a miner planted through a compromised dependency or model is the classic case.
`BusyWhileIdle` is a pure state machine fed with samples (time, utilisation, requests since the
previous sample); `HostSampler` reads the utilisation from psutil when installed, else from
/proc (Linux), and GPUs through NVML (`nvidia-ml-py`) when the library and a device exist.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("secmlops.serve.host")


@dataclass(frozen=True, slots=True)
class Transition:
    """A change of the detector's verdict."""

    event: str  # "detected" or "cleared"
    utilisation: float
    requests_per_second: float
    busy_seconds: float


class BusyWhileIdle:
    """Alerts when utilisation stays at or above `busy_percent` for `sustain` seconds while the
    request rate stays at or below `idle_rps`; clears at the first sample that is not."""

    def __init__(self, busy_percent: float = 80.0, idle_rps: float = 0.2,
                 sustain: float = 300.0) -> None:  # fmt: skip
        self.busy_percent, self.idle_rps, self.sustain = busy_percent, idle_rps, sustain
        self._previous: float | None = None
        self._since: float | None = None  # start of the current busy-while-idle stretch
        self.alerting = False
        self.rate = 0.0

    def feed(self, when: float, utilisation: float, requests: int) -> Transition | None:
        """One sample: `requests` arrived since the previous sample (the first sets the clock)."""
        previous, self._previous = self._previous, when
        if previous is None or when <= previous:
            return None
        self.rate = requests / (when - previous)
        suspicious = utilisation >= self.busy_percent and self.rate <= self.idle_rps
        if not suspicious:
            self._since = None
            if self.alerting:
                self.alerting = False
                return Transition("cleared", utilisation, self.rate, 0.0)
            return None
        if self._since is None:
            self._since = previous  # busy over the whole interval that just ended
        busy = when - self._since
        if busy >= self.sustain and not self.alerting:
            self.alerting = True
            return Transition("detected", utilisation, self.rate, busy)
        return None


@dataclass(frozen=True, slots=True)
class HostSample:
    cpu_percent: float | None  # None: could not be read on this platform
    memory_percent: float | None
    # per device: (utilisation %, memory used %); None: the device stopped answering NVML
    gpus: tuple[tuple[float, float] | None, ...]


class _ProcCpu:
    """CPU utilisation from /proc/stat deltas (Linux without psutil)."""

    def __init__(self) -> None:
        self._last: tuple[int, int] | None = None

    def percent(self) -> float | None:
        try:
            fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
        except (OSError, IndexError):
            return None
        values = [int(v) for v in fields]
        idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
        total = sum(values[:8])  # steal included, guest already counted in user
        last, self._last = self._last, (idle, total)
        if last is None or total == last[1]:
            return None
        return 100.0 * (1 - (idle - last[0]) / (total - last[1]))


def _proc_memory() -> float | None:
    try:
        info = {k: int(v.split()[0]) for k, _, v in
                (line.partition(":") for line in Path("/proc/meminfo").read_text().splitlines())}  # fmt: skip
        return 100.0 * (1 - info["MemAvailable"] / info["MemTotal"])
    except (OSError, KeyError, ValueError, IndexError, ZeroDivisionError):
        return None


class HostSampler:
    """Reads the host's utilisation; every failure degrades to "unknown", never an error."""

    def __init__(self, *, gpu: bool = True) -> None:
        self.source = "psutil"
        try:  # imported by name: optional, and without type stubs
            psutil = importlib.import_module("psutil")
            self._psutil: Any = psutil
            psutil.cpu_percent(interval=None)  # the first call only starts the measurement
        except ImportError:
            self._psutil = None
            self.source = "/proc" if Path("/proc/stat").exists() else "unavailable"
        self._proc = _ProcCpu()
        if self._psutil is None:
            self._proc.percent()
        self._nvml: Any = None
        self._devices: list[Any] = []
        self.gpu_status = "disabled" if not gpu else self._open_nvml()

    def _open_nvml(self) -> str:
        try:
            pynvml = importlib.import_module("pynvml")  # nvidia-ml-py, optional
        except ImportError:
            return "no GPU (nvidia-ml-py not installed)"
        try:
            pynvml.nvmlInit()
            count = pynvml.nvmlDeviceGetCount()
            self._devices = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
        except Exception as exc:  # NVMLError of every kind: no driver, no device, no permission
            return f"no GPU ({type(exc).__name__})"
        self._nvml = pynvml
        return f"{len(self._devices)} GPU(s)" if self._devices else "no GPU"

    def sample(self) -> HostSample:
        if self._psutil is not None:
            cpu: float | None = float(self._psutil.cpu_percent(interval=None))
            memory: float | None = float(self._psutil.virtual_memory().percent)
        else:
            cpu, memory = self._proc.percent(), _proc_memory()
        gpus: list[tuple[float, float] | None] = []
        for handle in self._devices:
            try:
                rates = self._nvml.nvmlDeviceGetUtilizationRates(handle)
                mem = self._nvml.nvmlDeviceGetMemoryInfo(handle)
                gpus.append((float(rates.gpu), 100.0 * mem.used / max(mem.total, 1)))
            except Exception:  # a device that stops answering is unknown: neither idle nor a crash
                gpus.append(None)
        return HostSample(cpu, memory, tuple(gpus))

    def close(self) -> None:
        if self._nvml is not None:
            with contextlib.suppress(Exception):
                self._nvml.nvmlShutdown()
