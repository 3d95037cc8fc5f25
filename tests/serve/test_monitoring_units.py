"""Unit tests of the runtime monitors: circuit holds and cost budgets, the drift window and its
verdicts, the busy-while-idle detector, the host sampler, the alert webhook sender, and the monitor
that ties them to the audit log."""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, generate_latest

from secmlops.errors import GatewayError
from secmlops.scan.data.drift_profile import build_profile
from secmlops.serve.alerts import AlertSink
from secmlops.serve.breaker import CircuitBreaker, CostBudget
from secmlops.serve.config import GatewayConfig
from secmlops.serve.drift_monitor import DriftMonitor, _Ring, load_reference
from secmlops.serve.host_monitor import (
    BusyWhileIdle,
    HostSample,
    HostSampler,
    _proc_memory,
    _ProcCpu,
)
from secmlops.serve.monitoring import Monitor
from tests.serve.conftest import free_port

FEATURES = ("amount", "hour", "risk")


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _table(rng: np.random.Generator, n: int, shift: float = 0.0) -> pd.DataFrame:
    amount = rng.normal(50 + shift, 30, n).clip(0, None)
    risk = rng.beta(2, 8, n)
    return pd.DataFrame({"amount": amount, "hour": rng.integers(0, 24, n),
                         "risk": risk, "flag": rng.integers(0, 2, n),
                         "score": 1 / (1 + np.exp(-(amount - 50) / 30))})  # fmt: skip


@pytest.fixture(scope="module")
def reference() -> Any:
    return build_profile(_table(np.random.default_rng(1), 5000))


# -- circuit holds and budgets --------------------------------------------------------------------


def test_hold_keeps_the_circuit_open_until_released_or_reset() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failures=2, cooldown=10, clock=clock)
    assert breaker.hold("drift") and not breaker.allow() and breaker.state == "open"
    assert breaker.retry_after(unknown=42) == 42  # no deadline: the configured guess
    assert not breaker.hold("budget", 30)  # already open: not a new opening
    clock.now = 100
    assert "budget" in breaker.holds and not breaker.allow()  # expired holds go at the next look
    assert breaker.holds == {"drift": math.inf}
    assert breaker.release("drift") and not breaker.release("drift")
    assert breaker.allow() and breaker.state == "closed"
    breaker.record(False), breaker.record(False)
    breaker.hold("drift")
    breaker.reset()
    assert breaker.allow() and breaker.describe()["state"] == "closed"


def test_timed_hold_expires_and_reports_its_wait() -> None:
    clock = Clock()
    breaker = CircuitBreaker(clock=clock)
    breaker.hold("budget", 30)
    assert breaker.retry_after() == 31 and not breaker.allow()
    clock.now = 30
    assert breaker.allow() and breaker.holds == {}


def test_cost_budget_crosses_once_per_window() -> None:
    clock = Clock()
    budget = CostBudget(100, 60, clock=clock)
    assert not budget.spend(60) and not budget.spend(40)  # exactly the limit is allowed
    assert budget.spend(1)  # crossing
    assert not budget.spend(1)  # already over: not a new crossing
    clock.now = 59
    assert budget.remaining_window() == pytest.approx(1)
    clock.now = 130  # two windows later: a fresh budget
    assert budget.spent == 102 and not budget.spend(100) and budget.spent == 100
    assert budget.remaining_window() == pytest.approx(50)


# -- drift window -----------------------------------------------------------------------------


def test_ring_keeps_the_last_rows_in_order_of_arrival() -> None:
    ring = _Ring(5, 1)
    ring.extend(np.arange(3.0).reshape(-1, 1))
    ring.extend(np.arange(3.0, 7.0).reshape(-1, 1))
    assert sorted(ring.snapshot().ravel()) == [2, 3, 4, 5, 6]
    ring.extend(np.arange(10.0, 20.0).reshape(-1, 1))  # a batch larger than the window
    assert sorted(ring.snapshot().ravel()) == list(range(15, 20))
    ring.clear()
    assert len(ring.snapshot()) == 0


