"""Prove the adversarial corpus is real: every malicious sample runs, no benign one does.

Samples are loaded the way a victim would (``samples.LOADERS``) in one subprocess per loader,
all subprocesses running concurrently.  Each malicious sample gets its own marker path, so a
failure names the sample whose payload did not run.  Nothing here touches secmlops itself.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections import defaultdict
from pathlib import Path

import pytest

from tests.scan.models.samples import ALL, BENIGN, LOADERS, MALICIOUS, Sample, write_corpus

# Loaders that need the same heavy libraries share one subprocess: importing torch or
# scikit-learn costs seconds, and six concurrent torch imports on two cores cost a minute.
# pickle_ext_registry stays alone: it pre-registers an extension code in copyreg.
_GROUP = {"pickle_stream": "pickle", "torch_fallback": "torch", "archive": "torch"}
_GROUP |= {"joblib_predict": "joblib", "numpy": "pandas"}

# Payloads that start a child process (Popen, spawnv, webbrowser) may create the marker a
# moment after the load returns: the runner polls for this long before giving up.
_SETTLE_SECONDS = 10.0

_RUNNER = textwrap.dedent(
    """
    import json, os, sys, time, traceback, warnings
    warnings.simplefilter("ignore")
    jobs = json.loads(sys.argv[1])
    results = {}
    for job in jobs:
        err, started = None, time.monotonic()
        try:
            exec(compile(job["snippet"], job["name"], "exec"), {"__name__": "__victim__"})
        except BaseException as e:  # SystemExit from pip, errors after the payload, ...
            err = type(e).__name__ + ": " + str(e)[:200]
        results[job["name"]] = {"error": err, "seconds": round(time.monotonic() - started, 2)}
    deadline = time.monotonic() + float(sys.argv[2])
    while time.monotonic() < deadline:
        if all(os.path.exists(j["marker"]) for j in jobs if j["malicious"]):
            break
        time.sleep(0.05)
    time.sleep(0.2)
    for job in jobs:
        results[job["name"]]["marker"] = os.path.exists(job["marker"])
    with open(sys.argv[3], "w") as out:
        json.dump(results, out)
    """
)


def _run_all(tmp: Path) -> dict[str, dict[str, object]]:
    files, markers = tmp / "files", tmp / "markers"
    files.mkdir()
    markers.mkdir()
    by_loader: dict[str, list[dict[str, object]]] = defaultdict(list)
    for s in ALL:
        marker = markers / f"{s.name}.marker"
        path = files / f"{s.name}{s.suffix}"
        path.write_bytes(s.build(marker))
        by_loader[_GROUP.get(s.loader, s.loader)].append(
            {
                "name": s.name,
                "marker": str(marker),
                "malicious": s.malicious,
                "snippet": LOADERS[s.loader].format(path=str(path)),
            }
        )
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONWARNINGS": "ignore"}
    env.pop("TORCH_FORCE_WEIGHTS_ONLY_LOAD", None)
    # Samples that run pip (ensurepip._run_pip, ...) must not depend on the caller's pip settings:
    # PIP_NO_CACHE_DIR, for one, makes their `pip cache dir` payload fail after it ran.
    for name in [n for n in env if n.startswith("PIP_")]:
        del env[name]
    procs = []
    for loader, jobs in sorted(by_loader.items()):
        workdir = tmp / f"cwd-{loader}"
        workdir.mkdir()
        result_file = workdir / "results.json"
        proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                _RUNNER,
                json.dumps(jobs),
                str(_SETTLE_SECONDS),
                str(result_file),
            ],
            cwd=workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        procs.append((loader, proc, result_file))
    results: dict[str, dict[str, object]] = {}
    for loader, proc, result_file in procs:
        _, stderr = proc.communicate(timeout=300)
        assert result_file.exists(), (
            f"loader {loader!r} runner crashed: {stderr.decode(errors='replace')[-2000:]}"
        )
        results.update(json.loads(result_file.read_text()))
    return results


def test_corpus_shape() -> None:
    assert len(MALICIOUS) >= 60
    families = {s.family for s in MALICIOUS}
    assert len(families) >= 15
    assert {s.name for s in ALL} == {s.name for s in MALICIOUS} | {s.name for s in BENIGN}
    benign = {s.name: s for s in BENIGN}
    for s in MALICIOUS:
        assert s.twin in benign, s.name
        assert s.source, s.name
    for s in ALL:
        assert s.name.replace("_", "").isalnum(), s.name


def _mismatch(sample: Sample, got: dict[str, object]) -> str | None:
    error = got["error"]
    if sample.malicious:
        if not got["marker"]:
            return f"payload did not run (load error: {error})"
        if (
            not sample.expect_error
            and error is not None
            and not str(error).startswith("SystemExit")
        ):
            return f"payload ran but loading failed unexpectedly: {error}"
        return None
    if got["marker"]:
        return "benign sample created the marker"
    if sample.expect_error and error is None:
        return "expected to fail loading, but loaded"
    if not sample.expect_error and error is not None:
        return f"failed to load: {error}"
    return None


@pytest.mark.slow
def test_every_sample_behaves_as_labelled(tmp_path: Path) -> None:
    # One test (not one per sample) so that pytest-xdist runs the subprocesses only once.
    outcomes = _run_all(tmp_path)
    problems = {s.name: _mismatch(s, outcomes[s.name]) for s in ALL}
    problems = {name: why for name, why in problems.items() if why}
    assert not problems, "\n".join(f"{name}: {why}" for name, why in sorted(problems.items()))


def test_write_corpus(tmp_path: Path) -> None:
    written = write_corpus(tmp_path / "c", tmp_path / "marker")
    assert set(written) == {s.name for s in ALL}
    assert all(p.stat().st_size > 0 for p in written.values())
    assert not (tmp_path / "marker").exists()
