"""Poisoning checks on a labelled training table: label issues, injected clusters, duplicates,
class-balance shift and backdoor-trigger signals.

Every finding lists the suspicious row positions (0-based, in file order; capped) with their count
and a score, so a person can review them. A check that cannot run says so with a
DATA-POISON-UNCHECKED finding; input that cannot be checked at all raises DataError.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from secmlops.errors import DataError
from secmlops.findings import Finding, Location, Severity
from secmlops.scan.data import stats_rules as R
from secmlops.scan.data.multiple_testing import benjamini_hochberg


@dataclass(frozen=True, slots=True)
class PoisonSettings:
    """Thresholds of the poisoning checks (defaults are documented in docs/poisoning.md)."""

    max_rows_listed: int = 50
    folds: int = 5
    min_rows: int = 20
    seed: int = 0
    # duplicates: a row is a near-duplicate when its neighbour is closer than this share of the
    # median nearest-neighbour distance (standardised features), or MinHash Jaccard >= text_jaccard
    near_duplicate_ratio: float = 0.05
    text_jaccard: float = 0.8
    # clusters: at least this many IsolationForest-anomalous rows of one class within one typical
    # neighbour distance of each other, and no more than this share of the class
    cluster_min_size: int = 5
    cluster_max_share: float = 0.2
    cluster_max_spacing: float = 0.5  # the group's median k-NN spacing / the class's
    cluster_density_ratio: float = 0.25  # k-NN distance below this share of the class's: dense
    # triggers: support bounds, label purity, lift over the base rate, false-discovery rate
    trigger_min_support: int = 5
    trigger_max_share: float = 0.05
    trigger_purity: float = 0.95
    trigger_min_lift: float = 1.5
    # ...and the rows' nearest look-alikes without the value mostly carry other labels
    trigger_max_agreement: float = 0.5
    fdr: float = 0.01
    # balance: Cohen's w (small effect = 0.1) and significance
    balance_min_effect: float = 0.1
    balance_alpha: float = 0.01


DEFAULT_SETTINGS = PoisonSettings()
_MAX_ONE_HOT = 50  # category levels per column kept as features (the rest share one column)
_MAX_TEXT_FEATURES = 2**14
# words and runs of symbols (triggers are often symbols)
_TOKEN_PATTERN = r"(?u)\b\w+\b|[^\w\s]+"  # noqa: S105


@dataclass(frozen=True, slots=True)
class Features:
    """A table turned into model inputs, with the label encoded as 0..K-1."""

    dense: np.ndarray  # standardised numeric columns plus one-hot categories (rows x d)
    text: Any  # scipy sparse TF-IDF of the text columns, or None
    texts: tuple[str, ...]  # text column names
    categorical: tuple[str, ...]
    numeric: tuple[str, ...]
    labels: np.ndarray
    classes: tuple[Any, ...]
    positions: np.ndarray  # row positions in the input frame (rows with a missing label dropped)
    dense_columns: tuple[str, ...] = ()  # the source column of each dense feature


def _is_text(series: pd.Series) -> bool:
    values = series.dropna()
    if values.empty:
        return False
    sample = values.astype(str).head(2000)
    words = sample.str.count(r"\s+").mean() + 1
    return bool(words >= 3 or sample.nunique() > max(_MAX_ONE_HOT, 0.5 * len(sample)))


def _column_kinds(frame: pd.DataFrame, label: str) -> tuple[list[str], list[str], list[str]]:
    numeric: list[str] = []
    categorical: list[str] = []
    texts: list[str] = []
    for name in frame.columns:
        if name == label:
            continue
        series = frame[name]
        if pd.api.types.is_bool_dtype(series) or pd.api.types.is_numeric_dtype(series):
            numeric.append(str(name))
        elif pd.api.types.is_datetime64_any_dtype(series):
            continue  # timestamps identify when, not what; they are no features of the content
        elif _is_text(series):
            texts.append(str(name))
        else:
            categorical.append(str(name))
    return numeric, categorical, texts


def prepare_features(frame: pd.DataFrame, label: str) -> Features:
    """Encode `frame` for the checks; raise DataError when it cannot be checked at all."""
    if label not in frame.columns:
        raise DataError(
            f"label column {label!r} not found",
            hint=f"columns are: {', '.join(map(str, list(frame.columns)[:20]))}",
        )
    present = frame[label].notna().to_numpy()
    data = frame.loc[present]
    if len(data) < DEFAULT_SETTINGS.min_rows:
        raise DataError(
            f"{len(data)} labelled rows: too few to check for poisoning",
            hint=f"the checks need at least {DEFAULT_SETTINGS.min_rows} rows with a label",
        )
    classes, labels = np.unique(data[label].astype(str).to_numpy(), return_inverse=True)
    if len(classes) < 2:
        raise DataError(
            f"label column {label!r} has a single class ({classes[0]!r})",
            hint="poisoning checks compare classes; check that --label names the target column",
        )
    numeric, categorical, texts = _column_kinds(data, label)
    blocks: list[np.ndarray] = []
    sources: list[str] = []
    if numeric:
        values = data[numeric].astype("float64").to_numpy(copy=True)
        values[~np.isfinite(values)] = np.nan
        medians = np.nanmedian(np.where(np.isnan(values).all(0), 0.0, values), axis=0)
        values = np.where(np.isnan(values), medians, values)
        std, mean = values.std(axis=0), values.mean(axis=0)
        # a column that only varies by rounding noise is constant: scaling it up to unit variance
        # would let that noise outweigh every real feature in the distances below
        blocks.append((values - mean) / np.where(std > 1e-9 * (np.abs(mean) + 1.0), std, 1.0))
        sources.extend(numeric)
    for name in categorical:
        codes = data[name].astype(str).where(data[name].notna(), "\0missing")
        top = codes.value_counts().index[:_MAX_ONE_HOT]
        onehot = (codes.to_numpy()[:, None] == np.asarray(top)[None, :]).astype("float64")
        blocks.append(onehot)
        sources.extend([name] * onehot.shape[1])
    dense = np.hstack(blocks) if blocks else np.zeros((len(data), 0))
    text = None
    if texts:
        from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer

        joined = data[texts].fillna("").astype(str).agg(" ".join, axis=1)
        counts = HashingVectorizer(
            n_features=_MAX_TEXT_FEATURES, alternate_sign=False, norm=None
        ).transform(joined)
        text = TfidfTransformer().fit_transform(counts)
    if dense.shape[1] == 0 and text is None:
        raise DataError(
            "no usable feature columns besides the label",
            hint="the table needs numeric, categorical or text columns",
        )
    return Features(
        dense=dense,
        text=text,
        texts=tuple(texts),
        categorical=tuple(categorical),
        numeric=tuple(numeric),
        labels=labels,
        classes=tuple(classes.tolist()),
        positions=np.flatnonzero(present),
        dense_columns=tuple(sources),
    )


def out_of_fold_probabilities(
    features: Features, settings: PoisonSettings = DEFAULT_SETTINGS
) -> np.ndarray | None:
    """Out-of-fold predicted class probabilities from a logistic regression, or None when a class
    has fewer than two rows (cross-validation needs two per class)."""
    from scipy import sparse
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    smallest = int(np.bincount(features.labels).min())
    folds = min(settings.folds, smallest)
    if folds < 2:
        return None
    inputs: Any = features.dense
    if features.text is not None:
        inputs = sparse.hstack([sparse.csr_matrix(features.dense), features.text], format="csr")
    model = LogisticRegression(max_iter=300, C=1.0)
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=settings.seed)
    probs: np.ndarray = cross_val_predict(
        model, inputs, features.labels, cv=cv, method="predict_proba"
    )
    return probs


def _rows(features: Features, local: np.ndarray | Sequence[int], cap: int) -> tuple[int, ...]:
    return tuple(int(features.positions[i]) for i in list(local)[:cap])


def _unchecked(
    location: Location, check: str, why: str, severity: Severity | None = None
) -> Finding:
    return R.POISON_UNCHECKED.finding(
        location, f"{check} check did not run: {why}", {"check": check}, severity=severity
    )


def check_label_issues(
    features: Features, location: Location, settings: PoisonSettings = DEFAULT_SETTINGS
) -> list[Finding]:
    """Confident learning (cleanlab core) on out-of-fold probabilities."""
    from cleanlab.filter import find_label_issues

    probs = out_of_fold_probabilities(features, settings)
    if probs is None:
        return [_unchecked(location, "label", "a class has a single row")]
    ranked = np.asarray(
        find_label_issues(features.labels, probs, return_indices_ranked_by="self_confidence")
    )
    if ranked.size == 0:
        return []
    score = 1.0 - probs[ranked, features.labels[ranked]]
    n = len(features.labels)
    return [
        R.POISON_LABEL.finding(
            replace(location, rows=_rows(features, ranked, settings.max_rows_listed)),
            f"{ranked.size} of {n} rows ({ranked.size / n:.1%}) look mislabelled: their given label "
            "is unlikely under a model that did not see them (rows listed worst first)",
            {
                "count": int(ranked.size),
                "share": round(ranked.size / n, 5),
                "scores": [round(float(s), 4) for s in score[: settings.max_rows_listed]],
                "method": f"cleanlab find_label_issues on {min(settings.folds, int(np.bincount(features.labels).min()))}-fold "
                "out-of-fold logistic-regression probabilities; score = 1 - p(given label)",
            },
        )
    ]


def check_clusters(
    features: Features, location: Location, settings: PoisonSettings = DEFAULT_SETTINGS
) -> list[Finding]:
    """Per class: IsolationForest marks anomalous rows and a k-NN density test marks rows far
    denser than the class; DBSCAN keeps only those that form a tight group."""
    from sklearn.cluster import DBSCAN
    from sklearn.ensemble import IsolationForest
    from sklearn.neighbors import NearestNeighbors

    x = features.dense
    if x.shape[1] == 0:
        return [_unchecked(location, "cluster", "no numeric or categorical feature columns")]
    findings: list[Finding] = []
    skipped: list[str] = []
    k = settings.cluster_min_size
    for cls_index, cls in enumerate(features.classes):
        members = np.flatnonzero(features.labels == cls_index)
        # Distinct points only: rows of discrete data (binary, small integers, one-hot) coincide
        # by nature, and a stack of equal rows is no tight group (copies are the duplicate
        # check's business); a class of a few distinct points has no shape to compare with.
        xc, of_row = np.unique(x[members], axis=0, return_inverse=True)
        of_row = of_row.reshape(-1)
        if len(xc) < 4 * k:
            skipped.append(str(cls))
            continue
        forest = IsolationForest(n_estimators=50, random_state=settings.seed).fit(xc)
        anomaly = -forest.score_samples(xc)  # about 0.5 normal, towards 1 isolated
        dist, _ = NearestNeighbors(n_neighbors=k + 1).fit(xc).kneighbors(xc)
        typical = float(np.median(dist[:, k]))
        if typical <= 0:
            typical = float(np.mean(dist[:, k])) or 1e-9
        # a clump large enough to mask itself from the forest (its points shield each other) is
        # still far denser than the class
        dense = dist[:, k] < settings.cluster_density_ratio * typical
        candidates = np.flatnonzero((forest.predict(xc) == -1) | dense)
        if len(candidates) < k:
            continue
        groups = DBSCAN(eps=typical, min_samples=k).fit_predict(xc[candidates])
        # Chance clumps are common in few dimensions (a k-NN distance fluctuates like a Gamma(k)
        # variable to the power 1/d): below 5 varying features the group must be as much denser
        # than the class as max_spacing asks of 5 features, i.e. spacing <= max^(5/d).
        varying = max(1, int((xc.std(axis=0) > 0).sum()))
        max_spacing = settings.cluster_max_spacing ** (max(1.0, 5 / varying))
        for group in sorted(set(groups.tolist()) - {-1}):
            local = candidates[groups == group]
            rows = np.flatnonzero(np.isin(of_row, local))  # the class's rows at those points
            if len(local) < k or len(rows) > settings.cluster_max_share * len(members):
                continue
            # The group's own k-NN spacing against the class's k-NN spacing: like for like. (A
            # nearest-neighbour distance is naturally ~0.7 of a 5th-neighbour one, so comparing
            # those flagged ordinary corners of skewed or discrete data as "tight".)
            inner, _ = NearestNeighbors(n_neighbors=k).fit(xc[local]).kneighbors(xc[local])
            tightness = float(np.median(inner[:, k - 1]) / typical)
            if tightness > max_spacing:
                continue  # anomalous but spread out like ordinary outliers
            score = anomaly[of_row[rows]]
            order = rows[np.argsort(-score, kind="stable")]
            findings.append(
                R.POISON_CLUSTER.finding(
                    replace(
                        location, rows=_rows(features, members[order], settings.max_rows_listed)
                    ),
                    f"{len(rows)} rows of class {cls!r} form a tight group, isolated or far denser "
                    f"than the class (IsolationForest score {score.mean():.2f}; spacing "
                    f"{tightness:.2f} of the class's typical neighbour distance)",
                    {
                        "count": len(rows),
                        "class": str(cls),
                        "score": round(float(score.mean()), 4),
                        "tightness": round(tightness, 4),
                        "method": "IsolationForest per class over distinct rows plus rows whose "
                        f"{k}-NN distance is below {settings.cluster_density_ratio} x the class "
                        f"median, then DBSCAN(eps = that median, min_samples = {k}) over them; "
                        f"kept when the group's own {k}-NN spacing is at most "
                        f"{max_spacing:.3g} x the class's",
                    },
                )
            )
    if skipped:
        findings.append(
            _unchecked(
                location,
                "cluster",
                f"classes with fewer than {4 * k} distinct rows were not checked: "
                + ", ".join(repr(s) for s in skipped[:10]),
            )
        )
    return findings


def _minhash_pairs(texts: Sequence[str], threshold: float, seed: int) -> list[tuple[int, int]]:
    """Pairs of texts whose estimated Jaccard similarity of word 3-shingles is >= threshold
    (MinHash with 64 permutations, LSH of 16 bands x 4 rows; candidates verified exactly)."""
    prime = (1 << 61) - 1
    rng = np.random.default_rng(seed)
    a = rng.integers(1, prime, 64, dtype=np.uint64)
    b = rng.integers(0, prime, 64, dtype=np.uint64)
    shingles: list[set[int]] = []
    signatures = np.full((len(texts), 64), np.iinfo(np.uint64).max, dtype=np.uint64)
    for row, text in enumerate(texts):
        words = re.findall(r"\w+", text.lower())
        grams = {" ".join(words[i : i + 3]) for i in range(max(1, len(words) - 2))}
        hashed = {
            int.from_bytes(hashlib.blake2b(g.encode(), digest_size=7).digest(), "little")
            for g in grams
            if g
        }
        shingles.append(hashed)
        if hashed:
            h = np.fromiter(hashed, dtype=np.uint64)
            # (a*h + b) mod 2^64 is a universal-enough permutation for 56-bit inputs here
            signatures[row] = (np.outer(h, a) + b).min(axis=0)
    pairs: set[tuple[int, int]] = set()
    for band in range(16):
        buckets: dict[bytes, list[int]] = {}
        for row in range(len(texts)):
            if shingles[row]:
                buckets.setdefault(signatures[row, band * 4 : band * 4 + 4].tobytes(), []).append(
                    row
                )
        for rows in buckets.values():
            for i in range(len(rows)):
                for j in rows[i + 1 : i + 20]:  # a bucket of thousands is one big duplicate group
                    pairs.add((rows[i], j))
    out = []
    for i, j in pairs:
        inter = len(shingles[i] & shingles[j])
        if inter / len(shingles[i] | shingles[j]) >= threshold:
            out.append((i, j))
    return out


def check_duplicates(
    frame: pd.DataFrame,
    features: Features,
    location: Location,
    settings: PoisonSettings = DEFAULT_SETTINGS,
) -> list[Finding]:
    """Exact and near-duplicate rows (kNN distance on standardised features; MinHash on text)."""
    from scipy import sparse
    from scipy.sparse.csgraph import connected_components
    from sklearn.neighbors import NearestNeighbors

    n = len(features.labels)
    edges: list[tuple[int, int]] = []
    method = []
    x = features.dense
    limit = 0.0
    if x.shape[1]:
        k = min(6, n)
        dist, idx = NearestNeighbors(n_neighbors=k).fit(x).kneighbors(x)
        positive = dist[:, 1][dist[:, 1] > 0]
        typical = float(np.median(positive)) if positive.size else 0.0
        limit = settings.near_duplicate_ratio * typical
        rows, cols = np.nonzero(dist[:, 1:] <= limit)
        method.append(
            f"nearest neighbours closer than {settings.near_duplicate_ratio} x the median "
            "neighbour distance on standardised features"
        )
        if not features.texts:
            edges = list(zip(rows.tolist(), idx[:, 1:][rows, cols].tolist(), strict=True))
    if features.texts:
        frame_rows = frame.iloc[features.positions]
        joined = frame_rows[list(features.texts)].fillna("").astype(str).agg(" ".join, axis=1)
        edges = _minhash_pairs(joined.tolist(), settings.text_jaccard, settings.seed)
        method.append(f"MinHash Jaccard >= {settings.text_jaccard} on word 3-shingles of text")
        if x.shape[1] and edges:
            # a row is a duplicate only if its text AND its other columns agree
            pairs = np.asarray(edges)
            gap = np.linalg.norm(x[pairs[:, 0]] - x[pairs[:, 1]], axis=1)
            edges = [e for e, g in zip(edges, gap, strict=True) if g <= limit]
    if not edges:
        return []
    pairs = np.asarray(edges)
    graph = sparse.coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    _, component = connected_components(graph, directed=False)
    sizes = np.bincount(component)
    in_group = sizes[component] > 1
    conflicting: list[int] = []
    same: list[int] = []
    largest = 0
    for comp in np.unique(component[in_group]):
        members = np.flatnonzero(component == comp)
        largest = max(largest, len(members))
        (conflicting if len(set(features.labels[members].tolist())) > 1 else same).extend(
            members.tolist()
        )
    findings = []
    how = "; ".join(method)
    if conflicting:
        findings.append(
            R.POISON_DUPLICATE.finding(
                replace(location, rows=_rows(features, conflicting, settings.max_rows_listed)),
                f"{len(conflicting)} rows are (near-)copies of each other but carry different "
                "labels",
                {
                    "count": len(conflicting),
                    "conflicting_labels": True,
                    "score": 1.0,
                    "method": how,
                },
                severity=Severity.HIGH,
            )
        )
    if same:
        groups = len(np.unique(component[np.asarray(same)]))
        findings.append(
            R.POISON_DUPLICATE.finding(
                replace(location, rows=_rows(features, same, settings.max_rows_listed)),
                f"{len(same)} rows in {groups} groups are exact or near-duplicates with the same "
                f"label (largest group {largest})",
                {
                    "count": len(same),
                    "groups": groups,
                    "largest_group": int(largest),
                    "conflicting_labels": False,
                    "score": round(len(same) / n, 5),
                    "method": how,
                },
                severity=Severity.MEDIUM if largest >= 3 else Severity.LOW,
            )
        )
    return findings


def check_balance(
    frame: pd.DataFrame,
    label: str,
    reference: pd.DataFrame | None,
    location: Location,
    settings: PoisonSettings = DEFAULT_SETTINGS,
) -> list[Finding]:
    """Label shares against the reference: chi-squared contingency plus Cohen's w."""
    from scipy.stats import chi2_contingency

    if reference is None:
        # a missing reference is the user's choice, not a failure: say so, but do not fail the gate
        return [_unchecked(location, "balance", "no reference data set was given", Severity.INFO)]
    if label not in reference.columns:
        raise DataError(f"the reference has no label column {label!r}")
    cur = frame[label].dropna().astype(str).value_counts()
    ref = reference[label].dropna().astype(str).value_counts()
    if ref.sum() == 0:
        raise DataError("the reference has no labelled rows")
    classes = sorted(set(cur.index) | set(ref.index))
    table = np.array([[ref.get(c, 0) for c in classes], [cur.get(c, 0) for c in classes]], float)
    p_ref = table[0] / table[0].sum()
    p_cur = table[1] / table[1].sum()
    new = [c for c, p in zip(classes, p_ref, strict=True) if p == 0]
    _, p_value, _, _ = chi2_contingency(table)
    seen = p_ref > 0
    w = float(np.sqrt(np.sum((p_cur[seen] - p_ref[seen]) ** 2 / p_ref[seen])))
    if not new and not (p_value < settings.balance_alpha and w >= settings.balance_min_effect):
        return []
    moved = np.argsort(-np.abs(p_cur - p_ref))[:5]
    shares = {classes[i]: [round(float(p_ref[i]), 4), round(float(p_cur[i]), 4)] for i in moved}
    extra = f"; classes absent from the reference: {', '.join(new[:5])}" if new else ""
    return [
        R.POISON_BALANCE.finding(
            replace(location, column=label),
            f"label shares moved from the reference (Cohen's w {w:.3f}, chi-squared p "
            f"{p_value:.2g}){extra}",
            {
                "score": round(w, 4),
                "p_value": float(p_value),
                "shares_reference_current": shares,
                "new_classes": new[:20],
            },
        )
    ]


