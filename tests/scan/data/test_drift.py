"""Drift: identical data is quiet, real shifts are found, profiles hold no rows, bad input fails."""

from __future__ import annotations

import contextlib
import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from secmlops.errors import DataError
from secmlops.findings import Location
from secmlops.scan.data.drift import DriftThresholds, compare, render_html
from secmlops.scan.data.drift_profile import Profile, build_profile, is_profile_file, load_profile

HERE = Location(path="current.parquet")


def table(n: int = 4000, seed: int = 0, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "amount": rng.normal(100, 10, n) + shift * 10,
            "age": rng.integers(18, 90, n),
            "channel": rng.choice(["web", "app", "branch"], n, p=[0.5, 0.3, 0.2]),
            "score": rng.normal(size=n),
            "note": [f"free text {i} about {rng.integers(1000)}" for i in range(n)],
        }
    )


def ids(result, location=HERE) -> list[tuple[str, str | None]]:
    return [(f.rule_id, f.location.column) for f in result.findings(location)]


def test_identical_data_has_no_drift() -> None:
    data = table()
    result = compare(data, data)
    assert result.drifted == ()
    assert ids(result) == []
    assert not result.dataset_drift


def test_same_distribution_fresh_sample_has_no_drift() -> None:
    assert compare(table(seed=1), table(seed=2)).drifted == ()


def test_half_sigma_shift_is_drift() -> None:
    result = compare(table(seed=1), table(seed=2, shift=0.5))
    assert ids(result) == [("DATA-DRIFT-FEATURE", "amount")]
    (feature,) = result.drifted
    assert 0.4 < feature.effects["wasserstein"] < 0.6  # normalised by the reference std
    assert feature.q_value < 1e-6


def test_tiny_samples_do_not_alarm_on_noise() -> None:
    # 60 rows: sample noise alone moves the Wasserstein distance past 0.05; the test must confirm
    result = compare(table(n=60, seed=3), table(n=60, seed=4))
    assert result.drifted == ()


def test_category_share_change_is_drift() -> None:
    ref = table(seed=5)
    cur = table(seed=6)
    rng = np.random.default_rng(7)
    cur["channel"] = rng.choice(["web", "app", "branch"], len(cur), p=[0.3, 0.3, 0.4])
    result = compare(ref, cur)
    assert [f.name for f in result.drifted] == ["channel"]
    assert result.drifted[0].effects["jensen_shannon"] > 0.1


def test_variance_change_is_drift() -> None:
    ref, cur = table(seed=8), table(seed=9)
    cur["score"] = cur["score"] * 1.5
    assert [f.name for f in compare(ref, cur).drifted] == ["score"]


def test_missing_share_change_is_drift() -> None:
    ref, cur = table(seed=10), table(seed=11)
    cur.loc[cur.index[:800], "age"] = np.nan
    (feature,) = compare(ref, cur).drifted
    assert feature.name == "age"
    assert feature.effects["missing"] == pytest.approx(0.2)


def test_text_length_drift() -> None:
    ref, cur = table(seed=12), table(seed=13)
    cur["note"] = cur["note"] + " and a much longer tail of words appended to every note"
    assert [f.name for f in compare(ref, cur).drifted] == ["note"]


def test_many_drifted_features_mean_dataset_drift() -> None:
    ref = table(seed=14)
    cur = table(seed=15, shift=1.0)
    cur["score"] += 1
    cur["age"] = cur["age"] + 20
    result = compare(ref, cur)
    assert result.dataset_drift
    assert ("DATA-DRIFT-DATASET", None) in ids(result)


def test_missing_and_retyped_columns_are_schema_findings() -> None:
    ref, cur = table(seed=16), table(seed=17)
    cur = cur.drop(columns=["score"])
    cur["amount"] = "n/a"
    found = ids(compare(ref, cur))
    assert ("DATA-DRIFT-SCHEMA", "score") in found
    assert ("DATA-DRIFT-SCHEMA", "amount") in found


def test_profile_holds_no_raw_rows() -> None:
    data = table()
    data["email"] = [f"user{i}@example.org" for i in range(len(data))]
    data.loc[1234, "channel"] = "UNIQUE-PLANTED-VALUE-8472"
    data["account"] = np.random.default_rng(1).permutation(len(data)) + 7_300_000_000
    profile = build_profile(data)
    text = profile.to_json()
    assert profile.columns["account"].kind == "text"  # an identifier: only digit counts kept
    assert not any(str(v) in text for v in data["account"])
    assert "UNIQUE-PLANTED-VALUE-8472" not in text
    assert "user1234@example.org" not in text
    assert "free text" not in text
    assert f"{data['amount'].max()!r}" not in text  # the maximum is not stored
    assert json.loads(text)["rows"] == len(data)


def test_profile_round_trip_gives_the_same_verdict(tmp_path) -> None:
    ref, cur = table(seed=18), table(seed=19, shift=0.5)
    path = tmp_path / "profile.json"
    path.write_text(build_profile(ref).to_json())
    assert is_profile_file(path)
    from_file = compare(load_profile(path), cur)
    from_frame = compare(ref, cur)
    assert [f.name for f in from_file.drifted] == [f.name for f in from_frame.drifted] == ["amount"]


def test_html_report_embeds_a_plot_per_drifted_feature() -> None:
    ref, cur = table(seed=20), table(seed=21, shift=0.5)
    cur["channel"] = "web"
    page = render_html(compare(ref, cur))
    assert page.count('src="data:image/png;base64,') == 2
    assert "<b>DRIFT</b>" in page or "no data-set drift" in page


def test_threshold_flags_change_the_verdict() -> None:
    ref, cur = table(seed=22), table(seed=23, shift=0.2)
    assert [f.name for f in compare(ref, cur).drifted] == ["amount"]
    assert compare(ref, cur, DriftThresholds(wasserstein=0.5, psi=5.0)).drifted == ()


@pytest.mark.parametrize(
    "content",
    [
        "",
        "{",
        "[]",
        '{"format": "secmlops-drift-profile", "version": 2}',
        '{"format": "other"}',
    ],
)
def test_damaged_profile_is_an_error(tmp_path, content: str) -> None:
    path = tmp_path / "p.json"
    path.write_text(content)
    with pytest.raises(DataError):
        load_profile(path)


def test_profile_with_truncated_quantiles_is_an_error() -> None:
    doc = build_profile(table(n=200)).to_dict()
    doc["columns"]["amount"]["quantiles"] = doc["columns"]["amount"]["quantiles"][:10]
    with pytest.raises(DataError, match="damaged quantiles"):
        Profile.from_dict(doc)


def test_binary_profile_is_an_error(tmp_path) -> None:
    path = tmp_path / "p.json"
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(DataError):
        load_profile(path)


def test_no_shared_columns_is_an_error() -> None:
    with pytest.raises(DataError, match="no column"):
        compare(table(n=100), pd.DataFrame({"other": [1, 2, 3]}))


def test_negative_threshold_is_an_error() -> None:
    with pytest.raises(DataError):
        DriftThresholds(wasserstein=-1)


def test_all_missing_column_is_compared_without_crash() -> None:
    ref, cur = table(n=300, seed=24), table(n=300, seed=25)
    cur["score"] = np.nan
    result = compare(ref, cur)
    assert "score" in [f.name for f in result.drifted]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.recursive(
        st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=20),
        lambda inner: (
            st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
        ),
        max_leaves=20,
    )
)
def test_hostile_profile_documents_raise_data_error_only(doc) -> None:
    with contextlib.suppress(DataError):
        Profile.from_dict(doc)
