"""Data drift between a reference (a stored profile or a table) and current data.

Per feature, effect sizes decide: the normalised Wasserstein-1 distance (divided by the
reference's standard deviation, so a shift of the mean by k standard deviations scores k) and PSI
on the reference's decile bins for numbers (and string lengths of text); Jensen-Shannon distance
(base 2) and PSI for categories; the change of the missing share for every column. A p-value test
(two-sample Kolmogorov-Smirnov from the quantile functions, chi-squared contingency for
categories) run at a capped sample size and corrected with Benjamini-Hochberg must confirm the
effect, so small samples do not alarm on noise; p-values never gate on their own, because at a
million rows they call every meaningless shift significant.
"""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from secmlops.errors import DataError
from secmlops.findings import Finding, Location
from secmlops.scan.data import stats_rules as R
from secmlops.scan.data.drift_profile import (
    OTHER,
    ColumnProfile,
    Profile,
    build_profile,
    effective_size,
    finite,
    quantile_grid,
)
from secmlops.scan.data.multiple_testing import benjamini_hochberg


@dataclass(frozen=True, slots=True)
class DriftThresholds:
    """When a feature and the data set count as drifted (defaults documented in docs/drift.md)."""

    wasserstein: float = 0.05  # normalised Wasserstein (reference standard deviations)
    psi: float = 0.2
    jensen_shannon: float = 0.05  # Jensen-Shannon distance, base 2 (0..1)
    missing: float = 0.05  # absolute change of the share of missing values
    alpha: float = 0.01  # Benjamini-Hochberg false-discovery rate of the confirming tests
    sample_cap: int = 10_000  # p-values are computed as if each sample had at most this many rows
    dataset_share: float = 0.3  # the data set drifted when this share of features drifted

    def __post_init__(self) -> None:
        for name in ("wasserstein", "psi", "jensen_shannon", "missing", "alpha", "dataset_share"):
            value = getattr(self, name)
            if not (value >= 0 and np.isfinite(value)):
                raise DataError(f"drift threshold {name} must be a non-negative number")
        if self.sample_cap < 10:
            raise DataError("drift sample cap must be at least 10")


DEFAULT_THRESHOLDS = DriftThresholds()


@dataclass(frozen=True, slots=True)
class FeatureDrift:
    """The comparison of one column."""

    name: str
    kind: str
    test: str
    statistic: float
    p_value: float
    q_value: float
    effects: dict[str, float]
    drifted: bool
    reasons: tuple[str, ...]
    reference: ColumnProfile
    current: ColumnProfile


@dataclass(frozen=True, slots=True)
class DriftResult:
    """Every feature's comparison and the data-set verdict."""

    features: tuple[FeatureDrift, ...]
    missing_columns: tuple[str, ...]
    changed_kind: tuple[str, ...]
    new_columns: tuple[str, ...]
    thresholds: DriftThresholds
    rows_reference: int
    rows_current: int

    @property
    def drifted(self) -> tuple[FeatureDrift, ...]:
        return tuple(f for f in self.features if f.drifted)

    @property
    def share(self) -> float:
        total = len(self.features) + len(self.missing_columns) + len(self.changed_kind)
        broken = len(self.drifted) + len(self.missing_columns) + len(self.changed_kind)
        return broken / total if total else 0.0

    @property
    def dataset_drift(self) -> bool:
        return bool(self.features or self.missing_columns) and (
            self.share >= self.thresholds.dataset_share
        )

    def findings(self, location: Location) -> list[Finding]:
        """The result as findings: one per drifted feature, schema breaks, the data-set verdict."""
        out = [
            R.DRIFT_SCHEMA.finding(
                replace(location, column=name),
                f"column {name!r} of the reference is missing from the current data",
                {"column": name, "problem": "missing"},
            )
            for name in self.missing_columns
        ]
        out += [
            R.DRIFT_SCHEMA.finding(
                replace(location, column=name),
                f"column {name!r} changed type (numbers in the reference, text now)",
                {"column": name, "problem": "type"},
            )
            for name in self.changed_kind
        ]
        for f in self.drifted:
            out.append(
                R.DRIFT_FEATURE.finding(
                    replace(location, column=f.name),
                    f"{f.name}: " + "; ".join(f.reasons) + f" ({f.test} q {f.q_value:.2g})",
                    {
                        "kind": f.kind,
                        "test": f.test,
                        "statistic": round(f.statistic, 6),
                        "p_value": f.p_value,
                        "q_value": f.q_value,
                        **{k: round(v, 6) for k, v in f.effects.items()},
                        "score": round(max(f.effects.values(), default=0.0), 6),
                    },
                )
            )
        if self.dataset_drift:
            out.append(
                R.DRIFT_DATASET.finding(
                    location,
                    f"{len(self.drifted)} of {len(self.features)} features drifted"
                    + (f", {len(self.missing_columns)} missing" if self.missing_columns else "")
                    + f" ({self.share:.0%} >= {self.thresholds.dataset_share:.0%})",
                    {
                        "share": round(self.share, 4),
                        "drifted": [f.name for f in self.drifted][:100],
                        "new_columns": list(self.new_columns)[:100],
                    },
                )
            )
        return out


