"""secmlops.toml: the layer sections ([pii], [poisoning], [drift]) are checked against the settings
they configure, and flags given on the command line win over the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from secmlops.config import load_config
from secmlops.errors import ConfigError
from secmlops.scan.data.drift import DriftThresholds
from secmlops.scan.data.pii import PiiSettings
from secmlops.scan.data.poisoning import PoisonSettings


def _config(tmp_path: Path, text: str):  # type: ignore[no-untyped-def]
    (tmp_path / "secmlops.toml").write_text(text)
    return load_config(cwd=tmp_path)


def test_sections_configure_their_settings_and_flags_win(tmp_path: Path) -> None:
    cfg = _config(tmp_path, '[drift]\npsi = 0.3\nalpha = 0.05\n[pii]\nregion = "DE"\n'
                            "[poisoning]\ncluster_min_size = 8\n")  # fmt: skip
    drift = cfg.layer_settings("drift", DriftThresholds, alpha=0.02, wasserstein=None)
    assert (drift.psi, drift.alpha, drift.wasserstein) == (0.3, 0.02, DriftThresholds().wasserstein)
    assert cfg.layer_settings("pii", PiiSettings).region == "DE"
    assert cfg.layer_settings("poisoning", PoisonSettings).cluster_min_size == 8


def test_without_sections_the_defaults_hold(tmp_path: Path) -> None:
    cfg = _config(tmp_path, 'fail_on = "medium"\n')
    assert cfg.layers == {}
    assert cfg.layer_settings("drift", DriftThresholds) == DriftThresholds()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[drift]\npsy = 0.3\n", "no setting 'psy'"),
        ('[drift]\npsi = "high"\n', "drift.psi"),
        ("[drift]\npsi = -1.0\n", "psi"),
        ("drift = 3\n", "must be a table"),
        ("[poisoning]\ncluster_min_size = 2.5\n", "cluster_min_size"),
        ("[models]\nmax_depth = 0\n", "max_depth"),
        ("[nonsense]\na = 1\n", "nonsense"),
    ],
)
def test_bad_sections_are_clear_errors(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=r"secmlops\.toml") as info:
        _config(tmp_path, text)
    assert message in info.value.message


def test_unknown_key_names_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        _config(tmp_path, "[pii]\nregoin = 'DE'\n")
    assert "region" in (info.value.hint or "")