@dataclass(frozen=True, slots=True)
class _Candidate:
    column: str
    value: str
    counts: np.ndarray  # rows with the value, per class
    rows: np.ndarray  # local row indices with the value
    token: int = -1  # for text: the token's column in the column's document matrix


def _value_candidates(
    frame: pd.DataFrame, features: Features, k: int, low: int, high: int
) -> list[_Candidate]:
    data = frame.iloc[features.positions]
    out: list[_Candidate] = []
    for name in (*features.categorical, *features.numeric):
        series = data[name]
        counts = series.value_counts(dropna=True)
        counts = counts[(counts >= low) & (counts <= high)]
        if counts.empty or len(counts) > 10_000:
            continue
        values = series.to_numpy()
        for value in counts.index:
            rows = np.flatnonzero(values == value)
            out.append(
                _Candidate(
                    name, str(value)[:64], np.bincount(features.labels[rows], minlength=k), rows
                )
            )
    return out


def _token_candidates(
    frame: pd.DataFrame, features: Features, k: int, low: int, high: int, spaces: dict[str, Any]
) -> list[_Candidate]:
    from sklearn.feature_extraction.text import CountVectorizer

    data = frame.iloc[features.positions]
    out: list[_Candidate] = []
    onehot = np.eye(k)[features.labels]
    for name in features.texts:
        vectorizer = CountVectorizer(
            binary=True, lowercase=True, token_pattern=_TOKEN_PATTERN, min_df=low
        )
        try:
            docs = vectorizer.fit_transform(data[name].fillna("").astype(str))
        except ValueError:  # no token reaches the minimum support
            continue
        support = np.asarray(docs.sum(axis=0)).ravel()
        keep = np.flatnonzero(support <= high)
        per_class = np.asarray(docs[:, keep].T @ onehot)
        vocab = vectorizer.get_feature_names_out()
        columns = docs[:, keep].tocsc()
        for j, token_index in enumerate(keep):
            rows = columns.indices[columns.indptr[j] : columns.indptr[j + 1]]
            out.append(
                _Candidate(
                    name, str(vocab[token_index]), per_class[j].astype(int), rows, int(token_index)
                )
            )
        spaces[name] = docs
    return out


