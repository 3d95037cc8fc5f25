"""Throughput of `secmlops convert --to safetensors` next to disk speed and the usual way.

Writes a float32 checkpoint of at least 1 GiB with `torch.save` into benchmarks/.work/
(git-ignored), then times each method in a fresh subprocess (so peak memory is per method):

  read        a plain sequential read of the checkpoint (8 MiB chunks): what the disk allows
  sha256      hashlib.sha256 over the file: the floor for anything that digests its input
  secmlops    convert_to_safetensors (no torch import, pickle never executed; computes the
              source's SHA-256 and checks every record's CRC-32 on the way)
  usual       torch.load(weights_only=True) + safetensors.torch.save_file
  usual mmap  the same with torch.load(mmap=True)
  usual+sha   the usual way plus the SHA-256 of the source that secmlops also computes

Each method runs warm (the file was just read, so it sits in the page cache) and cold (its pages
evicted first with posix_fadvise(DONTNEED), where the platform has it). Output is written to the
page cache; `+fsync` adds the time to flush the written file to disk. Best of --repeat runs.

    .venv/bin/python benchmarks/convert.py            # 1 GiB, 3 repeats
    .venv/bin/python benchmarks/convert.py --size-mb 4096 --repeat 5 --keep
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CHUNK = 8 * 2**20
METHODS = ("read", "sha256", "secmlops", "usual", "usual_mmap", "usual_sha")
LABELS = {
    "read": "sequential read",
    "sha256": "sha256 of the file",
    "secmlops": "secmlops convert",
    "usual": "torch.load + save_file",
    "usual_mmap": "  ... with mmap=True",
    "usual_sha": "  ... + sha256 of source",
}


# --------------------------------------------------------------------------------------------
# one measurement, run in its own process


def _evict(path: Path) -> bool:
    advise = getattr(os, "posix_fadvise", None)
    if advise is None:
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        advise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)
    return True


def _run_read(source: Path, out: Path) -> None:
    buffer = memoryview(bytearray(CHUNK))
    with open(source, "rb", buffering=0) as handle:
        while handle.readinto(buffer):
            pass


def _run_sha256(source: Path, out: Path) -> None:
    import hashlib

    digest = hashlib.sha256()
    buffer = memoryview(bytearray(CHUNK))
    with open(source, "rb", buffering=0) as handle:
        while got := handle.readinto(buffer):
            digest.update(buffer[:got])


def _run_secmlops(source: Path, out: Path) -> None:
    from secmlops.scan.models import convert

    # The scanner gate has its own benchmark (benchmarks/model_scan.py); time the conversion.
    convert._load_scanner = lambda: None
    convert.convert_to_safetensors(source, out)


def _run_usual(source: Path, out: Path, mmap: bool = False) -> None:
    import torch
    from safetensors.torch import save_file

    state = torch.load(source, map_location="cpu", weights_only=True, mmap=mmap)
    save_file({k: v.contiguous() for k, v in state.items()}, out, metadata={"format": "pt"})


def _run_usual_mmap(source: Path, out: Path) -> None:
    _run_usual(source, out, mmap=True)


def _run_usual_sha(source: Path, out: Path) -> None:
    _run_usual(source, out)
    _run_sha256(source, out)


def _peak_mib() -> float:
    # ru_maxrss survives exec on Linux (it would report the parent's peak); VmHWM does not.
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB elsewhere
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20


def one(method: str, source: Path, out: Path, cold: bool) -> dict[str, float | bool]:
    runner = {
        "read": _run_read,
        "sha256": _run_sha256,
        "secmlops": _run_secmlops,
        "usual": _run_usual,
        "usual_mmap": _run_usual_mmap,
        "usual_sha": _run_usual_sha,
    }[method]
    if method == "secmlops":
        import secmlops.scan.models.convert  # noqa: F401  import time is not conversion time
    elif method.startswith("usual"):
        import safetensors.torch  # noqa: F401
        import torch  # noqa: F401
    evicted = _evict(source) if cold else False
    before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    runner(source, out)
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    fsync = 0.0
    if out.exists():
        started = time.perf_counter()
        fd = os.open(out, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        fsync = time.perf_counter() - started
    return {
        "seconds": seconds,
        "cpu": cpu,
        "fsync": fsync,
        "peak_mib": _peak_mib(),
        "evicted": evicted,
    }


# --------------------------------------------------------------------------------------------
# driver


def make_checkpoint(folder: Path, size_mb: int, tensors: int) -> Path:
    import torch

    per = max(1, size_mb * 2**20 // 4 // tensors)
    generator = torch.Generator().manual_seed(0)
    state = {f"layers.{i}.weight": torch.randn(per, generator=generator) for i in range(tensors)}
    path = folder / "checkpoint.pt"
    torch.save(state, path)
    return path


def measure(method: str, source: Path, out: Path, cold: bool) -> dict[str, float | bool]:
    if out.exists():
        out.unlink()
    command = [sys.executable, __file__, "--one", method, str(source), str(out)]
    if cold:
        command.append("--cold")
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def verify(source: Path, out: Path) -> None:
    import torch
    from safetensors.torch import load_file

    reference = torch.load(source, weights_only=True)
    converted = load_file(out)
    assert sorted(reference) == sorted(converted)
    for name, tensor in reference.items():
        assert torch.equal(tensor.view(torch.int32), converted[name].view(torch.int32)), name


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=int, default=1024, help="checkpoint size (MiB)")
    parser.add_argument("--tensors", type=int, default=64, help="number of float32 tensors")
    parser.add_argument("--repeat", type=int, default=3, help="runs per method; best is kept")
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument(
        "--one", nargs=3, metavar=("METHOD", "SOURCE", "OUT"), help=argparse.SUPPRESS
    )
    parser.add_argument("--cold", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.one:
        method, source, out = args.one
        print(json.dumps(one(method, Path(source), Path(out), args.cold)))
        return 0

    work = HERE / ".work"
    work.mkdir(exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="convert-", dir=work))
    try:
        print(f"writing a {args.size_mb} MiB float32 checkpoint ({args.tensors} tensors)...")
        source = make_checkpoint(folder, args.size_mb, args.tensors)
        size = source.stat().st_size
        mb = size / 1e6
        _run_read(source, folder / "unused")  # read it once first
        results: dict[str, dict[str, dict[str, float | bool]]] = {}
        for cold in (False, True):
            state = "cold" if cold else "warm"
            for method in METHODS:
                runs = [
                    measure(method, source, folder / f"{method}.safetensors", cold)
                    for _ in range(args.repeat)
                ]
                results.setdefault(method, {})[state] = min(runs, key=lambda r: r["seconds"])
        verify(source, folder / "secmlops.safetensors")

        read = {s: float(results["read"][s]["seconds"]) for s in ("warm", "cold")}
        print(
            f"\ncheckpoint: {mb:,.0f} MB, {args.tensors} tensors; best of {args.repeat}; "
            f"{os.cpu_count()} CPUs; cold runs evicted: {results['read']['cold']['evicted']}"
        )
        header = (
            f"{'method':<24}{'warm MB/s':>10}{'vs read':>8}{'cold MB/s':>10}{'vs read':>8}"
            f"{'+fsync MB/s':>12}{'CPU s':>7}{'peak RSS MiB':>13}"
        )
        print(header)
        print("-" * len(header))
        for method in METHODS:
            warm, cold = results[method]["warm"], results[method]["cold"]
            ws, cs = float(warm["seconds"]), float(cold["seconds"])
            synced = cs + float(cold["fsync"])
            fsync_cell = f"{mb / synced:>12,.0f}" if float(cold["fsync"]) else f"{'-':>12}"
            print(
                f"{LABELS[method]:<24}{mb / ws:>10,.0f}{read['warm'] / ws:>8.2f}"
                f"{mb / cs:>10,.0f}{read['cold'] / cs:>8.2f}{fsync_cell}"
                f"{float(cold['cpu']):>7.2f}{float(cold['peak_mib']):>13,.0f}"
            )
        usual = results["usual"]
        ours = results["secmlops"]
        for state in ("warm", "cold"):
            ratio = float(usual[state]["seconds"]) / float(ours[state]["seconds"])
            print(f"torch.load + save_file time / secmlops time ({state}): {ratio:.2f}")
        if args.json:
            args.json.write_text(json.dumps({"bytes": size, "results": results}, indent=2))
    finally:
        if args.keep:
            print(f"\nfiles kept in {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