def _psi(ref: np.ndarray, cur: np.ndarray) -> float:
    """Population stability index of two count vectors (shares smoothed by 1e-4)."""
    p = np.maximum(ref / max(ref.sum(), 1), 1e-4)
    q = np.maximum(cur / max(cur.sum(), 1), 1e-4)
    return float(np.sum((q - p) * np.log(q / p)))


def _missing_test(ref: ColumnProfile, cur: ColumnProfile, cap: int) -> tuple[float, float]:
    """Change of the missing share and its chi-squared p-value at the capped sample size."""
    from scipy.stats import chi2_contingency

    n_ref, n_cur = ref.count + ref.missing, cur.count + cur.missing
    share_ref = ref.missing / n_ref if n_ref else 0.0
    share_cur = cur.missing / n_cur if n_cur else 0.0
    delta = abs(share_cur - share_ref)
    if delta == 0:
        return 0.0, 1.0
    a, b = effective_size(n_ref, cap), effective_size(n_cur, cap)
    table = np.array([[share_ref * a, (1 - share_ref) * a], [share_cur * b, (1 - share_cur) * b]])
    if (table.sum(axis=0) == 0).any():
        return delta, 1.0
    return delta, float(chi2_contingency(table)[1])


def _compare_numeric(
    ref: ColumnProfile, cur: ColumnProfile, t: DriftThresholds
) -> tuple[str, float, float, dict[str, float]]:
    from scipy.stats import kstwo

    qr, qc = np.asarray(ref.quantiles), np.asarray(cur.quantiles)
    grid = quantile_grid()
    scale = ref.std if ref.std > 0 else (abs(ref.mean) or 1.0)
    wasserstein = float(np.mean(np.abs(qr - qc)) / scale)
    # KS statistic from the two quantile functions: both step CDFs on the union of their points
    # (right-continuous, so ties of discrete values compare equal)
    points = np.union1d(qr, qc)
    d = float(
        np.max(
            np.abs(
                np.searchsorted(qr, points, side="right")
                - np.searchsorted(qc, points, side="right")
            )
        )
        / len(grid)
    )
    n, m = effective_size(ref.count, t.sample_cap), effective_size(cur.count, t.sample_cap)
    p = float(kstwo.sf(d, max(1, round(n * m / (n + m)))))
    psi = _psi(np.asarray(ref.bin_counts, float), np.asarray(cur.bin_counts, float))
    return "ks", d, p, {"wasserstein": wasserstein, "psi": psi}


