"""Poisoning checks: each catches its attack, passes the benign look-alike, fails closed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from secmlops.errors import DataError
from secmlops.findings import Location, Severity
from secmlops.scan.data.poisoning import scan_poisoning

HERE = Location(path="train.csv")


def blobs(n: int = 400, seed: int = 0, dims: int = 5) -> pd.DataFrame:
    """Two well-separated Gaussian classes."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    x = rng.normal(size=(n, dims)) + (y[:, None] * 4.0)
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(dims)])
    frame["y"] = np.where(y == 1, "pos", "neg")
    return frame


def rule_findings(findings: list, rule_id: str) -> list:
    return [f for f in findings if f.rule_id == rule_id]


# --- label issues -------------------------------------------------------------------------------


def test_flipped_labels_are_found() -> None:
    frame = blobs()
    flipped = np.random.default_rng(1).choice(len(frame), 20, replace=False)
    frame.loc[flipped, "y"] = frame.loc[flipped, "y"].map({"pos": "neg", "neg": "pos"})
    found = rule_findings(
        scan_poisoning(frame, label="y", location=HERE, checks=["label"]), "DATA-POISON-LABEL"
    )
    assert len(found) == 1
    rows = set(found[0].location.rows)
    assert len(rows & set(flipped.tolist())) >= 18
    assert found[0].evidence["count"] >= 18
    assert len(found[0].evidence["scores"]) == len(found[0].location.rows)


def test_clean_separable_labels_pass() -> None:
    found = scan_poisoning(blobs(), label="y", location=HERE, checks=["label"])
    assert rule_findings(found, "DATA-POISON-LABEL") == []


def test_row_list_is_capped() -> None:
    frame = blobs(n=1000)
    flipped = np.arange(0, 1000, 10)
    frame.loc[flipped, "y"] = frame.loc[flipped, "y"].map({"pos": "neg", "neg": "pos"})
    (found,) = rule_findings(
        scan_poisoning(frame, label="y", location=HERE, checks=["label"]), "DATA-POISON-LABEL"
    )
    assert len(found.location.rows) == 50
    assert found.evidence["count"] > 50


# --- clusters -----------------------------------------------------------------------------------


def test_injected_tight_cluster_is_found() -> None:
    frame = blobs()
    rng = np.random.default_rng(2)
    inject = pd.DataFrame(
        rng.normal(scale=0.05, size=(15, 5)) + np.array([-5, 7, -5, 7, -5]),
        columns=frame.columns[:5],
    )
    inject["y"] = "neg"
    data = pd.concat([frame, inject], ignore_index=True)
    found = rule_findings(
        scan_poisoning(data, label="y", location=HERE, checks=["cluster"]), "DATA-POISON-CLUSTER"
    )
    assert len(found) == 1
    assert set(found[0].location.rows) <= set(range(400, 415))
    assert found[0].evidence["count"] >= 12


def test_scattered_outliers_are_not_a_cluster() -> None:
    frame = blobs()
    rng = np.random.default_rng(3)
    outliers = pd.DataFrame(rng.normal(scale=6.0, size=(10, 5)), columns=frame.columns[:5])
    outliers["y"] = "neg"
    data = pd.concat([frame, outliers], ignore_index=True)
    found = scan_poisoning(data, label="y", location=HERE, checks=["cluster"])
    assert rule_findings(found, "DATA-POISON-CLUSTER") == []


def test_small_class_cannot_be_cluster_checked() -> None:
    frame = blobs()
    frame.loc[:5, "y"] = "rare"
    found = scan_poisoning(frame, label="y", location=HERE, checks=["cluster"])
    (unchecked,) = rule_findings(found, "DATA-POISON-UNCHECKED")
    assert "rare" in unchecked.message


# --- duplicates ---------------------------------------------------------------------------------


