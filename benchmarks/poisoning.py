"""Poisoning detection: precision and recall of flagged rows, secmlops against a plain baseline.

Real data: scikit-learn's bundled digits (1,797 x 64, 10 classes) and breast-cancer (569 x 30,
2 classes) tables, and the text of the PyPA advisory database in /work/shared/data (2,661
advisories, CC-BY 4.0; label: availability-only CVSS impact, i.e. denial of service, or other).
Attacks, each on a fresh copy with a fixed seed:

- label flips of 1 %, 5 % and 10 % of rows (to a random other class);
- an injected cluster: 2 % extra rows packed tightly around a shifted copy of a real row, labelled
  with another class;
- near-duplicate injection: 10 real rows copied 3 times each with tiny noise and a flipped label;
- a text trigger: a rare token appended to 2 % of the "other" advisories, relabelled "dos".

Flagged rows: the rows the attack's own rule lists ("rule" columns), and every row any
DATA-POISON-* finding lists ("all rules"; row lists uncapped). Baseline: rows whose out-of-fold
prediction (the same logistic regression, same folds) differs from the label.

    .venv/bin/python benchmarks/poisoning.py
"""

from __future__ import annotations

import os
import sys
import tarfile
import time
from pathlib import Path

# benchmarks/secrets.py would shadow the standard library's `secrets` (numpy imports it)
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

# one BLAS thread for both tools (scan_poisoning limits itself; the baseline must match)
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent / "src"))

from secmlops.findings import Location  # noqa: E402
from secmlops.scan.data.poisoning import (  # noqa: E402
    PoisonSettings,
    out_of_fold_probabilities,
    prepare_features,
    scan_poisoning,
)

ADVISORIES = Path("/work/shared/data/pypa-advisory-database-3ccb612.tar.gz")
WORK = BENCH / ".work" / "poisoning"
SETTINGS = PoisonSettings(max_rows_listed=10**9)
TRIGGER = "zx_cf7"
RULE_OF = {
    "label": "LABEL",
    "injected": "CLUSTER",
    "near-duplicates": "DUPLICATE",
    "text": "TRIGGER",
}


def tabular(name: str) -> pd.DataFrame:
    from sklearn.datasets import load_breast_cancer, load_digits

    loader = {"digits": load_digits, "breast_cancer": load_breast_cancer}[name]
    frame = loader(as_frame=True).frame.rename(columns={"target": "label"})
    frame.columns = [str(c) for c in frame.columns]
    return frame


def advisories() -> pd.DataFrame:
    import yaml

    WORK.mkdir(parents=True, exist_ok=True)
    cache = WORK / "advisories.parquet"
    if cache.exists():
        return pd.read_parquet(cache)
    rows = []
    with tarfile.open(ADVISORIES) as tar:
        for member in tar.getmembers():
            if not (member.isfile() and member.name.endswith(".yaml")):
                continue
            handle = tar.extractfile(member)
            if handle is None:
                continue
            doc = yaml.safe_load(handle.read())
            text = " ".join(str(doc.get(k, "")) for k in ("summary", "details")).strip()
            vectors = [s.get("score", "") for s in doc.get("severity") or []]
            if not text or not vectors:
                continue
            vector = str(vectors[0])
            dos = "A:H" in vector and "C:N" in vector and "I:N" in vector
            rows.append({"text": text, "label": "dos" if dos else "other"})
    frame = pd.DataFrame(rows)
    frame.to_parquet(cache)
    return frame


def flip(
    frame: pd.DataFrame, share: float, rng: np.random.Generator
) -> tuple[pd.DataFrame, set[int]]:
    out = frame.copy()
    rows = rng.choice(len(out), max(1, round(share * len(out))), replace=False)
    classes = sorted(out["label"].unique())
    for r in rows:
        current = out.at[r, "label"]
        out.at[r, "label"] = rng.choice([c for c in classes if c != current])
    return out, set(rows.tolist())


def cluster(frame: pd.DataFrame, rng: np.random.Generator) -> tuple[pd.DataFrame, set[int]]:
    features = [c for c in frame.columns if c != "label"]
    x = frame[features].to_numpy(float)
    sd = x.std(axis=0) + 1e-9
    source = rng.integers(len(frame))
    center = x[source] + 3 * sd * rng.choice([-1, 1], len(features)) * (
        rng.random(len(features)) < 0.2
    )
    count = max(5, round(0.02 * len(frame)))
    points = center + rng.normal(0, 0.05, (count, len(features))) * sd
    injected = pd.DataFrame(points, columns=features)
    classes = sorted(frame["label"].unique())
    injected["label"] = rng.choice([c for c in classes if c != frame.at[source, "label"]])
    out = pd.concat([frame, injected.astype(frame.dtypes.to_dict())], ignore_index=True)
    return out, set(range(len(frame), len(out)))