_NEIGHBOURS = 10
_MAX_PROBE_ROWS = 200


def _neighbour_agreement(
    candidate: _Candidate, label: int, features: Features, spaces: dict[str, Any], seed: int
) -> float:
    """Share of the nearest rows WITHOUT the value (measured without the value's column or token)
    that carry the candidate's label. Natural associations score high (look-alikes share the
    label); a trigger stamped on rows of other classes scores low."""
    from sklearn.feature_extraction.text import TfidfTransformer
    from sklearn.preprocessing import normalize

    rng = np.random.default_rng(seed)
    probe = candidate.rows
    if len(probe) > _MAX_PROBE_ROWS:
        probe = rng.choice(probe, _MAX_PROBE_ROWS, replace=False)
    if candidate.token >= 0:
        docs = spaces[candidate.column]
        others = np.flatnonzero(np.arange(docs.shape[1]) != candidate.token)
        matrix = normalize(TfidfTransformer().fit_transform(docs[:, others]))
        similarity = np.asarray((matrix[probe] @ matrix.T).todense())
    else:
        keep = np.asarray([c != candidate.column for c in features.dense_columns])
        if not keep.any():
            return 0.0
        x = features.dense[:, keep]
        sq = (x**2).sum(axis=1)
        similarity = -(sq[probe, None] + sq[None, :] - 2.0 * x[probe] @ x.T)
    similarity[:, candidate.rows] = -np.inf  # look only at rows that do not carry the value
    k = min(_NEIGHBOURS, similarity.shape[1] - len(candidate.rows))
    if k <= 0:
        return 1.0
    nearest = np.argpartition(-similarity, k - 1, axis=1)[:, :k]
    return float(np.mean(features.labels[nearest] == label))


