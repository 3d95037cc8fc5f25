"""Runtime monitoring of the gateway: per-model circuits (errors, drift, cost budget), live drift
checks, host utilisation, alerts.

The request path touches this module only through O(1) calls: `ModelGuard.observe` (copy the rows
into a ring buffer), `CircuitBreaker.allow`, `CostBudget.spend`, `Monitor.count_request` and
`AlertSink.notify` (a queue put). Drift comparisons and host sampling run on one background thread;
its alerts are audited (hashes and numbers only) and sent to the webhook.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge

from secmlops.errors import Error, GatewayError
from secmlops.scan.data.drift_profile import Profile
from secmlops.serve.alerts import AlertSink
from secmlops.serve.breaker import CircuitBreaker, CostBudget
from secmlops.serve.config import GatewayConfig, ModelConfig
from secmlops.serve.drift_monitor import DriftMonitor, DriftStatus, load_reference
from secmlops.serve.host_monitor import BusyWhileIdle, HostSample, HostSampler

log = logging.getLogger("secmlops.serve.monitoring")

AuditSync = Callable[[str, str, str, dict[str, Any]], None]


@dataclass
class ModelGuard:
    """One served model's circuit, cost budget and drift monitor."""

    name: str
    breaker: CircuitBreaker
    budget: CostBudget | None = None
    drift: DriftMonitor | None = None
    drift_note: str = "no reference_profile configured"
    wake: threading.Event = field(default_factory=threading.Event)

    def observe(self, matrix: np.ndarray, scores: list[float] | None) -> None:
        """Feed the drift window (request path: a ring-buffer copy, no statistics)."""
        if self.drift is not None:
            self.drift.observe(matrix, scores)
            if self.drift.due():
                self.wake.set()

    def describe(self) -> dict[str, Any]:
        drift = (
            self.drift.describe()
            if self.drift
            else {"state": "not monitored", "reason": self.drift_note}
        )
        budget = None if self.budget is None else {"limit": self.budget.limit, "window": self.budget.window,
                                                   "spent": self.budget.spent}  # fmt: skip
        return {"circuit": self.breaker.describe(), "drift": drift, "budget": budget}