@given(size=st.integers(1, 12), batches=st.lists(st.integers(1, 30), max_size=12))
@settings(max_examples=60, deadline=None)
def test_ring_holds_exactly_the_last_rows(size: int, batches: list[int]) -> None:
    ring, scores, seen = _Ring(size, 2), _Ring(size, 1), []
    for n in batches:
        rows = np.arange(len(seen), len(seen) + n, dtype=float)
        seen += list(rows)
        ring.extend(np.column_stack([rows, -rows]))
        scores.extend(list(rows))
    expected = sorted(seen[-size:])
    assert sorted(ring.snapshot()[:, 0]) == expected and sorted(-ring.snapshot()[:, 1]) == expected
    assert sorted(scores.snapshot()[:, 0]) == expected


def _monitor(reference: Any, **kw: Any) -> DriftMonitor:
    return DriftMonitor(FEATURES, reference, window=1000, min_rows=300, check_every=3, **kw)


def _feed(monitor: DriftMonitor, frame: pd.DataFrame, scores: bool = True) -> None:
    for start in range(0, len(frame), 100):
        part = frame.iloc[start : start + 100]
        monitor.observe(part[list(FEATURES)].to_numpy(float),
                        part["score"].to_numpy() if scores else None)  # fmt: skip


def test_in_distribution_traffic_is_not_drift(reference: Any) -> None:
    monitor = _monitor(reference)
    _feed(monitor, _table(np.random.default_rng(2), 250))
    assert monitor.due() and monitor.check().state == "collecting"  # too few rows to judge
    _feed(monitor, _table(np.random.default_rng(3), 1500))
    status = monitor.check()
    assert status.state == "ok" and status.rows == 1000, status
    assert set(status.features) == {"amount", "hour", "risk", "score"}
    assert not status.drifted_features and not monitor.due()


def test_shifted_inputs_and_predictions_are_drift(reference: Any) -> None:
    monitor = _monitor(reference)
    _feed(monitor, _table(np.random.default_rng(4), 1000, shift=40))
    status = monitor.check()
    assert status.state == "drift"
    assert status.drifted_features == ["amount", "score"]
    assert status.features["amount"].wasserstein > 1.0 and status.features["hour"].wasserstein < 0.2
    described = json.dumps(monitor.describe())
    assert described.count("amount") == 1  # names and numbers only, no row


