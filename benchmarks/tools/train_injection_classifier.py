"""Train the `[llm]` prompt-injection classifier and write src/secmlops/serve/injection_classifier.json.

    .venv/bin/python benchmarks/tools/train_injection_classifier.py

Trains on the development split of benchmarks/prompt_injection.py's corpus only (bastioncorpus,
our hard benign look-alikes, PyPA advisory texts); the held-out split stays for the benchmark.
Logistic regression (class-balanced, C chosen by 5-fold cross-validation on the development split)
on WordLlama l2_supercat 256-d normalised embeddings of the shield-normalised text. Deterministic:
the same corpus gives the same weights.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:] = [str(ROOT / "src")] + [
    p
    for p in sys.path
    if Path(p or ".").resolve() not in (ROOT / "benchmarks", ROOT / "benchmarks" / "tools")
]

import numpy as np  # noqa: E402 - after the sys.path fix above
from sklearn.linear_model import LogisticRegression  # noqa: E402 - after the sys.path fix above
from sklearn.model_selection import StratifiedKFold, cross_val_predict  # noqa: E402

from secmlops.serve.injection_classifier import WEIGHTS_FILE, _load_wordllama  # noqa: E402
from secmlops.serve.shields import normalize_text  # noqa: E402 - after the sys.path fix above

CONFIG, DIMENSION = "l2_supercat", 256
MAX_FPR = 0.02  # cross-validated false-positive rate the flag threshold is set for
FLAG_AT = 0.4  # the gateway's default flag threshold (chat.injection.flag_at)
OUT = ROOT / "src" / "secmlops" / "serve" / WEIGHTS_FILE


def _benchmark_module():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location(
        "pi_bench", ROOT / "benchmarks" / "prompt_injection.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> None:
    bench = _benchmark_module()
    rows = [r for r in bench.load() if not bench.held_out(r[0])]
    texts = [normalize_text(text)[0] for _id, text, _a, _c in rows]
    labels = np.array([1 if attack else 0 for _id, _t, attack, _c in rows])
    model = _load_wordllama(CONFIG, DIMENSION)
    x = np.asarray(model.embed(texts, norm=True), dtype=np.float64)
    folds = StratifiedKFold(5, shuffle=True, random_state=0)
    benign = labels == 0
    best = None
    for c in (0.3, 1.0, 3.0, 10.0, 30.0, 100.0):
        clf = LogisticRegression(C=c, class_weight="balanced", max_iter=5000)
        p = cross_val_predict(clf, x, labels, cv=folds, method="predict_proba")[:, 1]
        # The flag threshold that keeps the cross-validated false-positive rate at MAX_FPR.
        threshold = float(np.quantile(p[benign], 1 - MAX_FPR))
        recall = float((p[labels == 1] > threshold).mean())
        fpr = float((p[benign] > threshold).mean())
        print(f"C={c:5}: cross-validated recall {recall:.3f} at false-positive rate {fpr:.3f}")
        if best is None or recall > best[0]:
            best = (recall, c, threshold, fpr)
    assert best is not None
    recall, c, threshold, fpr = best
    clf = LogisticRegression(C=c, class_weight="balanced", max_iter=5000).fit(x, labels)
    # Shift the intercept so that the chosen threshold lands on the gateway's flag threshold
    # (0.4): the classifier's probability then meets the same flag/block scale as the patterns.
    t = min(max(threshold, 1e-6), 1 - 1e-6)
    shift = float(np.log(t / (1 - t)) - np.log(FLAG_AT / (1 - FLAG_AT)))
    doc = {
        "embedding": CONFIG,
        "dimension": DIMENSION,
        "coef": [round(float(v), 6) for v in clf.coef_[0]],
        "intercept": round(float(clf.intercept_[0]) - shift, 6),
        "provenance": {
            "trained": datetime.now(UTC).strftime("%Y-%m-%d"),
            "script": "benchmarks/tools/train_injection_classifier.py",
            "corpus": "development split of benchmarks/prompt_injection.py: bastioncorpus 0.6.0 "
            "(MIT), secmlops hard benign look-alikes, PyPA advisory database texts (CC-BY 4.0)",
            "rows": len(rows),
            "attacks": int(labels.sum()),
            "model": "LogisticRegression(class_weight=balanced)",
            "C": c,
            "calibrated_flag_threshold": FLAG_AT,
            "cv_recall_at_flag": round(recall, 3),
            "cv_false_positive_rate_at_flag": round(fpr, 3),
        },
    }
    OUT.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {OUT} (C={c}, {len(rows)} rows)")


if __name__ == "__main__":
    main()