def check_triggers(
    frame: pd.DataFrame,
    features: Features,
    location: Location,
    settings: PoisonSettings = DEFAULT_SETTINGS,
) -> list[Finding]:
    """Rare values (categorical or discrete numeric) and text tokens whose rows nearly all share
    one label: chi-squared of value x label, Benjamini-Hochberg over every test made."""
    from scipy.stats import chi2

    n = len(features.labels)
    k = len(features.classes)
    low = settings.trigger_min_support
    high = max(low, int(settings.trigger_max_share * n))
    candidates = _value_candidates(frame, features, k, low, high)
    spaces: dict[str, Any] = {}
    candidates += _token_candidates(frame, features, k, low, high, spaces)
    if not candidates:
        return []
    totals = np.bincount(features.labels, minlength=k).astype(float)
    counts = np.array([c.counts for c in candidates], dtype=float)  # m x k
    support = counts.sum(axis=1, keepdims=True)
    # 2 x k contingency per candidate: rows with the value, rows without it
    expected_in = support * totals / n
    expected_out = (n - support) * totals / n
    outside = totals - counts
    with np.errstate(divide="ignore", invalid="ignore"):
        stat = np.nansum((counts - expected_in) ** 2 / expected_in, axis=1) + np.nansum(
            (outside - expected_out) ** 2 / expected_out, axis=1
        )
    p = chi2.sf(stat, k - 1)
    q = benjamini_hochberg(p)
    top = counts.argmax(axis=1)
    purity = counts.max(axis=1) / support[:, 0]
    lift = purity / (totals[top] / n)
    hits = np.flatnonzero(
        (q <= settings.fdr)
        & (purity >= settings.trigger_purity)
        & (lift >= settings.trigger_min_lift)
    )
    findings = []
    for i in hits[np.argsort(q[hits])][:100]:
        c = candidates[i]
        agreement = _neighbour_agreement(c, int(top[i]), features, spaces, settings.seed)
        if agreement > settings.trigger_max_agreement:
            continue  # the rows' look-alikes share the label: a natural association
        kind = "token" if c.column in features.texts else "value"
        findings.append(
            R.POISON_TRIGGER.finding(
                replace(
                    location,
                    column=c.column,
                    rows=_rows(features, c.rows, settings.max_rows_listed),
                ),
                f"{kind} {c.value!r} occurs in {int(support[i, 0])} rows ({support[i, 0] / n:.2%}) "
                f"and {purity[i]:.0%} of them have label {features.classes[top[i]]!r} (base rate "
                f"{totals[top[i]] / n:.0%}; chi-squared {stat[i]:.1f}, BH q {q[i]:.2g}); only "
                f"{agreement:.0%} of their nearest look-alikes without it share that label",
                {
                    "count": int(support[i, 0]),
                    kind: c.value,
                    "label": str(features.classes[top[i]]),
                    "purity": round(float(purity[i]), 4),
                    "lift": round(float(lift[i]), 3),
                    "score": round(float(purity[i]), 4),
                    "chi2": round(float(stat[i]), 2),
                    "q_value": float(q[i]),
                    "neighbour_agreement": round(agreement, 4),
                    "tests": len(candidates),
                },
            )
        )
    return findings


