"""Drift detection side by side: secmlops and Evidently on the same 10^6 x 50 pair.

The pair has known injected shifts (mean shifts of 0.1, 0.2 and 0.5 standard deviations, a
variance change, a category-share change, a shift of a skewed column) and 44 control columns drawn
from the same distribution in both (normal, log-normal, uniform, exponential, Poisson counts,
categorical with 3 to 50 levels). Both tools run with their default settings on the same Parquet
files; the time measured is the comparison only (data already in memory, as pandas frames), each
in its own process. Reported: injected shifts found, false alarms on control columns, seconds,
and the speed ratio.

Evidently lives in its own virtual environment, ``benchmarks/.venv-peers-drift`` (created on
first run with ``pip install evidently 'pandas<3'``: Evidently does not support pandas 3, which
the project uses). Run with the project's interpreter:

    .venv/bin/python benchmarks/drift.py [--rows 1000000] [--skip-evidently]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

# benchmarks/secrets.py would shadow the standard library's `secrets` (numpy imports it)
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

BENCH = Path(__file__).resolve().parent
WORK = BENCH / ".work" / "drift"
PEER = BENCH / ".venv-peers-drift"
PEER_REQUIREMENTS = ["evidently", "pandas<3"]

INJECTED = {
    "shift_0_1sd": "mean +0.1 sd",
    "shift_0_2sd": "mean +0.2 sd",
    "shift_0_5sd": "mean +0.5 sd",
    "variance_x1_3": "sd x1.3",
    "lognormal_shift_0_2sd": "skewed column, mean +0.2 sd",
    "category_share": "shares 40/30/20/10 -> 30/30/25/15",
}


def make_pair(rows: int, seed: int = 20260101) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Reference and current frames: injected shifts plus same-distribution control columns."""
    rng = np.random.default_rng(seed)

    def draw(shifted: bool) -> pd.DataFrame:
        cols: dict[str, object] = {}
        for i in range(14):
            cols[f"ctl_normal_{i}"] = rng.normal(i, 1 + i / 10, rows)
        for i in range(6):
            cols[f"ctl_lognormal_{i}"] = rng.lognormal(0, 0.5 + i / 10, rows)
        for i in range(5):
            cols[f"ctl_uniform_{i}"] = rng.uniform(-i, i + 1, rows)
        for i in range(5):
            cols[f"ctl_exponential_{i}"] = rng.exponential(1 + i, rows)
        for i in range(6):
            cols[f"ctl_poisson_{i}"] = rng.poisson(1 + 3 * i, rows)
        for i, levels in enumerate((3, 3, 5, 10, 20, 30, 40, 50)):
            names = np.array([f"L{j}" for j in range(levels)])
            weights = np.arange(levels, 0, -1, dtype=float)
            cols[f"ctl_category_{i}"] = rng.choice(names, rows, p=weights / weights.sum())
        base = rng.normal(0, 1, (rows, 4))
        cols["shift_0_1sd"] = base[:, 0] + (0.1 if shifted else 0.0)
        cols["shift_0_2sd"] = base[:, 1] + (0.2 if shifted else 0.0)
        cols["shift_0_5sd"] = base[:, 2] + (0.5 if shifted else 0.0)
        cols["variance_x1_3"] = base[:, 3] * (1.3 if shifted else 1.0)
        skewed = rng.lognormal(0, 1, rows)
        sd = np.sqrt((np.e - 1) * np.e)  # standard deviation of lognormal(0, 1)
        cols["lognormal_shift_0_2sd"] = skewed + (0.2 * sd if shifted else 0.0)
        shares = [0.3, 0.3, 0.25, 0.15] if shifted else [0.4, 0.3, 0.2, 0.1]
        cols["category_share"] = rng.choice(np.array(["a", "b", "c", "d"]), rows, p=shares)
        return pd.DataFrame(cols)

    return draw(False), draw(True)


def ensure_peer(log: Callable[[str], None]) -> str | None:
    """The Evidently venv's python, installed on first use; None with the reason logged."""
    python = PEER / "bin" / "python"
    probe = [str(python), "-c", "import evidently; print(evidently.__version__)"]
    if python.exists() and subprocess.run(probe, capture_output=True, check=False).returncode == 0:
        return str(python)
    log(f"installing Evidently into {PEER.relative_to(BENCH.parent)} ...")
    base = "/usr/bin/python3" if Path("/usr/bin/python3").exists() else sys.executable
    subprocess.run([base, "-m", "venv", str(PEER)], check=True)
    proc = subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "-q",
            *PEER_REQUIREMENTS,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        log("Evidently could not be installed:\n" + proc.stdout[-2000:] + proc.stderr[-2000:])
        return None
    return str(python)


