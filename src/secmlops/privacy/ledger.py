"""A differential-privacy budget ledger per data set.

The ledger is one JSON file per data set: the caps on total epsilon and delta set at init, and one
entry per release (mechanism and its parameters, epsilon, delta, the accountant that computed it,
time). Spends that would exceed a cap are refused. Epsilon is recomputed independently from the
mechanism parameters with Google's dp-accounting (RDP, and the tighter PLD accountant when a claim
is below the RDP figure); a claimed epsilon below the recomputed one is refused. Totals use basic
composition (sums), which is conservative. Writes are atomic (temporary file, fsync, rename) under
an exclusive lock so two spends cannot lose one another.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import math
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from secmlops.errors import DataError, UsageError, first_problem
from secmlops.findings import Finding, Location
from secmlops.scan.data import stats_rules as R

LEDGER_FORMAT = "secmlops-privacy-ledger"
LEDGER_VERSION = 1
EPSILON_WARNING = 10.0
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_PLD_DISCRETISATION = 1e-3  # pessimistic discretisation: an upper bound, and fast
_CLAIM_TOLERANCE = 1e-3  # relative: accountants' numerical noise is not an understated claim

MechanismKind = Literal["gaussian", "laplace", "dpsgd", "custom"]
MECHANISMS: tuple[str, ...] = ("gaussian", "laplace", "dpsgd", "custom")


@dataclass(frozen=True, slots=True)
class Mechanism:
    """What was released: `noise_multiplier` is noise scale over sensitivity (sigma for the
    Gaussian, b for Laplace); `steps` the number of compositions (releases, or DP-SGD steps)."""

    kind: MechanismKind
    noise_multiplier: float | None = None
    sampling_rate: float | None = None
    steps: int = 1

    def validate(self) -> None:
        if self.kind not in MECHANISMS:
            raise UsageError(
                f"unknown mechanism {self.kind!r}", hint=f"use one of: {', '.join(MECHANISMS)}"
            )
        if self.steps < 1:
            raise UsageError("--steps must be at least 1")
        if self.kind == "custom":
            return
        if self.noise_multiplier is None or not self.noise_multiplier > 0:
            raise UsageError(f"mechanism {self.kind} needs --noise-multiplier > 0")
        if self.kind == "dpsgd" and not (
            self.sampling_rate is not None and 0 < self.sampling_rate <= 1
        ):
            raise UsageError("mechanism dpsgd needs --sampling-rate in (0, 1]")


@dataclass(frozen=True, slots=True)
class Entry:
    """One recorded release."""

    time: str
    mechanism: MechanismKind
    noise_multiplier: float | None
    sampling_rate: float | None
    steps: int
    epsilon: float  # what counts against the budget: max(claimed, recomputed)
    delta: float
    accountant: str
    claimed_epsilon: float | None = None
    recomputed_epsilon: float | None = None
    note: str = ""


@dataclass(frozen=True, slots=True)
class Ledger:
    """A data set's caps and entries."""

    dataset: str
    epsilon_cap: float
    delta_cap: float
    rows: int | None
    created: str
    entries: tuple[Entry, ...] = ()

    @property
    def spent_epsilon(self) -> float:
        return math.fsum(e.epsilon for e in self.entries)

    @property
    def spent_delta(self) -> float:
        return math.fsum(e.delta for e in self.entries)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": LEDGER_FORMAT,
            "version": LEDGER_VERSION,
            "dataset": self.dataset,
            "epsilon_cap": self.epsilon_cap,
            "delta_cap": self.delta_cap,
            "rows": self.rows,
            "created": self.created,
            "entries": [asdict(e) for e in self.entries],
        }


def ledger_path(store: Path, dataset: str) -> Path:
    """Where the ledger of `dataset` lives under `store` (names are checked: no paths)."""
    if not _NAME.fullmatch(dataset):
        raise UsageError(
            f"invalid data set name {dataset!r}",
            hint="use letters, digits, '.', '_' and '-' (at most 128 characters)",
        )
    return store / f"{dataset}.ledger.json"