class Monitor:
    """Owns the guards, the alert sink, the host sampler and the background checker thread."""

    def __init__(self, config: GatewayConfig, metrics: CollectorRegistry, audit: AuditSync) -> None:
        self.config, self.audit = config, audit
        # Read first: a broken profile stops the gateway at start, before any thread exists.
        self.references: dict[str, Profile] = {
            m.name: load_reference(m.reference_profile)
            for m in config.models
            if m.reference_profile is not None
        }
        self.alerts = AlertSink(config.alerts.webhook_url, timeout=config.alerts.timeout,
                                queue_size=config.alerts.queue_size,
                                repeat_after=config.alerts.repeat_after,
                                secret=_webhook_secret(config.alerts.secret_env),
                                retries=config.alerts.retries)  # fmt: skip
        self.wake = threading.Event()
        self.guards: dict[str, ModelGuard] = {}
        self.requests = 0  # requests seen (predict and chat), read by the host monitor
        self._seen = 0  # `requests` at the previous host sample
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.host: HostSampler | None = None
        self.detectors: dict[str, BusyWhileIdle] = {}
        self.unreadable: set[str] = set()  # devices whose utilisation cannot be read now
        self._register_metrics(metrics)

    # -- setup ----------------------------------------------------------------------------------
    def _register_metrics(self, registry: CollectorRegistry) -> None:
        def gauge(name: str, text: str, labels: tuple[str, ...] = ()) -> Gauge:
            return Gauge(name, text, list(labels), registry=registry)

        self.alert_count = Counter(
            "secmlops_gateway_alerts",
            "Alerts raised (repeats within alerts.repeat_after are not)",
            ["alert"],
            registry=registry,
        )
        self.monitor_errors = Counter("secmlops_gateway_monitor_errors", "Background monitor failures",
                                      ["part"], registry=registry)  # fmt: skip
        sink = self.alerts
        gauge("secmlops_gateway_alert_failures", "Alert webhook deliveries that failed").set_function(
            lambda: sink.failures)  # fmt: skip
        gauge("secmlops_gateway_alerts_dropped", "Alerts dropped: the webhook queue was full").set_function(
            lambda: sink.dropped)  # fmt: skip
        self.drift_effect = gauge("secmlops_gateway_drift_effect", "Drift effect size of the last check",
                                  ("model", "feature", "measure"))  # fmt: skip
        self.drift_feature = gauge("secmlops_gateway_drift_feature_drifted",
                                   "1 when the feature drifted in the last check", ("model", "feature"))  # fmt: skip
        self.drift_model = gauge("secmlops_gateway_drift_detected", "1 while the model's inputs or "
                                 "predictions drift", ("model",))  # fmt: skip
        self.drift_rows = gauge(
            "secmlops_gateway_drift_window_rows", "Rows in the drift window", ("model",)
        )
        self.circuit = gauge(
            "secmlops_gateway_circuit_open", "1 while the circuit refuses traffic", ("target",)
        )
        self.cpu = gauge("secmlops_host_cpu_percent", "Host CPU utilisation")
        self.memory = gauge("secmlops_host_memory_percent", "Host memory in use")
        self.gpus = gauge("secmlops_host_gpus", "GPUs visible through NVML (0: no GPU)")
        self.gpu_util = gauge("secmlops_host_gpu_utilisation_percent", "GPU utilisation", ("gpu",))
        self.gpu_memory = gauge("secmlops_host_gpu_memory_percent", "GPU memory in use", ("gpu",))
        self.rate = gauge(
            "secmlops_gateway_request_rate", "Requests per second over the last host sample"
        )
        self.busy_idle = gauge("secmlops_host_busy_while_idle", "1 while a device is busy and traffic idle",
                               ("device",))  # fmt: skip

    def add_model(self, name: str, features: tuple[str, ...]) -> ModelGuard:
        """A guard for a loaded model (its drift monitor if a reference profile is configured)."""
        settings: ModelConfig = next(m for m in self.config.models if m.name == name)
        drift_settings = self.config.drift
        guard = ModelGuard(name, CircuitBreaker(settings.breaker_failures, settings.breaker_cooldown),
                           wake=self.wake)  # fmt: skip
        if settings.budget is not None:
            guard.budget = CostBudget(settings.budget.limit, settings.budget.window)
        reference = self.references.get(name)
        if reference is not None:
            try:
                guard.drift = DriftMonitor(features, reference, window=drift_settings.window,
                                           min_rows=min(drift_settings.min_rows, drift_settings.window),
                                           check_every=drift_settings.check_every,
                                           check_interval=drift_settings.check_interval,
                                           dataset_share=drift_settings.dataset_share,
                                           prediction_column=settings.prediction_column)  # fmt: skip
            except Error as exc:
                guard.drift_note = exc.message
                self.audit("gateway", "drift-monitor-refused", name, {"reason": exc.message})
        self.guards[name] = guard
        breaker = guard.breaker
        self.circuit.labels(name).set_function(lambda: float(breaker.state == "open"))
        return guard

    def watch_chat(self, breaker: CircuitBreaker) -> None:
        self.circuit.labels("chat").set_function(lambda: float(breaker.state == "open"))

    # -- alerts ---------------------------------------------------------------------------------
    def alert(self, alert: str, subject: str, details: dict[str, Any]) -> None:
        """Count and send an alert whose audit record the caller has written (O(1))."""
        if self.alerts.notify(alert, subject, details) != "repeat":
            self.alert_count.labels(alert).inc()

    def raise_alert(self, alert: str, subject: str, details: dict[str, Any]) -> None:
        """Audit then send an alert (background thread: waits for the audit commit)."""
        self.audit("gateway", alert, subject, details)
        self.alert(alert, subject, details)

    def hold(self, guard_name: str, breaker: CircuitBreaker, reason: str, seconds: float,
             details: dict[str, Any]) -> bool:  # fmt: skip
        """Hold a circuit open; audits and alerts `circuit-open` when it was closed (sync)."""
        if breaker.hold(reason, seconds):
            self.raise_alert("circuit-open", guard_name, {"reason": reason, **details})
            return True
        return False

    def reset(self, guard: ModelGuard) -> str:
        """An administrator's reset: close the circuit, refill the budget, restart the drift
        window. Returns the circuit state it had."""
        was = guard.breaker.state
        guard.breaker.reset()
        if guard.budget is not None:
            guard.budget.reset()
        if guard.drift is not None:
            guard.drift.restart()
            self._publish(guard.name, guard.drift.status)
        return was

    # -- background thread ----------------------------------------------------------------------
    def start(self) -> None:
        if self.config.host_monitor.enabled:
            self.host = HostSampler(gpu=self.config.host_monitor.gpu)
        self._thread = threading.Thread(target=self._run, name="gateway-monitor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.alerts.close()
        if self.host is not None:
            self.host.close()

    def _run(self) -> None:
        host = self.config.host_monitor
        tick = min(1.0, self.config.drift.check_interval, host.interval)
        next_host = time.monotonic()
        while not self._stop.is_set():
            self.wake.wait(tick)
            self.wake.clear()
            if self._stop.is_set():
                return
            for guard in list(self.guards.values()):
                if guard.drift is not None and guard.drift.due():
                    self._guarded("drift", lambda g=guard: self.check_drift(g))  # type: ignore[misc]
            if self.host is not None and time.monotonic() >= next_host:
                next_host = time.monotonic() + host.interval
                self._guarded("host", self.sample_host)

    def _guarded(self, part: str, work: Callable[[], object]) -> None:
        try:
            work()
        except Exception as exc:  # the monitor must outlive any one failure (audit store down...)
            self.monitor_errors.labels(part).inc()
            log.warning("gateway monitor (%s) failed: %s", part, exc)

    def check_drift(self, guard: ModelGuard) -> DriftStatus:
        """Run one drift check and act on a change of verdict (called by the monitor thread).

        The circuit is switched in the same step that makes the verdict visible (no one reads
        "ok" while the model is still held, nor "drift" while it still serves); the audit
        records and alerts follow."""
        assert guard.drift is not None
        stop = self.config.drift.action == "stop"
        change: dict[str, bool] = {}

        def switch(before: DriftStatus, after: DriftStatus) -> None:
            if after.state == "drift" and before.state != "drift":
                change["detected"] = True
                change["opened"] = stop and guard.breaker.hold("drift", float("inf"))
            elif after.state == "ok" and before.state == "drift":
                change["cleared"] = True
                change["closed"] = (
                    guard.breaker.release("drift") and guard.breaker.state == "closed"
                )

        status = guard.drift.check(inputs_only="drift" in guard.breaker.holds, on_publish=switch)
        self._publish(guard.name, status)
        details = {"rows": status.rows, "share": round(status.share, 4),
                   "drifted_features": status.drifted_features[:50],
                   "max_effect": round(max((max(f.wasserstein, f.psi, f.jensen_shannon)
                                            for f in status.features.values()), default=0.0), 4)}  # fmt: skip
        if change.get("detected"):
            self.alerts.forget("drift-cleared", guard.name)
            self.raise_alert(
                "drift-detected", guard.name, {**details, "action": self.config.drift.action}
            )
            if change["opened"]:
                self.raise_alert("circuit-open", guard.name, {"reason": "drift", **details})
        elif change.get("cleared"):
            self.alerts.forget("drift-detected", guard.name)
            self.raise_alert("drift-cleared", guard.name, details)
            if change["closed"]:
                self.audit("gateway", "circuit-closed", guard.name, {"reason": "drift cleared"})
        return status

    def _publish(self, model: str, status: DriftStatus) -> None:
        self.drift_rows.labels(model).set(status.rows)
        self.drift_model.labels(model).set(float(status.state == "drift"))
        for feature, score in status.features.items():
            self.drift_feature.labels(model, feature).set(float(score.drifted))
            for measure in ("wasserstein", "psi", "jensen_shannon"):
                self.drift_effect.labels(model, feature, measure).set(getattr(score, measure))

    def sample_host(self, when: float | None = None) -> HostSample:
        """Sample the host, update the gauges and feed the busy-while-idle detectors."""
        assert self.host is not None
        when = time.monotonic() if when is None else when
        sample = self.host.sample()
        requests, self._seen = self.requests - self._seen, self.requests
        devices: dict[str, float] = {}
        if sample.cpu_percent is not None:
            self.cpu.set(sample.cpu_percent)
            devices["cpu"] = sample.cpu_percent
        if sample.memory_percent is not None:
            self.memory.set(sample.memory_percent)
        self.gpus.set(len(sample.gpus))
        for i, reading in enumerate(sample.gpus):
            device = f"gpu{i}"
            if reading is None:
                # Not idle: unknown. A device that stops answering while it works (a miner that
                # broke the driver's reporting) must not pass for an idle one.
                self.gpu_util.labels(str(i)).set(float("nan"))
                self.gpu_memory.labels(str(i)).set(float("nan"))
                if device not in self.unreadable:
                    self.unreadable.add(device)
                    self.raise_alert("host-device-unreadable", device,
                                     {"reason": "NVML stopped answering for this device"})  # fmt: skip
                continue
            if device in self.unreadable:
                self.unreadable.discard(device)
                self.detectors.pop(device, None)  # the dark stretch counts as neither busy nor idle
                self.raise_alert(
                    "host-device-readable", device, {"utilisation": round(reading[0], 1)}
                )
            self.gpu_util.labels(str(i)).set(reading[0])
            self.gpu_memory.labels(str(i)).set(reading[1])
            devices[device] = reading[0]
        settings = self.config.host_monitor
        for device, utilisation in devices.items():
            detector = self.detectors.get(device)
            if detector is None:
                detector = self.detectors[device] = BusyWhileIdle(
                    settings.busy_percent, settings.idle_requests_per_second, settings.sustain
                )
            change = detector.feed(when, utilisation, requests)
            self.rate.set(detector.rate)
            self.busy_idle.labels(device).set(float(detector.alerting))
            if change is not None:
                self.raise_alert("host-anomaly" if change.event == "detected" else "host-anomaly-cleared",
                                 device, {"utilisation": round(change.utilisation, 1),
                                          "requests_per_second": round(change.requests_per_second, 3),
                                          "busy_seconds": round(change.busy_seconds, 1)})  # fmt: skip
        return sample

    def describe_host(self) -> dict[str, Any]:
        if self.host is None:
            return {"enabled": False}
        return {"enabled": True, "source": self.host.source, "gpu": self.host.gpu_status,
                "busy_while_idle": {d: det.alerting for d, det in self.detectors.items()},
                "unreadable": sorted(self.unreadable),
                "request_rate": round(next(iter(self.detectors.values())).rate, 3) if self.detectors else None}  # fmt: skip


def _webhook_secret(variable: str | None) -> bytes | None:
    """The webhook's HMAC key from the environment; a named but empty variable stops the start."""
    if variable is None:
        return None
    value = os.environ.get(variable, "")
    if not value:
        raise GatewayError(f"alerts.secret_env names {variable}, which is not set",
                           hint="export the webhook secret, or remove alerts.secret_env")  # fmt: skip
    return value.encode()