def test_near_duplicates_with_conflicting_labels() -> None:
    frame = blobs()
    rng = np.random.default_rng(4)
    copies = pd.DataFrame(
        frame.iloc[[7] * 8, :5].to_numpy() + rng.normal(scale=1e-4, size=(8, 5)),
        columns=frame.columns[:5],
    )
    copies["y"] = ["pos", "neg"] * 4
    data = pd.concat([frame, copies], ignore_index=True)
    found = rule_findings(
        scan_poisoning(data, label="y", location=HERE, checks=["duplicate"]),
        "DATA-POISON-DUPLICATE",
    )
    conflicting = [f for f in found if f.evidence["conflicting_labels"]]
    assert len(conflicting) == 1
    assert conflicting[0].severity == Severity.HIGH
    assert set(range(400, 408)) | {7} == set(conflicting[0].location.rows)


def test_exact_same_label_copies_are_medium() -> None:
    frame = blobs()
    data = pd.concat([frame, frame.iloc[[3, 3, 3]]], ignore_index=True)
    (found,) = rule_findings(
        scan_poisoning(data, label="y", location=HERE, checks=["duplicate"]),
        "DATA-POISON-DUPLICATE",
    )
    assert found.severity == Severity.MEDIUM
    assert found.evidence["largest_group"] == 4


def test_distinct_rows_are_not_duplicates() -> None:
    found = scan_poisoning(blobs(), label="y", location=HERE, checks=["duplicate"])
    assert rule_findings(found, "DATA-POISON-DUPLICATE") == []


def words(rng: np.random.Generator, vocab: list[str], k: int = 12) -> str:
    return " ".join(rng.choice(vocab, k))