def _compare_categorical(
    ref: ColumnProfile, cur: ColumnProfile, t: DriftThresholds
) -> tuple[str, float, float, dict[str, float]]:
    from scipy.spatial.distance import jensenshannon
    from scipy.stats import chi2_contingency

    # current values the reference never kept count in its "other" bucket, as in the reference
    names = sorted(set(ref.categories) | {OTHER})
    cur_counts = dict.fromkeys(names, 0)
    for name, count in cur.categories.items():
        cur_counts[name if name in cur_counts else OTHER] += count
    r = np.array([ref.categories.get(k, 0) for k in names], float)
    c = np.array([cur_counts[k] for k in names], float)
    used = (r + c) > 0
    r, c = r[used], c[used]
    js = float(jensenshannon(r / r.sum(), c / c.sum(), base=2)) if r.sum() and c.sum() else 0.0
    psi = _psi(r, c)
    if len(r) < 2:
        return "chi2", 0.0, 1.0, {"jensen_shannon": js, "psi": psi}
    scaled = np.vstack(
        [
            r * effective_size(int(r.sum()), t.sample_cap) / r.sum(),
            c * effective_size(int(c.sum()), t.sample_cap) / c.sum(),
        ]
    )
    stat, p, _, _ = chi2_contingency(scaled + 1e-9)
    return "chi2", float(stat), float(p), {"jensen_shannon": js, "psi": psi}


def _reasons(kind: str, effects: dict[str, float], t: DriftThresholds) -> tuple[str, ...]:
    limits = {
        "wasserstein": (t.wasserstein, "normalised Wasserstein {v:.3f} >= {t}"),
        "psi": (t.psi, "PSI {v:.3f} >= {t}"),
        "jensen_shannon": (t.jensen_shannon, "Jensen-Shannon distance {v:.3f} >= {t}"),
        "missing": (t.missing, "missing share changed by {v:.1%} >= {t:.0%}"),
    }
    prefix = "string length: " if kind == "text" else ""
    return tuple(
        (prefix if name != "missing" else "") + text.format(v=effects[name], t=limit)
        for name, (limit, text) in limits.items()
        if name in effects and effects[name] >= limit
    )


def compare(
    reference: Profile | pd.DataFrame,
    current: pd.DataFrame,
    thresholds: DriftThresholds = DEFAULT_THRESHOLDS,
) -> DriftResult:
    """Compare `current` with a reference profile (or a reference table, profiled first)."""
    ref = reference if isinstance(reference, Profile) else build_profile(reference)
    if not ref.columns:
        raise DataError("the reference profile has no columns")
    present = [name for name in ref.columns if name in current.columns]
    if not present:
        raise DataError(
            "the current data shares no column with the reference",
            hint="compare data of the same schema",
        )
    changed = tuple(
        name
        for name in present
        if ref.columns[name].kind == "numeric"
        and not (
            pd.api.types.is_numeric_dtype(current[name])
            or pd.api.types.is_datetime64_any_dtype(current[name])
            or current[name].isna().all()
        )
    )
    comparable = [name for name in present if name not in changed]
    cur = build_profile(current, like=ref, columns=comparable)
    rows: list[tuple[str, str, str, float, float, dict[str, float]]] = []
    for name in comparable:
        r, c = ref.columns[name], cur.columns[name]
        effects: dict[str, float] = {}
        if r.count == 0 or c.count == 0:
            test, stat, p = "none", 0.0, 1.0
        elif r.kind == "categorical":
            test, stat, p, effects = _compare_categorical(r, c, thresholds)
        else:
            test, stat, p, effects = _compare_numeric(r, c, thresholds)
        delta, p_missing = _missing_test(r, c, thresholds.sample_cap)
        effects["missing"] = delta
        # one p-value per feature: Bonferroni over its two tests (distribution, missing share)
        rows.append((name, r.kind, test, stat, min(1.0, 2 * min(p, p_missing)), effects))
    q = benjamini_hochberg(np.array([row[4] for row in rows], float))
    features = []
    for (name, kind, test, stat, p, effects), qv in zip(rows, q, strict=True):
        effects = {k: finite(v) for k, v in effects.items()}
        reasons = _reasons(kind, effects, thresholds)
        features.append(
            FeatureDrift(
                name,
                kind,
                test,
                finite(stat),
                p,
                float(qv),
                effects,
                bool(reasons) and qv <= thresholds.alpha,
                reasons,
                ref.columns[name],
                cur.columns[name],
            )
        )
    return DriftResult(
        tuple(features),
        tuple(name for name in ref.columns if name not in current.columns),
        changed,
        tuple(str(c) for c in current.columns if str(c) not in ref.columns),
        thresholds,
        ref.rows,
        len(current),
    )