EVIDENTLY_RUNNER = textwrap.dedent(
    """
    import json, sys, time
    import pandas as pd
    import evidently
    ref = pd.read_parquet(sys.argv[1]); cur = pd.read_parquet(sys.argv[2])
    categorical = [c for c in ref.columns if ref[c].dtype == object]
    numerical = [c for c in ref.columns if c not in categorical]
    version = evidently.__version__
    t0 = time.perf_counter()
    try:
        from evidently import DataDefinition, Dataset, Report
        from evidently.presets import DataDriftPreset
        definition = DataDefinition(numerical_columns=numerical, categorical_columns=categorical)
        r = Dataset.from_pandas(ref, data_definition=definition)
        c = Dataset.from_pandas(cur, data_definition=definition)
        snapshot = Report([DataDriftPreset()]).run(current_data=c, reference_data=r)
        elapsed = time.perf_counter() - t0
        drifted, methods = [], {}
        for metric in snapshot.dict()["metrics"]:
            cfg = metric.get("config", {})
            column = cfg.get("column")
            if column is None or "ValueDrift" not in str(cfg.get("type", "")) + str(metric.get("metric_name", "")):
                continue
            value = metric["value"]
            threshold = cfg.get("threshold")
            method = cfg.get("method")
            methods[column] = str(method)
            score = float(value)
            # p-value tests drift below the threshold, distances at or above it
            is_p = method is not None and ("p_value" in str(method) or "test" in str(method).lower())
            if (score < threshold) if is_p else (score >= threshold):
                drifted.append(column)
    except ImportError:
        from evidently.report import Report
        from evidently.metric_preset import DataDriftPreset
        from evidently import ColumnMapping
        mapping = ColumnMapping(numerical_features=numerical, categorical_features=categorical)
        report = Report(metrics=[DataDriftPreset()])
        report.run(reference_data=ref, current_data=cur, column_mapping=mapping)
        elapsed = time.perf_counter() - t0
        drifted, methods = [], {}
        for metric in report.as_dict()["metrics"]:
            result = metric["result"]
            for name, col in result.get("drift_by_columns", {}).items():
                methods[name] = col["stattest_name"]
                if col["drift_detected"]:
                    drifted.append(name)
    print(json.dumps({"version": version, "seconds": elapsed, "drifted": drifted, "methods": methods}))
    """
)


def run_secmlops(ref: pd.DataFrame, cur: pd.DataFrame) -> dict[str, object]:
    sys.path.insert(0, str(BENCH.parent / "src"))
    from secmlops.scan.data.drift import compare
    from secmlops.scan.data.drift_profile import build_profile

    compare(ref.head(1000), cur.head(1000))  # warm up: imports are not what is measured
    t0 = time.perf_counter()
    profile = build_profile(ref)
    t1 = time.perf_counter()
    result = compare(profile, cur)
    t2 = time.perf_counter()
    return {
        "seconds": t2 - t0,
        "profile_seconds": t1 - t0,
        "compare_seconds": t2 - t1,
        "drifted": [f.name for f in result.drifted],
        "dataset_drift": result.dataset_drift,
    }


def score(drifted: list[str], columns: list[str]) -> tuple[list[str], list[str], list[str]]:
    found = [c for c in INJECTED if c in drifted]
    missed = [c for c in INJECTED if c not in drifted]
    false = [c for c in columns if c not in INJECTED and c in drifted]
    return found, missed, false


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--skip-evidently", action="store_true")
    args = ap.parse_args()

    def log(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    WORK.mkdir(parents=True, exist_ok=True)
    ref_path, cur_path = WORK / f"ref-{args.rows}.parquet", WORK / f"cur-{args.rows}.parquet"
    if not (ref_path.exists() and cur_path.exists()):
        log(f"generating {args.rows:,} x 50 reference and current ...")
        ref, cur = make_pair(args.rows)
        ref.to_parquet(ref_path)
        cur.to_parquet(cur_path)
    ref, cur = pd.read_parquet(ref_path), pd.read_parquet(cur_path)
    columns = list(ref.columns)
    log(f"data: {len(ref):,} rows x {len(columns)} columns; {os.cpu_count()} CPUs")

    results: dict[str, dict[str, object]] = {"secmlops": run_secmlops(ref, cur)}
    del ref, cur
    if not args.skip_evidently:
        python = ensure_peer(log)
        if python is None:
            results["evidently"] = {"error": "could not be installed (see above)"}
        else:
            runner = WORK / "evidently_runner.py"
            runner.write_text(EVIDENTLY_RUNNER)
            log("running Evidently (DataDriftPreset, defaults) ...")
            t0 = time.perf_counter()
            proc = subprocess.run(
                [python, str(runner), str(ref_path), str(cur_path)],
                capture_output=True,
                text=True,
                check=False,
            )
            if proc.returncode != 0:
                results["evidently"] = {"error": proc.stderr.strip().splitlines()[-1:]}
                log(proc.stderr[-3000:])
            else:
                results["evidently"] = json.loads(proc.stdout.strip().splitlines()[-1])
                results["evidently"]["process_seconds"] = time.perf_counter() - t0

    print(f"\nDrift benchmark: {args.rows:,} rows x {len(columns)} columns, "
          f"{len(INJECTED)} injected shifts, {len(columns) - len(INJECTED)} control columns\n")  # fmt: skip
    print(f"{'tool':12} {'found':>7} {'missed':>7} {'false alarms':>13} {'seconds':>9}")
    for tool, r in results.items():
        if "error" in r:
            print(f"{tool:12} error: {r['error']}")
            continue
        found, missed, false = score(list(r["drifted"]), columns)
        print(f"{tool:12} {len(found):>3}/{len(INJECTED):<3} {len(missed):>7} {len(false):>13} "
              f"{float(r['seconds']):>9.2f}")  # fmt: skip
        if missed:
            print(f"{'':12} missed: {', '.join(f'{m} ({INJECTED[m]})' for m in missed)}")
        if false:
            print(f"{'':12} false alarms: {', '.join(false)}")
    s = results["secmlops"]
    print(
        f"\nsecmlops: profile {float(s['profile_seconds']):.2f}s + compare "
        f"{float(s['compare_seconds']):.2f}s"
    )
    e = results.get("evidently", {})
    if "seconds" in e:
        print(
            f"Evidently {e['version']}: {float(e['seconds']):.2f}s "
            f"(process incl. reading: {float(e['process_seconds']):.2f}s)"
        )
        ratio = float(e["seconds"]) / float(s["seconds"])
        print(f"speed ratio (Evidently / secmlops): {ratio:.1f}x")
    print("\nJSON:", json.dumps(results, default=str))


if __name__ == "__main__":
    main()