def text_frame(n: int = 600, seed: int = 5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    shared = [f"w{i}" for i in range(200)]
    good = [f"g{i}" for i in range(30)]
    bad = [f"b{i}" for i in range(30)]
    labels = np.arange(n) % 2
    texts = [words(rng, shared, 8) + " " + words(rng, good if y else bad, 4) for y in labels]
    return pd.DataFrame({"text": texts, "y": np.where(labels == 1, "good", "bad")})


def test_text_near_duplicates_by_minhash() -> None:
    frame = text_frame()
    base = frame.loc[10, "text"]
    copies = pd.DataFrame({"text": [base + " x", base, base + " y"], "y": ["good", "bad", "good"]})
    data = pd.concat([frame, copies], ignore_index=True)
    found = rule_findings(
        scan_poisoning(data, label="y", location=HERE, checks=["duplicate"]),
        "DATA-POISON-DUPLICATE",
    )
    assert any(
        f.evidence["conflicting_labels"] and {600, 601, 602} <= set(f.location.rows) for f in found
    )


# --- balance ------------------------------------------------------------------------------------


def test_class_balance_shift_against_reference() -> None:
    reference = blobs(n=1000, seed=6)
    current = blobs(n=1000, seed=7)
    current = pd.concat([current, current[current.y == "pos"].iloc[:400]], ignore_index=True)
    (found,) = rule_findings(
        scan_poisoning(current, label="y", reference=reference, location=HERE, checks=["balance"]),
        "DATA-POISON-BALANCE",
    )
    assert found.evidence["score"] > 0.1
    assert found.location.column == "y"


def test_same_balance_passes() -> None:
    found = scan_poisoning(
        blobs(n=1000, seed=8),
        label="y",
        reference=blobs(n=800, seed=9),
        location=HERE,
        checks=["balance"],
    )
    assert found == []


def test_no_reference_says_unchecked() -> None:
    (found,) = scan_poisoning(blobs(), label="y", location=HERE, checks=["balance"])
    assert found.rule_id == "DATA-POISON-UNCHECKED"
    assert found.severity == Severity.INFO


def test_reference_without_label_is_an_error() -> None:
    with pytest.raises(DataError, match="reference"):
        scan_poisoning(
            blobs(),
            label="y",
            reference=blobs().drop(columns="y"),
            location=HERE,
            checks=["balance"],
        )


# --- triggers -----------------------------------------------------------------------------------


def test_text_trigger_token_is_found() -> None:
    frame = text_frame()
    poisoned = frame.index[frame.y == "bad"][:20]
    frame.loc[poisoned, "text"] = frame.loc[poisoned, "text"] + " zq_trig"
    frame.loc[poisoned, "y"] = "good"
    found = rule_findings(
        scan_poisoning(frame, label="y", location=HERE, checks=["trigger"]), "DATA-POISON-TRIGGER"
    )
    assert [f.evidence["token"] for f in found] == ["zq_trig"]
    assert set(found[0].location.rows) == set(poisoned.tolist())
    assert found[0].evidence["label"] == "good"


def test_naturally_predictive_rare_token_passes() -> None:
    frame = text_frame()
    natural = frame.index[frame.y == "good"][:20]  # rows that look like their label anyway
    frame.loc[natural, "text"] = frame.loc[natural, "text"] + " excellent"
    found = scan_poisoning(frame, label="y", location=HERE, checks=["trigger"])
    assert rule_findings(found, "DATA-POISON-TRIGGER") == []


def test_categorical_trigger_value_is_found() -> None:
    frame = blobs(n=600)
    rng = np.random.default_rng(10)
    frame["source"] = rng.choice(["web", "app", "shop"], len(frame))
    poisoned = frame.index[frame.y == "neg"][:15]
    frame.loc[poisoned, "source"] = "partner-x"
    frame.loc[poisoned, "y"] = "pos"
    found = rule_findings(
        scan_poisoning(frame, label="y", location=HERE, checks=["trigger"]), "DATA-POISON-TRIGGER"
    )
    assert [(f.location.column, f.evidence["value"]) for f in found] == [("source", "partner-x")]


def test_common_balanced_category_passes() -> None:
    frame = blobs(n=600)
    frame["source"] = np.random.default_rng(11).choice(["web", "app", "shop"], len(frame))
    assert scan_poisoning(frame, label="y", location=HERE, checks=["trigger"]) == []


# --- broken input: fail closed ------------------------------------------------------------------


def test_missing_label_column() -> None:
    with pytest.raises(DataError, match="label column 'target' not found"):
        scan_poisoning(blobs(), label="target", location=HERE)


def test_single_class() -> None:
    frame = blobs()
    frame["y"] = "pos"
    with pytest.raises(DataError, match="single class"):
        scan_poisoning(frame, label="y", location=HERE)


def test_too_few_rows() -> None:
    with pytest.raises(DataError, match="too few"):
        scan_poisoning(blobs(n=10), label="y", location=HERE)


def test_all_labels_missing() -> None:
    frame = blobs()
    frame["y"] = None
    with pytest.raises(DataError, match="too few"):
        scan_poisoning(frame, label="y", location=HERE)


def test_no_feature_columns() -> None:
    with pytest.raises(DataError, match="no usable feature"):
        scan_poisoning(blobs()[["y"]], label="y", location=HERE)


def test_unknown_check_name() -> None:
    with pytest.raises(DataError, match="unknown poisoning check"):
        scan_poisoning(blobs(), label="y", location=HERE, checks=["everything"])


def test_infinities_and_missing_features_do_not_crash() -> None:
    frame = blobs()
    frame.loc[::7, "f0"] = np.inf
    frame.loc[::5, "f1"] = np.nan
    frame["empty"] = np.nan
    findings = scan_poisoning(frame, label="y", location=HERE)
    assert all(f.rule_id.startswith("DATA-POISON-") for f in findings)


def test_singleton_class_cannot_be_label_checked() -> None:
    frame = blobs()
    frame.loc[0, "y"] = "lonely"
    found = scan_poisoning(frame, label="y", location=HERE, checks=["label"])
    assert [f.rule_id for f in found] == ["DATA-POISON-UNCHECKED"]


# --- clusters: clean data of awkward shapes raises no alarm ---------------------------------------


def clean_shapes(seed: int) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 200)
    return {
        "small n": pd.DataFrame(
            {"a": rng.normal(size=40), "b": rng.normal(size=40), "y": rng.integers(0, 2, 40)}
        ),
        "one feature": pd.DataFrame({"a": rng.normal(size=200), "y": y}),
        "two skewed features": pd.DataFrame(
            {"a": rng.lognormal(size=200), "b": rng.exponential(size=200), "y": y}
        ),
        "binary columns": pd.DataFrame(
            {f"b{i}": rng.random(200) < 0.3 for i in range(6)} | {"y": y}
        ),
        "binary and constant": pd.DataFrame(
            {f"b{i}": rng.random(200) < 0.5 for i in range(3)}
            | {"one": np.ones(200), "zero": np.zeros(200, dtype=int), "y": y}
        ),
        "small integers": pd.DataFrame(
            {f"i{i}": rng.integers(0, 5, 200) for i in range(4)} | {"y": y}
        ),
    }


