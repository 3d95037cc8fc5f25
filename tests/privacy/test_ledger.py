"""The privacy-budget ledger: verified spends, refusals, warnings, damaged files."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secmlops.errors import DataError, UsageError
from secmlops.findings import Location
from secmlops.privacy.ledger import (
    Mechanism,
    init_ledger,
    ledger_findings,
    ledger_path,
    load_ledger,
    recompute_epsilon,
    spend,
    spend_from_opacus,
)

HERE = Location(path="ledger")


@pytest.fixture
def ledger(tmp_path: Path) -> Path:
    path = ledger_path(tmp_path, "patients-2024")
    init_ledger(path, "patients-2024", epsilon_cap=5.0, delta_cap=1e-5, rows=10_000)
    return path


def rules(path: Path) -> list[str]:
    return [f.rule_id for f in ledger_findings(load_ledger(path), HERE)]


def test_gaussian_spend_is_recomputed_and_recorded(ledger: Path) -> None:
    import dp_accounting as dpa
    from dp_accounting import rdp

    _, entry = spend(ledger, Mechanism("gaussian", 4.0, steps=2), 1e-6)
    expected = rdp.RdpAccountant().compose(dpa.SelfComposedDpEvent(dpa.GaussianDpEvent(4.0), 2))
    assert entry.epsilon == pytest.approx(expected.get_epsilon(1e-6))
    assert entry.recomputed_epsilon == entry.epsilon
    assert "dp-accounting" in entry.accountant
    assert load_ledger(ledger).spent_epsilon == pytest.approx(entry.epsilon)
    assert rules(ledger) == ["DP-BUDGET-STATUS"]


def test_pure_laplace_composes_exactly() -> None:
    epsilon, accountant = recompute_epsilon(Mechanism("laplace", 2.0, steps=3), 0.0)
    assert epsilon == pytest.approx(1.5)
    assert "exact" in accountant


def test_dpsgd_spend(ledger: Path) -> None:
    _, entry = spend(ledger, Mechanism("dpsgd", 1.1, 0.01, 500), 1e-6)
    assert 0.1 < entry.epsilon < 5


def test_higher_claim_is_kept(ledger: Path) -> None:
    _, entry = spend(ledger, Mechanism("gaussian", 4.0), 1e-6, claimed_epsilon=3.0)
    assert entry.epsilon == 3.0
    assert entry.recomputed_epsilon is not None and entry.recomputed_epsilon < 3.0


def test_understated_claim_is_refused(ledger: Path) -> None:
    with pytest.raises(DataError, match="DP-BUDGET-CLAIM-LOW"):
        spend(ledger, Mechanism("dpsgd", 1.1, 0.01, 100), 1e-6, claimed_epsilon=0.01)
    assert load_ledger(ledger).entries == ()


def test_over_budget_spend_is_refused_and_ledger_unchanged(ledger: Path) -> None:
    spend(ledger, Mechanism("gaussian", 2.0), 1e-6)
    before = ledger.read_bytes()
    with pytest.raises(DataError, match="DP-BUDGET-EXCEEDED"):
        spend(ledger, Mechanism("gaussian", 0.3, steps=20), 1e-6)
    assert ledger.read_bytes() == before


def test_delta_cap_is_enforced(ledger: Path) -> None:
    with pytest.raises(DataError, match="delta"):
        spend(ledger, Mechanism("gaussian", 10.0), 5e-5)


def test_custom_entries_are_unverified(ledger: Path) -> None:
    with pytest.raises(UsageError):
        spend(ledger, Mechanism("custom"), 0.0)
    spend(ledger, Mechanism("custom"), 0.0, claimed_epsilon=0.5, note="external library")
    assert "DP-BUDGET-UNVERIFIED" in rules(ledger)


def test_weak_epsilon_and_large_delta_warn(tmp_path: Path) -> None:
    path = ledger_path(tmp_path, "small")
    init_ledger(path, "small", epsilon_cap=50.0, delta_cap=0.01, rows=1000)
    found = rules(path)
    assert "DP-BUDGET-EPSILON-HIGH" in found
    assert "DP-BUDGET-DELTA-HIGH" in found


def test_reasonable_budget_has_no_warning(ledger: Path) -> None:
    assert rules(ledger) == ["DP-BUDGET-STATUS"]


def test_init_never_replaces_a_ledger(ledger: Path) -> None:
    with pytest.raises(DataError, match="already exists"):
        init_ledger(ledger, "patients-2024", 100.0, 0.1)


@pytest.mark.parametrize("name", ["../etc", "a/b", "", ".hidden", "x" * 200])
def test_data_set_names_cannot_escape(tmp_path: Path, name: str) -> None:
    with pytest.raises(UsageError):
        ledger_path(tmp_path, name)


@pytest.mark.parametrize(
    "mechanism",
    [
        Mechanism("gaussian"),
        Mechanism("gaussian", -1.0),
        Mechanism("dpsgd", 1.0, None, 10),
        Mechanism("dpsgd", 1.0, 1.5, 10),
        Mechanism("laplace", 1.0, steps=0),
    ],
)
def test_invalid_mechanism_parameters(ledger: Path, mechanism: Mechanism) -> None:
    with pytest.raises(UsageError):
        spend(ledger, mechanism, 1e-6)


def test_gaussian_without_delta_is_refused(ledger: Path) -> None:
    with pytest.raises(UsageError, match="delta"):
        spend(ledger, Mechanism("gaussian", 2.0), 0.0)


@pytest.mark.parametrize(
    "content",
    [b"", b"{", b"\xff\xfe\x00", b"[]", b'{"format": "secmlops-privacy-ledger"}'],
)
def test_damaged_ledger_is_a_clear_error(ledger: Path, content: bytes) -> None:
    ledger.write_bytes(content)
    with pytest.raises(DataError, match="damaged privacy ledger"):
        load_ledger(ledger)
    with pytest.raises(DataError, match="damaged privacy ledger"):
        spend(ledger, Mechanism("gaussian", 4.0), 1e-6)


def test_tampered_entry_is_a_clear_error(ledger: Path) -> None:
    spend(ledger, Mechanism("gaussian", 4.0), 1e-6)
    doc = json.loads(ledger.read_text())
    doc["entries"][0]["epsilon"] = -1
    ledger.write_text(json.dumps(doc))
    with pytest.raises(DataError, match="damaged"):
        load_ledger(ledger)


def test_missing_ledger_says_how_to_create_one(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no privacy ledger") as info:
        load_ledger(tmp_path / "none.ledger.json")
    assert "budget init" in (info.value.hint or "")


def test_writes_leave_no_temporary_files(ledger: Path) -> None:
    spend(ledger, Mechanism("gaussian", 4.0), 1e-6)
    leftovers = [p.name for p in ledger.parent.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []


def test_concurrent_spends_lose_nothing(ledger: Path) -> None:
    errors: list[BaseException] = []

    def one() -> None:
        try:
            spend(ledger, Mechanism("custom"), 0.0, claimed_epsilon=0.1)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=one) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(load_ledger(ledger).entries) == 8


def test_opacus_entry_point_names_the_extra(ledger: Path) -> None:
    with pytest.raises(DataError, match="Opacus") as info:
        spend_from_opacus(ledger, object(), 1e-6)
    assert "secmlops[dp]" in (info.value.hint or "")


@settings(max_examples=40, deadline=None)
@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_hostile_ledger_bytes_raise_data_error_only(tmp_path_factory, content: bytes) -> None:
    path = tmp_path_factory.mktemp("h") / "x.ledger.json"
    path.write_bytes(content)
    with pytest.raises(DataError):
        load_ledger(path)
