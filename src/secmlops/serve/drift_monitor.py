"""Live drift of a served model's inputs and predicted scores against its training reference.

The request path only copies the validated rows (and the predicted scores) into fixed-size ring
buffers: O(rows), no allocation, no statistics. A background thread calls `check` every
`check_every` requests or `check_interval` seconds; it snapshots the window and compares it with the
stored reference profile (`secmlops.scan.data.drift.compare`: normalised Wasserstein, PSI and
Jensen-Shannon effect sizes confirmed by a Benjamini-Hochberg corrected test). Raw rows never leave
the buffers: the verdict, effect sizes and the window's size are all that is reported.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from secmlops.errors import DataError, GatewayError
from secmlops.scan.data.drift import DriftResult, DriftThresholds, compare
from secmlops.scan.data.drift_profile import OTHER, Profile, load_profile


class _Ring:
    """The last `size` rows of a stream, in a preallocated array."""

    __slots__ = ("data", "stored")

    def __init__(self, size: int, width: int) -> None:
        self.data = np.empty((size, width))
        self.stored = 0  # rows ever written; the write position is stored % size

    def extend(self, rows: np.ndarray | list[float]) -> None:
        """Copy rows in (a (n, width) array, or n scalars for a width-1 ring)."""
        size, n = len(self.data), len(rows)
        start = self.stored % size
        if start + n <= size:  # the usual case: one slice assignment
            if isinstance(rows, np.ndarray) and rows.ndim == 2:
                self.data[start : start + n] = rows
            else:  # scores: a list or a 1-D array into a width-1 ring
                self.data[start : start + n, 0] = rows
        else:
            rows = np.asarray(rows, dtype=float).reshape(n, -1)[-size:]
            start = (self.stored + n - len(rows)) % size  # where the first row kept belongs
            first = min(len(rows), size - start)
            self.data[start : start + first] = rows[:first]
            self.data[: len(rows) - first] = rows[first:]
        self.stored += n

    def snapshot(self) -> np.ndarray:
        return self.data[: min(self.stored, len(self.data))].copy()

    def clear(self) -> None:
        self.stored = 0


@dataclass(frozen=True, slots=True)
class FeatureScore:
    """Effect sizes of one monitored column in the last check."""

    drifted: bool
    wasserstein: float = 0.0  # numeric columns
    psi: float = 0.0
    jensen_shannon: float = 0.0  # categorical columns


@dataclass(frozen=True, slots=True)
class DriftStatus:
    """The outcome of one check."""

    state: str  # "collecting" (too few rows), "ok", "drift"
    rows: int
    features: dict[str, FeatureScore] = field(default_factory=dict)
    share: float = 0.0
    checked_at: float = 0.0

    @property
    def drifted_features(self) -> list[str]:
        return sorted(name for name, f in self.features.items() if f.drifted)


def _scores(result: DriftResult) -> dict[str, FeatureScore]:
    return {
        f.name: FeatureScore(
            f.drifted,
            f.effects.get("wasserstein", 0.0) if f.kind != "categorical" else 0.0,
            f.effects.get("psi", 0.0),
            f.effects.get("jensen_shannon", 0.0),
        )
        for f in result.features
    }


class DriftMonitor:
    """One model's rolling window and drift verdict."""

    def __init__(self, features: Sequence[str], reference: Profile, *, window: int = 5000,
                 min_rows: int = 500, check_every: int = 500, check_interval: float = 60.0,
                 dataset_share: float = 0.3, prediction_column: str = "score",
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        monitored = [f for f in features if f in reference.columns]
        if not monitored:
            raise GatewayError(
                "the reference profile shares no column with the model's features "
                f"{list(features)[:10]}",
                hint="profile the training table with `secmlops monitor profile`",
            )
        self.features = tuple(features)
        columns = [self.features.index(f) for f in monitored]
        # every feature, in order: the request's matrix is copied as it is (no fancy indexing)
        self._columns = None if columns == list(range(len(features))) else columns
        self.inputs_reference = Profile(
            reference.rows, {f: reference.columns[f] for f in monitored}
        )
        self._integer_categories = [
            f for f in monitored if reference.columns[f].kind == "categorical"
            and all(k.lstrip("-").isdigit() for k in reference.columns[f].categories if k != OTHER)
        ]  # fmt: skip
        self.prediction_column = prediction_column
        prediction = reference.columns.get(prediction_column)
        self.scores_reference = (
            Profile(reference.rows, {prediction_column: prediction})
            if prediction is not None and prediction_column not in features
            else None
        )
        self.min_rows, self.check_every, self.check_interval = min_rows, check_every, check_interval
        self.thresholds = DriftThresholds(dataset_share=dataset_share)
        self.clock = clock
        self._lock = threading.Lock()
        self._inputs = _Ring(window, len(monitored))
        self._scores = _Ring(window, 1)
        self._since_check = 0
        self._last_check = clock()
        self._generation = 0  # bumped by restart: a check of an older window must not publish
        self.status = DriftStatus("collecting", 0)

    # -- request path ---------------------------------------------------------------------------
    def observe(self, matrix: np.ndarray, scores: list[float] | None) -> None:
        """Append a request's validated rows (and its predicted scores, when it was served)."""
        rows = matrix if self._columns is None else matrix[:, self._columns]
        with self._lock:
            self._inputs.extend(rows)
            if scores is not None:
                self._scores.extend(scores)
            self._since_check += 1

    def due(self) -> bool:
        """Has enough traffic or time passed since the last check? (Cheap: read by the checker.)"""
        return self._since_check >= self.check_every or (
            self._since_check > 0 and self.clock() - self._last_check >= self.check_interval
        )

    # -- background -----------------------------------------------------------------------------
    def check(
        self,
        *,
        inputs_only: bool = False,
        on_publish: Callable[[DriftStatus, DriftStatus], None] | None = None,
    ) -> DriftStatus:
        """Compare the window with the reference. `inputs_only` ignores the scores (used while
        the model is stopped: refused requests still bring inputs, never scores).

        `on_publish(before, after)` runs under the monitor's lock just before the new verdict
        becomes visible, so that what it switches (a circuit hold: in memory, no I/O) is in
        place by the time anyone can read the verdict; it does not run for a discarded one."""
        import pandas as pd

        with self._lock:
            inputs, scores = self._inputs.snapshot(), self._scores.snapshot()
            self._since_check, self._last_check = 0, self.clock()
            generation = self._generation
        if len(inputs) < self.min_rows:
            status = DriftStatus("collecting", len(inputs), checked_at=time.time())
            return self._settle(generation, status, on_publish)
        frame = pd.DataFrame(inputs, columns=list(self.inputs_reference.columns))
        for name in self._integer_categories:
            # JSON numbers arrive as floats; a reference profiled from integers counts "1", not "1.0"
            column = frame[name]
            if (column == column.round()).all():
                frame[name] = column.astype("int64")
        try:
            result = compare(self.inputs_reference, frame, self.thresholds)
            features = _scores(result)
            drifted, share = result.dataset_drift, result.share
            if (
                self.scores_reference is not None
                and not inputs_only
                and len(scores) >= self.min_rows
            ):
                frame = pd.DataFrame(scores, columns=[self.prediction_column])
                predicted = compare(self.scores_reference, frame, self.thresholds)
                features.update(_scores(predicted))
                drifted = drifted or bool(predicted.drifted)
        except DataError as exc:  # a reference the window cannot be compared with: say so
            raise GatewayError(f"drift check failed: {exc.message}") from exc
        status = DriftStatus(
            "drift" if drifted else "ok", len(inputs), features, share, time.time()
        )
        return self._settle(generation, status, on_publish)

    def _settle(
        self,
        generation: int,
        status: DriftStatus,
        on_publish: Callable[[DriftStatus, DriftStatus], None] | None,
    ) -> DriftStatus:
        """Publish STATUS unless the window was restarted while it was computed: a reset made
        during a check is not undone by that check's verdict on the traffic before it."""
        with self._lock:
            if generation == self._generation:
                if on_publish is not None:
                    on_publish(self.status, status)
                self.status = status
            return self.status

    def restart(self) -> None:
        """Forget the window (after an administrator's reset): judge fresh traffic only."""
        with self._lock:
            self._inputs.clear()
            self._scores.clear()
            self._since_check = 0
            self._generation += 1
            self.status = DriftStatus("collecting", 0)

    def describe(self) -> dict[str, object]:
        """Numbers only, for the admin endpoint."""
        s = self.status
        return {
            "state": s.state,
            "window_rows": s.rows,
            "min_rows": self.min_rows,
            "drifted_features": s.drifted_features,
            "share": round(s.share, 4),
            "prediction_reference": self.scores_reference is not None,
            "last_check": s.checked_at or None,
        }


def load_reference(path: Path) -> Profile:
    """A model's reference profile; a GatewayError (the gateway does not start) if unreadable."""
    try:
        return load_profile(path)
    except DataError as exc:
        raise GatewayError(f"reference profile: {exc.message}", hint=exc.hint) from exc