CHECKS = ("label", "cluster", "duplicate", "balance", "trigger")


def scan_poisoning(
    frame: pd.DataFrame,
    *,
    label: str,
    reference: pd.DataFrame | None = None,
    location: Location,
    settings: PoisonSettings = DEFAULT_SETTINGS,
    checks: Sequence[str] = CHECKS,
) -> list[Finding]:
    """Run the poisoning checks on a labelled table; DataError when it cannot be checked at all."""
    unknown = set(checks) - set(CHECKS)
    if unknown:
        raise DataError(
            f"unknown poisoning check {sorted(unknown)[0]!r}", hint=f"use: {', '.join(CHECKS)}"
        )
    from threadpoolctl import threadpool_limits

    # the matrices here are small: multi-threaded BLAS only spins, and on a busy machine that
    # made the label check 15x slower than one thread
    with threadpool_limits(limits=1, user_api="blas"):
        return _run_checks(frame, label, reference, location, settings, checks)


def _run_checks(
    frame: pd.DataFrame,
    label: str,
    reference: pd.DataFrame | None,
    location: Location,
    settings: PoisonSettings,
    checks: Sequence[str],
) -> list[Finding]:
    features = prepare_features(frame, label)
    findings: list[Finding] = []
    if "label" in checks:
        findings += check_label_issues(features, location, settings)
    if "cluster" in checks:
        findings += check_clusters(features, location, settings)
    if "duplicate" in checks:
        findings += check_duplicates(frame, features, location, settings)
    if "balance" in checks:
        findings += check_balance(frame, label, reference, location, settings)
    if "trigger" in checks:
        findings += check_triggers(frame, features, location, settings)
    return findings