def _plot(feature: FeatureDrift) -> str:
    """A PNG (base64) comparing the feature's reference and current distributions."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6, 3), dpi=90)
    axes = figure.subplots()
    if feature.kind == "categorical":
        ref, cur = feature.reference.categories, feature.current.categories
        names = sorted(set(ref) | set(cur), key=lambda k: -ref.get(k, 0))[:20]
        x = np.arange(len(names))
        rt, ct = max(sum(ref.values()), 1), max(sum(cur.values()), 1)
        axes.bar(x - 0.2, [ref.get(k, 0) / rt for k in names], 0.4, label="reference")
        axes.bar(x + 0.2, [cur.get(k, 0) / ct for k in names], 0.4, label="current")
        axes.set_xticks(x, [("other" if k == OTHER else k)[:12] for k in names], rotation=45)
        axes.set_ylabel("share")
    else:
        grid = quantile_grid()
        axes.plot(feature.reference.quantiles, grid, label="reference")
        axes.plot(feature.current.quantiles, grid, label="current")
        axes.set_xlabel("string length" if feature.kind == "text" else feature.name)
        axes.set_ylabel("cumulative share")
    axes.set_title(feature.name[:60])
    axes.legend()
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def render_html(result: DriftResult, title: str = "secmlops drift report") -> str:
    """A self-contained HTML report: verdict, a table of every feature, a plot per drifted one."""
    esc = html.escape
    verdict = "DRIFT" if result.dataset_drift else "no data-set drift"
    rows = []
    for f in sorted(result.features, key=lambda f: (not f.drifted, f.q_value)):
        effects = ", ".join(f"{k} {v:.4f}" for k, v in f.effects.items())
        rows.append(
            f"<tr class={'drift' if f.drifted else 'ok'}><td>{esc(f.name)}</td><td>{f.kind}</td>"
            f"<td>{'yes' if f.drifted else 'no'}</td><td>{esc(effects)}</td><td>{f.test}</td>"
            f"<td>{f.p_value:.3g}</td><td>{f.q_value:.3g}</td></tr>"
        )
    plots = [
        f"<h3>{esc(f.name)}</h3><p>{esc('; '.join(f.reasons))}</p>"
        f'<img alt="{esc(f.name)}" src="data:image/png;base64,{_plot(f)}">'
        for f in result.drifted
    ]
    schema = "".join(f"<li>missing column {esc(n)}</li>" for n in result.missing_columns) + "".join(
        f"<li>column {esc(n)} changed type</li>" for n in result.changed_kind
    )
    t = result.thresholds
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:2px 6px}}tr.drift{{background:#fdd}}</style></head><body>
<h1>{esc(title)}</h1>
<p><b>{verdict}</b>: {len(result.drifted)} of {len(result.features)} features drifted
({result.share:.0%}; data-set threshold {t.dataset_share:.0%}). Reference {result.rows_reference}
rows, current {result.rows_current} rows.</p>
<p>Thresholds: normalised Wasserstein {t.wasserstein}, PSI {t.psi}, Jensen-Shannon {t.jensen_shannon},
missing share {t.missing}; confirmed by KS / chi-squared at n &le; {t.sample_cap} with
Benjamini-Hochberg FDR {t.alpha}.</p>
{f"<h2>Schema</h2><ul>{schema}</ul>" if schema else ""}
<h2>Features</h2>
<table><tr><th>feature</th><th>kind</th><th>drifted</th><th>effect sizes</th><th>test</th>
<th>p</th><th>q (BH)</th></tr>
{"".join(rows)}
</table>
<h2>Drifted features</h2>
{"".join(plots) or "<p>none</p>"}
</body></html>
"""


def result_summary(result: DriftResult) -> dict[str, Any]:
    """Per-feature figures for JSON consumers (benchmarks, dashboards)."""
    return {
        "dataset_drift": result.dataset_drift,
        "share": result.share,
        "features": {
            f.name: {"drifted": f.drifted, "q_value": f.q_value, **f.effects}
            for f in result.features
        },
    }
