"""The extraction monitor: benign natural traffic passes in few dimensions (the calibrated PRADA
threshold), perturbation and sweep attacks are caught, hostile input shapes do not crash it."""

from __future__ import annotations

import numpy as np
import pytest

from secmlops.serve.extraction import ExtractionMonitor, shapiro_w


def _actions(monitor: ExtractionMonitor, rows: np.ndarray) -> list[str]:
    return [monitor.observe("client", rows[i : i + 1]).action for i in range(len(rows))]


@pytest.mark.parametrize("dimension", [3, 8])
def test_benign_gaussian_clients_are_not_blocked(dimension: int) -> None:
    rng = np.random.default_rng(dimension + 100)
    assert set(_actions(ExtractionMonitor(), rng.normal(size=(250, dimension)))) == {"allow"}


def test_perturbation_attack_is_blocked() -> None:
    rng = np.random.default_rng(7)
    seeds = np.repeat(rng.normal(size=(25, 3)), 10, axis=0)
    actions = _actions(ExtractionMonitor(), seeds + rng.normal(scale=0.01, size=seeds.shape))
    assert actions[-1] == "block" and actions.count("block") > 100


def test_sweep_is_flagged_when_configured_to_flag() -> None:
    rows = np.zeros((40, 3))
    rows[:, 0] = np.arange(40) * 0.1
    assert _actions(ExtractionMonitor(block=False), rows)[-1] == "flag"


def test_calibrated_threshold_never_exceeds_the_configured_one() -> None:
    monitor = ExtractionMonitor(prada_threshold=0.5)
    assert monitor.threshold(3) <= 0.5 and monitor.threshold(3) == monitor.threshold(3)


def test_repeated_identical_queries_are_not_extraction() -> None:
    assert set(_actions(ExtractionMonitor(), np.ones((100, 3)))) == {"allow"}


@pytest.mark.parametrize("n", [6, 7, 30, 31, 99, 199, 200, 499, 500])
def test_shapiro_w_is_scipys_statistic(n: int) -> None:
    from scipy.stats import shapiro

    rng = np.random.default_rng(n)
    samples = {
        "normal": rng.normal(size=n),
        "distances": np.abs(rng.normal(size=n)),  # what the monitor feeds it
        "skewed": rng.exponential(size=n),
        "ties": np.round(rng.normal(size=n), 1),
        "perturbation attack": np.concatenate(
            [rng.normal(scale=0.01, size=n - 3), [2.0, 3.0, 4.0]]
        ),
    }
    for name, values in samples.items():
        assert shapiro_w(values) == pytest.approx(float(shapiro(values).statistic), abs=1e-12), name


def test_shapiro_w_of_constant_values_is_one() -> None:
    assert shapiro_w(np.full(40, 0.5)) == 1.0
