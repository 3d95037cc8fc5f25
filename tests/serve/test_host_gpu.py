"""The GPU side of the host sampler, read through a stand-in for NVML (`nvidia-ml-py`'s `pynvml`).

No GPU exists on the test machines; the stand-in answers the same NVML calls the sampler makes,
with the shapes nvidia-ml-py returns, so the reading code and its failure handling are exercised.
"""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass

import pytest

from secmlops.serve.host_monitor import HostSampler


class NVMLError(Exception):
    """Like pynvml.NVMLError: raised for no driver, no device, lost device."""


@dataclass
class _Rates:
    gpu: int
    memory: int


@dataclass
class _Memory:
    total: int
    used: int
    free: int


def _fake_nvml(
    devices: list[tuple[int, int, int]] | None, *, lost: set[int] | None = None
) -> types.ModuleType:
    """A pynvml stand-in: `devices` as (utilisation %, used bytes, total bytes); None: no driver."""
    module = types.ModuleType("pynvml")
    calls: list[str] = []

    def init() -> None:
        calls.append("init")
        if devices is None:
            raise NVMLError("Driver Not Loaded")

    def rates(handle: int) -> _Rates:
        if lost and handle in lost:
            raise NVMLError("GPU is lost")
        return _Rates(devices[handle][0], 0)  # type: ignore[index]

    def memory(handle: int) -> _Memory:
        used, total = devices[handle][1], devices[handle][2]  # type: ignore[index]
        return _Memory(total, used, total - used)

    module.NVMLError = NVMLError  # type: ignore[attr-defined]
    module.nvmlInit = init  # type: ignore[attr-defined]
    module.nvmlDeviceGetCount = lambda: len(devices or [])  # type: ignore[attr-defined]
    module.nvmlDeviceGetHandleByIndex = lambda i: i  # type: ignore[attr-defined]
    module.nvmlDeviceGetUtilizationRates = rates  # type: ignore[attr-defined]
    module.nvmlDeviceGetMemoryInfo = memory  # type: ignore[attr-defined]
    module.nvmlShutdown = lambda: calls.append("shutdown")  # type: ignore[attr-defined]
    module.calls = calls  # type: ignore[attr-defined]
    return module


def test_each_device_is_read_as_utilisation_and_memory_share(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = _fake_nvml([(97, 8 * 2**30, 16 * 2**30), (3, 1 * 2**30, 4 * 2**30)])
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    sampler = HostSampler(gpu=True)
    assert sampler.gpu_status == "2 GPU(s)"
    assert sampler.sample().gpus == ((97.0, 50.0), (3.0, 25.0))
    sampler.close()
    assert fake.calls == ["init", "shutdown"]


def test_no_driver_is_reported_plainly_and_sampling_goes_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", _fake_nvml(None))
    sampler = HostSampler(gpu=True)
    assert sampler.gpu_status == "no GPU (NVMLError)"
    assert sampler.sample().gpus == ()


def test_a_device_that_stops_answering_does_not_stop_the_sampler(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", _fake_nvml([(90, 1, 2), (80, 1, 4)], lost={0}))
    sampler = HostSampler(gpu=True)
    assert sampler.sample().gpus == (None, (80.0, 25.0))  # unknown, not idle


def test_gpu_off_never_touches_nvml(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = _fake_nvml([(50, 1, 2)])
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    sampler = HostSampler(gpu=False)
    assert sampler.gpu_status == "disabled" and sampler.sample().gpus == ()
    assert fake.calls == []