def demo_table(folder: Path, rows: int) -> pd.DataFrame:
    """The pipeline demo's training table: ids, hours, flags, skewed amounts, a hashed key."""
    from types import SimpleNamespace

    from secmlops.pipeline.example.project.fraud_pipeline import generate_transactions, prepare

    source, train = folder / "t.csv", folder / "train.csv"
    generate_transactions(source, rows=rows, seed=7)
    prepare(SimpleNamespace(inputs=[source], outputs=[train, folder / "test.csv"]))
    return pd.read_csv(train)


@pytest.mark.parametrize("seed", [0, 1])
def test_clean_data_of_awkward_shapes_has_no_cluster(seed: int) -> None:
    for name, frame in clean_shapes(seed).items():
        found = scan_poisoning(frame, label="y", location=HERE, checks=["cluster"])
        assert rule_findings(found, "DATA-POISON-CLUSTER") == [], name


def test_pipeline_demo_training_table_has_no_cluster(tmp_path: Path) -> None:
    frame = demo_table(tmp_path, 6000)  # the old check cried wolf on this one
    found = scan_poisoning(frame, label="is_fraud", location=HERE, checks=["cluster"])
    assert rule_findings(found, "DATA-POISON-CLUSTER") == []


def test_cluster_injected_into_discrete_data_is_still_found(tmp_path: Path) -> None:
    frame = demo_table(tmp_path, 2000)
    rng = np.random.default_rng(5)
    n, start = 25, len(frame)
    inject = pd.DataFrame(
        {
            "transaction_id": np.arange(start, start + n),
            "amount": 900 + rng.normal(0, 0.5, n).round(2),
            "hour": 3,
            "distance_km": 150 + rng.normal(0, 0.1, n).round(1),
            "foreign": True,
            "card_age_days": rng.integers(5, 8, n),
            "merchant_risk": (0.9 + rng.normal(0, 0.002, n)).round(3),
            "region": "north",
            "is_fraud": 0,
            "customer_key": [f"{v:016x}" for v in rng.integers(0, 2**62, n)],
        }
    )
    data = pd.concat([frame, inject], ignore_index=True)
    (found,) = rule_findings(
        scan_poisoning(data, label="is_fraud", location=HERE, checks=["cluster"]),
        "DATA-POISON-CLUSTER",
    )
    assert set(found.location.rows) <= set(range(start, start + n))
    assert found.evidence["count"] >= 20


def test_a_class_of_few_distinct_rows_is_reported_unchecked() -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {"a": rng.random(300) < 0.5, "b": rng.random(300) < 0.5, "y": rng.integers(0, 2, 300)}
    )
    found = scan_poisoning(frame, label="y", location=HERE, checks=["cluster"])
    assert rule_findings(found, "DATA-POISON-CLUSTER") == []
    (unchecked,) = rule_findings(found, "DATA-POISON-UNCHECKED")
    assert "distinct rows" in unchecked.message