def _parse(data: Any, path: Path) -> Ledger:
    from pydantic import BaseModel, ConfigDict, Field, ValidationError

    class EntrySchema(BaseModel):
        model_config = ConfigDict(extra="forbid")
        time: str
        mechanism: Literal["gaussian", "laplace", "dpsgd", "custom"]
        noise_multiplier: float | None = Field(default=None, gt=0)
        sampling_rate: float | None = Field(default=None, gt=0, le=1)
        steps: int = Field(ge=1)
        epsilon: float = Field(ge=0, allow_inf_nan=False)
        delta: float = Field(ge=0, le=1)
        accountant: str
        claimed_epsilon: float | None = Field(default=None, ge=0, allow_inf_nan=False)
        recomputed_epsilon: float | None = Field(default=None, ge=0, allow_inf_nan=False)
        note: str = ""

    class Schema(BaseModel):
        model_config = ConfigDict(extra="forbid")
        format: Literal["secmlops-privacy-ledger"]
        version: Literal[1]
        dataset: str
        epsilon_cap: float = Field(gt=0, allow_inf_nan=False)
        delta_cap: float = Field(ge=0, lt=1)
        rows: int | None = Field(default=None, ge=1)
        created: str
        entries: list[EntrySchema]

    try:
        parsed = Schema.model_validate(data)
    except ValidationError as exc:
        raise DataError(
            f"{path}: damaged privacy ledger ({first_problem(exc)})",
            hint="restore the ledger from version control or a backup; never edit it by hand",
        ) from None
    return Ledger(
        parsed.dataset,
        parsed.epsilon_cap,
        parsed.delta_cap,
        parsed.rows,
        parsed.created,
        tuple(Entry(**e.model_dump()) for e in parsed.entries),
    )