def duplicates(frame: pd.DataFrame, rng: np.random.Generator) -> tuple[pd.DataFrame, set[int]]:
    features = [c for c in frame.columns if c != "label"]
    sd = frame[features].to_numpy(float).std(axis=0) + 1e-9
    sources = rng.choice(len(frame), 10, replace=False)
    copies = frame.iloc[np.repeat(sources, 3)].reset_index(drop=True)
    copies[features] = (
        copies[features].to_numpy(float) + rng.normal(0, 0.01, (30, len(features))) * sd
    )
    classes = sorted(frame["label"].unique())
    copies["label"] = [rng.choice([c for c in classes if c != lab]) for lab in copies["label"]]
    out = pd.concat([frame.astype({f: float for f in features}), copies], ignore_index=True)
    return out, set(range(len(frame), len(out)))


def trigger(frame: pd.DataFrame, rng: np.random.Generator) -> tuple[pd.DataFrame, set[int]]:
    out = frame.copy()
    others = np.flatnonzero(out["label"].to_numpy() == "other")
    rows = rng.choice(others, max(5, round(0.02 * len(out))), replace=False)
    out.loc[rows, "text"] = out.loc[rows, "text"] + f" {TRIGGER}"
    out.loc[rows, "label"] = "dos"
    return out, set(rows.tolist())


def flagged_by_secmlops(frame: pd.DataFrame) -> tuple[dict[str, set[int]], float]:
    """Rows listed per rule, and the seconds the whole scan took."""
    t0 = time.perf_counter()
    findings = scan_poisoning(
        frame, label="label", location=Location(path="bench"), settings=SETTINGS
    )
    seconds = time.perf_counter() - t0
    per_rule: dict[str, set[int]] = {}
    for f in findings:
        if f.rule_id in ("DATA-POISON-UNCHECKED", "DATA-POISON-BALANCE") or not f.location.rows:
            continue
        per_rule.setdefault(f.rule_id.removeprefix("DATA-POISON-"), set()).update(f.location.rows)
    return per_rule, seconds


def flagged_by_baseline(frame: pd.DataFrame) -> tuple[set[int], float]:
    t0 = time.perf_counter()
    features = prepare_features(frame, "label")
    probs = out_of_fold_probabilities(features, SETTINGS)
    assert probs is not None
    wrong = np.flatnonzero(probs.argmax(axis=1) != features.labels)
    return set(features.positions[wrong].tolist()), time.perf_counter() - t0


def pr(flagged: set[int], truth: set[int]) -> tuple[float, float]:
    hit = len(flagged & truth)
    return (hit / len(flagged) if flagged else 0.0), (hit / len(truth) if truth else 0.0)


def main() -> None:
    scenarios = []
    for name in ("digits", "breast_cancer"):
        base = tabular(name)
        for share in (0.01, 0.05, 0.10):
            scenarios.append(
                (name, f"label flip {share:.0%}", *flip(base, share, np.random.default_rng(1)))
            )
        scenarios.append((name, "injected cluster 2%", *cluster(base, np.random.default_rng(2))))
        scenarios.append(
            (name, "near-duplicates 10x3", *duplicates(base, np.random.default_rng(3)))
        )
    text = advisories()
    scenarios.append(("advisories", "text trigger 2%", *trigger(text, np.random.default_rng(4))))
    # warm up imports so the first timing is not an import
    scan_poisoning(tabular("breast_cancer"), label="label", location=Location(), checks=["label"])

    header = (
        f"{'data':14} {'attack':22} {'poisoned':>8} | {'rule':9} {'P':>5} {'R':>5} | "
        f"{'all rules P':>11} {'R':>5} {'F1':>5} {'s':>5} | {'baseline P':>10} {'R':>5} {'F1':>5} | rows per rule"
    )
    print(header)
    print("-" * len(header))
    for data, attack, frame, truth in scenarios:
        per_rule, seconds = flagged_by_secmlops(frame)
        ours = set().union(*per_rule.values()) if per_rule else set()
        base, _ = flagged_by_baseline(frame)
        own = RULE_OF[attack.split()[0]]
        p0, r0 = pr(per_rule.get(own, set()), truth)
        p1, r1 = pr(ours, truth)
        p2, r2 = pr(base, truth)
        f1 = 2 * p1 * r1 / (p1 + r1) if p1 + r1 else 0.0
        f2 = 2 * p2 * r2 / (p2 + r2) if p2 + r2 else 0.0
        rules = ", ".join(f"{k}:{len(v)}" for k, v in sorted(per_rule.items()))
        print(
            f"{data:14} {attack:22} {len(truth):>8} | {own:9} {p0:>5.2f} {r0:>5.2f} | "
            f"{p1:>11.2f} {r1:>5.2f} {f1:>5.2f} {seconds:>5.1f} | {p2:>10.2f} {r2:>5.2f} {f2:>5.2f} | {rules}",
            flush=True,
        )


if __name__ == "__main__":
    main()