def test_a_reset_during_a_check_is_not_undone_by_its_verdict(
    reference: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from secmlops.scan.data.drift import compare

    monitor = _monitor(reference)
    _feed(monitor, _table(np.random.default_rng(4), 1000, shift=40))

    def compare_while_an_admin_resets(*args: Any, **kwargs: Any) -> Any:
        monitor.restart()  # the reset lands while the drifted window is being compared
        return compare(*args, **kwargs)

    target = "secmlops.serve.drift_monitor.compare"
    monkeypatch.setattr(target, compare_while_an_admin_resets)
    published: list[str] = []
    status = monitor.check(on_publish=lambda _before, after: published.append(after.state))
    assert status.state == "collecting" and published == []  # the stale verdict switches nothing
    assert monitor.status.state == "collecting" and monitor.status.rows == 0
    monkeypatch.setattr(target, compare)
    _feed(monitor, _table(np.random.default_rng(4), 1000, shift=40))
    assert monitor.check().state == "drift"  # fresh traffic is judged again


def test_prediction_drift_alone_is_drift(reference: Any) -> None:
    monitor = _monitor(reference)
    table = _table(np.random.default_rng(5), 1000)
    table["score"] = table["score"] ** 3  # a model swapped or broken: same inputs, other answers
    _feed(monitor, table)
    assert monitor.check().drifted_features == ["score"]
    assert monitor.check(inputs_only=True).state == "ok"  # the inputs alone are fine


def test_integer_categories_compare_with_json_floats(reference: Any) -> None:
    monitor = DriftMonitor(("amount", "flag"), reference, window=1000, min_rows=300)
    rows = _table(np.random.default_rng(6), 1000)[["amount", "flag"]].to_numpy(float)
    monitor.observe(rows, None)
    status = monitor.check()
    assert status.state == "ok" and status.features["flag"].jensen_shannon < 0.05


def test_restart_forgets_the_window(reference: Any) -> None:
    monitor = _monitor(reference)
    _feed(monitor, _table(np.random.default_rng(7), 500, shift=40))
    assert monitor.check().state == "drift"
    monitor.restart()
    assert monitor.status.state == "collecting" and monitor.check().rows == 0


def test_profile_without_the_model_features_is_refused(reference: Any) -> None:
    with pytest.raises(GatewayError, match="shares no column"):
        DriftMonitor(("x", "y"), reference)


@pytest.mark.parametrize("content", [b"", b"{\"format\": \"secmlops-drift-profile\"", b"\x00\xff" * 50,
                                     b'{"format": "secmlops-drift-profile", "version": 1}'])  # fmt: skip
def test_broken_reference_profiles_are_clear_errors(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "profile.json"
    path.write_bytes(content)
    with pytest.raises(GatewayError, match="reference profile"):
        load_reference(path)
    with pytest.raises(GatewayError, match="cannot read"):
        load_reference(tmp_path / "absent.json")


# -- busy while idle --------------------------------------------------------------------------


def _drive(detector: BusyWhileIdle, samples: list[tuple[float, float, int]]) -> list[str]:
    return [t.event for s in samples if (t := detector.feed(*s)) is not None]


def test_busy_device_with_idle_traffic_alerts_then_clears() -> None:
    detector = BusyWhileIdle(busy_percent=80, idle_rps=0.2, sustain=60)
    busy_idle = [(float(t), 97.0, 0) for t in range(0, 130, 10)]
    assert _drive(detector, busy_idle) == ["detected"]  # once, not at every sample
    assert detector.alerting
    assert _drive(detector, [(140.0, 5.0, 0)]) == ["cleared"]


def test_busy_device_serving_traffic_does_not_alert() -> None:
    detector = BusyWhileIdle(busy_percent=80, idle_rps=0.2, sustain=60)
    assert _drive(detector, [(float(t), 99.0, 500) for t in range(0, 600, 10)]) == []


def test_idle_device_does_not_alert() -> None:
    detector = BusyWhileIdle(busy_percent=80, idle_rps=0.2, sustain=60)
    assert _drive(detector, [(float(t), 3.0, 0) for t in range(0, 600, 10)]) == []


def test_brief_spikes_do_not_alert() -> None:
    detector = BusyWhileIdle(busy_percent=80, idle_rps=0.2, sustain=60)
    samples = [(float(t), 100.0 if (t // 10) % 4 else 10.0, 0) for t in range(0, 600, 10)]
    assert _drive(detector, samples) == []  # 30 s busy stretches, each broken by an idle sample


def test_host_sampler_reads_this_host_and_reports_no_gpu_plainly() -> None:
    sampler = HostSampler(gpu=True)
    sample = sampler.sample()
    assert sample.memory_percent is None or 0 <= sample.memory_percent <= 100
    assert sample.cpu_percent is None or 0 <= sample.cpu_percent <= 100
    try:
        import pynvml  # noqa: F401
    except ImportError:
        assert sampler.gpu_status == "no GPU (nvidia-ml-py not installed)" and sample.gpus == ()
    assert HostSampler(gpu=False).gpu_status == "disabled"
    sampler.close()


@pytest.mark.skipif(not Path("/proc/stat").exists(), reason="/proc is Linux only")
def test_proc_fallback_reads_cpu_and_memory() -> None:
    cpu = _ProcCpu()
    assert cpu.percent() is None  # the first reading only starts the measurement
    sum(i * i for i in range(200_000))
    second = cpu.percent()
    assert second is None or 0 <= second <= 100
    memory = _proc_memory()
    assert memory is not None and 0 < memory < 100


# -- alert webhook ----------------------------------------------------------------------------


class Hook(BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, Any]]] = []
    raw: ClassVar[list[tuple[dict[str, str], bytes]]] = []  # headers and body of every POST
    fail_first: ClassVar[list[int]] = []  # statuses to answer before accepting
    gate: ClassVar[threading.Event] = threading.Event()

    def do_POST(self) -> None:
        Hook.gate.wait(10)
        data = self.rfile.read(int(self.headers["Content-Length"]))
        Hook.raw.append((dict(self.headers), data))
        if Hook.fail_first:
            self.send_response(Hook.fail_first.pop(0))
            self.end_headers()
            return
        Hook.received.append(json.loads(data))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def hook() -> Iterator[str]:
    Hook.received.clear()
    Hook.raw.clear()
    Hook.fail_first.clear()
    Hook.gate.set()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/alerts"
    Hook.gate.set()
    server.shutdown()


def test_webhook_receives_json_and_repeats_are_suppressed(hook: str) -> None:
    clock = Clock()
    sink = AlertSink(hook, repeat_after=60, clock=clock)
    assert sink.notify("drift-detected", "fraud", {"share": 0.5}) == "queued"
    assert sink.notify("drift-detected", "fraud", {"share": 0.6}) == "repeat"  # quiet
    assert sink.notify("drift-detected", "other", {"share": 0.5}) == "queued"
    clock.now = 61
    assert sink.notify("drift-detected", "fraud", {"share": 0.7}) == "queued"
    sink.close()
    assert [(b["alert"], b["subject"], b["details"]["share"]) for b in Hook.received] == [
        ("drift-detected", "fraud", 0.5), ("drift-detected", "other", 0.5), ("drift-detected", "fraud", 0.7)]  # fmt: skip
    assert sink.sent == 3 and sink.failures == 0 and sink.suppressed == 1


def test_webhook_posts_are_signed_with_the_secret(hook: str) -> None:
    import hashlib
    import hmac

    sink = AlertSink(hook, secret=b"s3cret", repeat_after=0)
    sink.notify("circuit-open", "fraud", {"reason": "errors"})
    sink.close()
    (headers, data), = Hook.raw  # fmt: skip
    stamp = headers["X-Secmlops-Timestamp"]
    expected = hmac.new(b"s3cret", stamp.encode() + b"." + data, hashlib.sha256).hexdigest()
    assert headers["X-Secmlops-Signature"] == f"sha256={expected}"
    assert abs(int(stamp) - time.time()) < 60
    forged = hmac.new(b"other", stamp.encode() + b"." + data, hashlib.sha256).hexdigest()
    assert headers["X-Secmlops-Signature"] != f"sha256={forged}"


def test_webhook_retries_server_errors_but_not_refusals(hook: str) -> None:
    Hook.fail_first.extend([503, 429])  # two transient failures, then accepted
    sink = AlertSink(hook, repeat_after=0, retries=2)
    sink.notify("drift-detected", "fraud", {})
    sink.close(wait=10)
    assert (sink.sent, sink.failures, len(Hook.raw)) == (1, 0, 3)
    Hook.raw.clear()
    Hook.fail_first.extend([400])  # the receiver refuses it: no point in sending again
    sink = AlertSink(hook, repeat_after=0, retries=2)
    sink.notify("drift-detected", "fraud", {})
    sink.close(wait=10)
    assert (sink.sent, sink.failures, len(Hook.raw)) == (0, 1, 1)


def test_dead_webhook_is_counted_never_raised(caplog: pytest.LogCaptureFixture) -> None:
    sink = AlertSink(f"http://127.0.0.1:{free_port()}/", timeout=0.5, repeat_after=0, retries=1)
    for i in range(3):
        assert sink.notify("host-anomaly", f"cpu{i}", {}) == "queued"
    sink.close(wait=5)
    assert sink.failures == 3 and sink.sent == 0
    assert sum("alert webhook failed" in r.message for r in caplog.records) == 1  # logged once


def test_slow_webhook_never_blocks_the_caller(hook: str) -> None:
    Hook.gate.clear()  # the webhook hangs until released
    sink = AlertSink(hook, queue_size=2, repeat_after=0)
    results = [sink.notify("extraction-block", f"c{i}", {}) for i in range(6)]
    assert results.count("dropped") >= 3 and sink.dropped == results.count("dropped")
    Hook.gate.set()
    sink.close(wait=5)
    assert sink.sent == results.count("queued")


def test_no_webhook_means_no_thread() -> None:
    sink = AlertSink(None)
    assert sink.notify("drift-detected", "m", {}) == "no-webhook" and sink._thread is None
    sink.close()


# -- the monitor: verdict changes become audit records, alerts and circuit holds --------------


def _config(tmp_path: Path, reference_path: Path | None, **kw: Any) -> GatewayConfig:
    return GatewayConfig.model_validate({
        "issuer": "i", "audience": "a", "token_keys": ["k.pub"], "trust_key": "t.pub",
        "models": [{"name": "fraud", "tenants": ["t"], "reference_profile": reference_path}],
        "drift": {"window": 1000, "min_rows": 300, "action": "stop"}, **kw})  # fmt: skip


def test_monitor_stops_a_drifting_model_and_resumes_when_it_clears(
    tmp_path: Path, reference: Any
) -> None:
    path = tmp_path / "profile.json"
    path.write_text(reference.to_json())
    records: list[tuple[str, str, dict[str, Any]]] = []
    seen: dict[str, tuple[str, str]] = {}  # what a reader saw when each record was written

    def audit(_actor: str, action: str, subject: str, p: dict[str, Any]) -> None:
        records.append((action, subject, p))
        assert guard.drift is not None
        seen[action] = (guard.drift.status.state, guard.breaker.state)

    metrics = CollectorRegistry()
    monitor = Monitor(_config(tmp_path, path), metrics, audit)
    guard = monitor.add_model("fraud", FEATURES)
    assert guard.drift is not None
    _feed(guard.drift, _table(np.random.default_rng(8), 1000, shift=40))
    monitor.check_drift(guard)
    assert [r[0] for r in records] == ["drift-detected", "circuit-open"]
    assert (
        records[0][2]["drifted_features"] == ["amount", "score"]
        and records[1][2]["reason"] == "drift"
    )
    assert not guard.breaker.allow()
    text = generate_latest(metrics).decode()
    assert 'secmlops_gateway_drift_detected{model="fraud"} 1.0' in text
    assert 'secmlops_gateway_drift_feature_drifted{feature="amount",model="fraud"} 1.0' in text
    assert 'secmlops_gateway_circuit_open{target="fraud"} 1.0' in text
    # While stopped only inputs arrive (refused requests); clean inputs clear the drift.
    _feed(guard.drift, _table(np.random.default_rng(9), 1000), scores=False)
    monitor.check_drift(guard)
    assert [r[0] for r in records][2:] == ["drift-cleared", "circuit-closed"]
    assert guard.breaker.allow()
    # The circuit switches with the verdict: "ok" is never visible while the model is still
    # held, nor "drift" while it still serves (CI once caught a request refused after "ok").
    assert seen["drift-detected"] == ("drift", "open")
    assert seen["drift-cleared"] == ("ok", "closed")
    assert json.dumps(records).count("e+") == 0  # numbers rounded, no raw rows


def test_model_without_reference_has_no_drift_monitor(tmp_path: Path) -> None:
    monitor = Monitor(_config(tmp_path, None), CollectorRegistry(), lambda *a: None)
    guard = monitor.add_model("fraud", FEATURES)
    assert guard.drift is None
    assert guard.describe()["drift"] == {
        "state": "not monitored",
        "reason": "no reference_profile configured",
    }


def test_unusable_reference_is_reported_not_fatal_at_model_load(
    tmp_path: Path, reference: Any
) -> None:
    path = tmp_path / "profile.json"
    path.write_text(reference.to_json())
    records: list[str] = []
    monitor = Monitor(
        _config(tmp_path, path), CollectorRegistry(), lambda _a, action, *_: records.append(action)
    )
    guard = monitor.add_model("fraud", ("other", "columns"))
    assert guard.drift is None and "shares no column" in guard.describe()["drift"]["reason"]
    assert records == ["drift-monitor-refused"]


class FakeHost:
    source, gpu_status = "fake", "1 GPU(s)"

    def __init__(self) -> None:
        self.cpu = 99.0

    def sample(self) -> HostSample:
        return HostSample(self.cpu, 40.0, ((95.0, 50.0),))

    def close(self) -> None:
        pass


def _host_monitor(tmp_path: Path) -> tuple[Monitor, CollectorRegistry, list[tuple[str, str]]]:
    """A monitor with a 20 s busy-while-idle window, its metrics and the (action, subject) of
    every alert it raises."""
    records: list[tuple[str, str]] = []
    metrics = CollectorRegistry()
    config = _config(tmp_path, None, host_monitor={"sustain": 20, "interval": 5})
    monitor = Monitor(
        config, metrics, lambda _a, action, subject, _p: records.append((action, subject))
    )
    return monitor, metrics, records


def test_monitor_alerts_on_busy_host_with_idle_traffic(tmp_path: Path) -> None:
    monitor, metrics, records = _host_monitor(tmp_path)
    fake = FakeHost()
    monitor.host = fake  # type: ignore[assignment]
    for t in range(0, 40, 5):
        monitor.sample_host(float(t))
    assert sorted(records) == [("host-anomaly", "cpu"), ("host-anomaly", "gpu0")]
    text = generate_latest(metrics).decode()
    assert (
        'secmlops_host_busy_while_idle{device="gpu0"} 1.0' in text
        and "secmlops_host_gpus 1.0" in text
    )
    monitor.requests += 1000  # traffic arrives: the load is explained
    monitor.sample_host(45.0)
    assert ("host-anomaly-cleared", "cpu") in records
    assert monitor.describe_host()["busy_while_idle"] == {"cpu": False, "gpu0": False}


def test_a_gpu_that_stops_answering_is_alerted_not_taken_for_idle(tmp_path: Path) -> None:
    monitor, metrics, records = _host_monitor(tmp_path)
    fake = FakeHost()
    fake.cpu = 5.0
    readings: list[tuple[float, float] | None] = [(10.0, 5.0), None, None, None, (97.0, 60.0)]
    fake.sample = lambda: HostSample(fake.cpu, 40.0, (readings.pop(0),))  # type: ignore[method-assign]
    monitor.host = fake  # type: ignore[assignment]
    for t in range(0, 25, 5):
        monitor.sample_host(float(t))
        if t == 10:
            assert monitor.describe_host()["unreadable"] == ["gpu0"]
            text = generate_latest(metrics).decode()
            assert 'secmlops_host_gpu_utilisation_percent{gpu="0"} NaN' in text
    # One alert when it goes dark (not one per sample), one when it answers again.
    assert records == [("host-device-unreadable", "gpu0"), ("host-device-readable", "gpu0")]
    assert monitor.describe_host()["unreadable"] == []


def test_gateway_config_rejects_bad_monitoring_settings(tmp_path: Path) -> None:
    from pydantic import ValidationError

    for bad in ({"drift": {"action": "panic"}}, {"alerts": {"webhook_url": "file:///etc/passwd"}},
                {"drift": {"window": 10}}, {"host_monitor": {"busy_percent": 150}}):  # fmt: skip
        with pytest.raises(ValidationError):
            _config(tmp_path, None, **bad)


def test_webhook_secret_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from secmlops.errors import GatewayError
    from secmlops.serve.monitoring import _webhook_secret

    assert _webhook_secret(None) is None
    monkeypatch.setenv("HOOK_KEY", "abc")
    assert _webhook_secret("HOOK_KEY") == b"abc"
    monkeypatch.delenv("HOOK_KEY")
    with pytest.raises(GatewayError, match="HOOK_KEY"):
        _webhook_secret("HOOK_KEY")