def load_ledger(path: Path) -> Ledger:
    """Read and validate a ledger; DataError when it is missing or damaged."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(
            f"no privacy ledger at {path}",
            hint="create one with `secmlops data budget init DATASET --epsilon E --delta D`",
        ) from None
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from exc
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(
            f"{path}: damaged privacy ledger (not JSON: {exc})",
            hint="restore the ledger from version control or a backup; never edit it by hand",
        ) from None
    return _parse(data, path)


def _write_atomic(path: Path, ledger: Ledger) -> None:
    text = json.dumps(ledger.to_dict(), indent=2, allow_nan=False) + "\n"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        with contextlib.suppress(OSError):  # make the rename durable where directories fsync
            dir_fd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
    except OSError as exc:
        raise DataError(f"cannot write {path}: {exc.strerror or exc}") from exc


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock beside the ledger, so concurrent spends serialise (POSIX)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: atomic rename only
        yield
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = (path.parent / f".{path.name}.lock").open("a")
    except OSError as exc:
        raise DataError(f"cannot lock {path}: {exc.strerror or exc}") from exc
    with handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def init_ledger(
    path: Path, dataset: str, epsilon_cap: float, delta_cap: float, rows: int | None = None
) -> Ledger:
    """Create a new ledger; an existing one is never replaced."""
    if not (math.isfinite(epsilon_cap) and epsilon_cap > 0):
        raise UsageError("--epsilon (the total cap) must be a positive number")
    if not (0 <= delta_cap < 1):
        raise UsageError("--delta (the total cap) must be in [0, 1)")
    if rows is not None and rows < 1:
        raise UsageError("--rows must be at least 1")
    ledger = Ledger(dataset, float(epsilon_cap), float(delta_cap), rows, _now())
    with _locked(path):
        if path.exists():
            raise DataError(
                f"a privacy ledger already exists at {path}",
                hint="budgets are never reset silently; use a new data set name",
            )
        _write_atomic(path, ledger)
    return ledger


def _event(mechanism: Mechanism) -> Any:
    import dp_accounting as dpa

    assert mechanism.noise_multiplier is not None
    if mechanism.kind == "gaussian":
        return dpa.SelfComposedDpEvent(
            dpa.GaussianDpEvent(mechanism.noise_multiplier), mechanism.steps
        )
    if mechanism.kind == "laplace":
        return dpa.SelfComposedDpEvent(
            dpa.LaplaceDpEvent(mechanism.noise_multiplier), mechanism.steps
        )
    return dpa.SelfComposedDpEvent(
        dpa.PoissonSampledDpEvent(
            mechanism.sampling_rate, dpa.GaussianDpEvent(mechanism.noise_multiplier)
        ),
        mechanism.steps,
    )


def recompute_epsilon(
    mechanism: Mechanism, delta: float, *, tight: bool = False
) -> tuple[float, str]:
    """Epsilon of `mechanism` at `delta` from dp-accounting, with the accountant's name.

    RDP by default (fast, slightly loose); `tight` uses the PLD accountant as well and returns the
    smaller valid bound. Pure Laplace (delta = 0) composes exactly: steps / noise_multiplier.
    """
    mechanism.validate()
    if mechanism.kind == "custom":
        raise UsageError("a custom mechanism cannot be recomputed")
    assert mechanism.noise_multiplier is not None
    if mechanism.kind == "laplace" and delta == 0:
        return mechanism.steps / mechanism.noise_multiplier, "exact (pure-DP Laplace composition)"
    if delta <= 0:
        raise UsageError(f"mechanism {mechanism.kind} needs --delta > 0")
    from dp_accounting import pld, rdp

    # the RDP accountant logs each order it drops as unstable; the result is still a valid bound
    logging.getLogger("absl").setLevel(logging.ERROR)
    event = _event(mechanism)
    best = float(rdp.RdpAccountant().compose(event).get_epsilon(delta))
    name = "dp-accounting RDP"
    if tight or mechanism.kind == "laplace":
        tighter = float(
            pld.PLDAccountant(value_discretization_interval=_PLD_DISCRETISATION)
            .compose(event)
            .get_epsilon(delta)
        )
        if tighter < best:
            best, name = tighter, "dp-accounting PLD"
    return best, name


def spend(
    path: Path,
    mechanism: Mechanism,
    delta: float,
    *,
    claimed_epsilon: float | None = None,
    note: str = "",
) -> tuple[Ledger, Entry]:
    """Record one release; DataError when it would exceed a cap or understates epsilon."""
    mechanism.validate()
    if not (0 <= delta < 1):
        raise UsageError("--delta must be in [0, 1)")
    if claimed_epsilon is not None and not (
        math.isfinite(claimed_epsilon) and claimed_epsilon >= 0
    ):
        raise UsageError("--epsilon must be a non-negative number")
    if mechanism.kind == "custom":
        if claimed_epsilon is None:
            raise UsageError("a custom mechanism needs --epsilon (it cannot be recomputed)")
        epsilon, recomputed, accountant = claimed_epsilon, None, "claimed (not verified)"
    else:
        recomputed, accountant = recompute_epsilon(mechanism, delta)
        if claimed_epsilon is not None and claimed_epsilon < recomputed * (1 - _CLAIM_TOLERANCE):
            recomputed, accountant = recompute_epsilon(mechanism, delta, tight=True)
            if claimed_epsilon < recomputed * (1 - _CLAIM_TOLERANCE):
                raise DataError(
                    f"{R.DP_CLAIM_LOW.rule_id}: claimed epsilon {claimed_epsilon:g} is lower "
                    f"than the recomputed {recomputed:.4g} ({accountant})",
                    hint="omit --epsilon to record the recomputed value, or check the parameters",
                )
        epsilon = recomputed if claimed_epsilon is None else max(claimed_epsilon, recomputed)
    if not math.isfinite(epsilon):
        raise DataError(
            f"the recomputed epsilon is infinite for delta {delta:g}",
            hint="a Laplace mechanism with delta > 0 or a Gaussian with delta = 0 is unbounded",
        )
    entry = Entry(
        _now(), mechanism.kind, mechanism.noise_multiplier, mechanism.sampling_rate,
        mechanism.steps, float(epsilon), float(delta), accountant, claimed_epsilon, recomputed,
        note,
    )  # fmt: skip
    with _locked(path):
        ledger = load_ledger(path)
        after_e = ledger.spent_epsilon + entry.epsilon
        after_d = ledger.spent_delta + entry.delta
        if after_e > ledger.epsilon_cap * (1 + 1e-12) or after_d > ledger.delta_cap * (1 + 1e-12):
            raise DataError(
                f"{R.DP_OVER_BUDGET.rule_id}: refused: this release (epsilon {entry.epsilon:.4g}, "
                f"delta {entry.delta:.3g}) would bring {ledger.dataset} to epsilon {after_e:.4g} "
                f"of {ledger.epsilon_cap:g} and delta {after_d:.3g} of {ledger.delta_cap:.3g}",
                hint="add noise, release less, or stop using this data set for private releases",
            )
        ledger = replace(ledger, entries=(*ledger.entries, entry))
        _write_atomic(path, ledger)
    return ledger, entry


def spend_from_opacus(path: Path, privacy_engine: Any, delta: float, note: str = "") -> Ledger:
    """Record the DP-SGD steps an Opacus PrivacyEngine's accountant has taken (needs `[dp]`)."""
    try:
        importlib.import_module("opacus")
    except ImportError:
        raise DataError(
            "Opacus is not installed",
            hint="install the extra: pip install 'secmlops[dp]'",
        ) from None
    history = getattr(getattr(privacy_engine, "accountant", None), "history", None)
    if not history:
        raise DataError("the Opacus privacy engine has recorded no training steps")
    ledger = load_ledger(path)
    for noise_multiplier, sampling_rate, steps in history:
        ledger, _ = spend(
            path, Mechanism("dpsgd", float(noise_multiplier), float(sampling_rate), int(steps)),
            delta, note=note or "opacus",
        )  # fmt: skip
    return ledger


def ledger_findings(ledger: Ledger, location: Location) -> list[Finding]:
    """What the ledger says: status, caps exceeded, weak epsilon, large delta, unverified entries."""
    spent_e, spent_d = ledger.spent_epsilon, ledger.spent_delta
    out = [
        R.DP_STATUS.finding(
            location,
            f"{ledger.dataset}: epsilon {spent_e:.4g} of {ledger.epsilon_cap:g} spent, delta "
            f"{spent_d:.3g} of {ledger.delta_cap:.3g}, {len(ledger.entries)} entries",
            {
                "epsilon_spent": spent_e,
                "epsilon_cap": ledger.epsilon_cap,
                "epsilon_remaining": max(0.0, ledger.epsilon_cap - spent_e),
                "delta_spent": spent_d,
                "delta_cap": ledger.delta_cap,
                "entries": len(ledger.entries),
            },
        )
    ]
    if spent_e > ledger.epsilon_cap * (1 + 1e-12) or spent_d > ledger.delta_cap * (1 + 1e-12):
        out.append(
            R.DP_OVER_BUDGET.finding(
                location,
                f"entries spend epsilon {spent_e:.4g} / delta {spent_d:.3g} beyond the caps "
                f"{ledger.epsilon_cap:g} / {ledger.delta_cap:.3g}",
                {"epsilon_spent": spent_e, "delta_spent": spent_d},
            )
        )
    if spent_e > EPSILON_WARNING or ledger.epsilon_cap > EPSILON_WARNING:
        which = "spent" if spent_e > EPSILON_WARNING else "allowed by the cap"
        out.append(
            R.DP_EPSILON_HIGH.finding(
                location,
                f"total epsilon {which} is above {EPSILON_WARNING:g} "
                f"(spent {spent_e:.4g}, cap {ledger.epsilon_cap:g})",
                {"epsilon_spent": spent_e, "epsilon_cap": ledger.epsilon_cap},
            )
        )
    if ledger.rows is not None and max(spent_d, ledger.delta_cap) >= 1 / ledger.rows:
        out.append(
            R.DP_DELTA_HIGH.finding(
                location,
                f"delta (spent {spent_d:.3g}, cap {ledger.delta_cap:.3g}) is at least 1/N = "
                f"{1 / ledger.rows:.3g} for N = {ledger.rows} rows",
                {"delta_spent": spent_d, "delta_cap": ledger.delta_cap, "rows": ledger.rows},
            )
        )
    unverified = [i for i, e in enumerate(ledger.entries) if e.recomputed_epsilon is None]
    if unverified:
        out.append(
            R.DP_UNVERIFIED.finding(
                location,
                f"{len(unverified)} entries carry an epsilon that was claimed, not recomputed",
                {"entries": unverified[:50]},
            )
        )
    return out
