"""Sign and verify one multi-GB model folder with the `model_signing` CLI and with secmlops.

Builds a folder shaped like a sharded checkpoint (N weight files of at most 512 MB plus small
config files; `--gb`, default 2) under benchmarks/.work/ (git-ignored) and a P-256 key, reads it
once so it sits in the page cache, then in one run times, each in a fresh subprocess:

  sha256 x1         one hashlib.sha256 pass over all the bytes on one core
  sha256 xN         the same bytes split in N equal byte ranges, one process per core: the
                    machine's hashing speed, the ceiling for any whole-file SHA-256 signer
  model_signing     `model_signing sign key` / `verify key` (whole-file sha256, its default)
  secmlops          `secmlops sign --key` / `verify --key` (same key, same hash, same format)
  secmlops blake3   `--hash blake3` (parallel inside each file), for information
  secmlops shards   `--shard-size 128MB` (sha256 of shards: parallel inside one file)

Times are wall seconds of the whole command (Python start-up included), best of --repeat.

    .venv/bin/python benchmarks/signing.py              # 2 GB, 3 repeats
    .venv/bin/python benchmarks/signing.py --gb 10 --repeat 1 --keep
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path

HERE = Path(__file__).resolve().parent
CHUNK = 8 * 2**20
FILE_MB = 512
BIN = Path(sys.executable).parent


def build(folder: Path, gb: float) -> int:
    """Write the model folder once (reused when its size already matches); return its bytes."""
    total = int(gb * 1e9)
    marker = folder / ".complete"
    if marker.exists() and marker.read_text() == str(total):
        return total
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    count = max(1, -(-total // (FILE_MB * 10**6)))
    block = os.urandom(CHUNK)
    written = 0
    for i in range(count):
        size = min(total - written, -(-total // count))
        with open(folder / f"model-{i + 1:05d}-of-{count:05d}.safetensors", "wb") as out:
            left = size
            while left:
                # Vary every block so no two chunks are alike (no dedup or compression tricks).
                piece = (i.to_bytes(4, "big") + left.to_bytes(8, "big")) + block[12:]
                out.write(piece[: min(left, CHUNK)])
                left -= min(left, CHUNK)
        written += size
    (folder / "config.json").write_text('{"architectures": ["Bench"], "hidden_size": 4096}\n')
    (folder / "tokenizer.json").write_text('{"model": {"type": "BPE"}}\n')
    marker.write_text(str(total))
    return total


def files_of(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))


def _hash_ranges(ranges: list[tuple[str, int, int]]) -> str:
    buffer = memoryview(bytearray(CHUNK))
    digests = []
    for name, start, end in ranges:
        h = hashlib.sha256()
        with open(name, "rb", buffering=0) as f:
            f.seek(start)
            left = end - start
            while left:
                got = f.readinto(buffer[: min(CHUNK, left)])
                if not got:
                    break
                h.update(buffer[:got])
                left -= got
        digests.append(h.hexdigest())
    return ",".join(digests)


def hashing_speed(folder: Path, workers: int) -> tuple[float, float]:
    """Seconds for one sha256 pass over every byte, split in `workers` equal byte ranges."""
    files = [(str(p), p.stat().st_size) for p in files_of(folder)]
    total = sum(size for _, size in files)
    share = -(-total // workers)
    plans: list[list[tuple[str, int, int]]] = [[] for _ in range(workers)]
    worker, room = 0, share
    for name, size in files:
        start = 0
        while start < size:
            take = min(size - start, room)
            plans[worker].append((name, start, start + take))
            start += take
            room -= take
            if room == 0 and worker < workers - 1:
                worker, room = worker + 1, share
    cpu = _children_cpu()
    started = time.perf_counter()
    with ProcessPoolExecutor(max_workers=workers) as pool:
        list(pool.map(_hash_ranges, plans))
    return time.perf_counter() - started, _children_cpu() - cpu


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of one command."""
    cpu = _children_cpu()
    started = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{done.stdout}\n{done.stderr}")
    return seconds, _children_cpu() - cpu


def library_timings(
    folder: Path, key: Path, work: Path, repeat: int
) -> dict[str, tuple[float, float]]:
    """(wall, cpu) of sign and verify through each library's Python API, best of `repeat`."""
    sys.path.insert(0, str(HERE.parent / "src"))
    import model_signing

    from secmlops.evidence import signing

    ms_sig, sm_sig = work / "lib-ms.sig", work / "lib-sm.sig"

    def ms_sign() -> None:
        model_signing.signing.Config().use_elliptic_key_signer(private_key=key).sign(folder, ms_sig)

    def ms_verify() -> None:
        model_signing.verifying.Config().use_elliptic_key_verifier(public_key=f"{key}.pub").verify(
            folder, ms_sig
        )

    def sm_sign() -> None:
        signing.sign_model(folder, signing.KeySigner(key), signature=sm_sig)

    def sm_verify() -> None:
        result = signing.verify_model(
            folder, signing.PublicKeyTrust(Path(f"{key}.pub")), signature=sm_sig
        )
        assert result.verified

    def clock(fn: object) -> tuple[float, float]:
        cpu, wall = time.process_time(), time.perf_counter()
        fn()  # type: ignore[operator]
        return time.perf_counter() - wall, time.process_time() - cpu

    fns = {"ms_sign": ms_sign, "sm_sign": sm_sign, "ms_verify": ms_verify, "sm_verify": sm_verify}
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in fns}
    for _ in range(repeat):  # interleaved, so that a burst of load hits both tools alike
        for name, fn in fns.items():
            runs[name].append(clock(fn))
    out = {name: min(times) for name, times in runs.items()}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--gb", type=float, default=2.0, help="model size in GB (10^9 bytes)")
    parser.add_argument("--repeat", type=int, default=3, help="best of this many runs")
    parser.add_argument("--keep", action="store_true", help="keep the model folder afterwards")
    args = parser.parse_args()

    work = HERE / ".work" / "signing"
    folder = work / f"model-{args.gb:g}gb"
    total = build(folder, args.gb)
    key = work / "bench.key"
    if not key.exists():
        sys.path.insert(0, str(HERE.parent / "src"))
        from secmlops.evidence import keys

        keys.write_key_pair(keys.generate_private_key("p256"), key)
    _hash_ranges([(str(p), 0, p.stat().st_size) for p in files_of(folder)])  # warm the cache
    cores = os.cpu_count() or 1
    sig_ms = work / "ms.sig"
    ms = str(BIN / "model_signing")
    sm = [sys.executable, "-m", "secmlops"]
    env = {**os.environ, "NO_COLOR": "1"}

    Timing = tuple[float, float]
    ms_sign_cmd = [ms, "sign", "key", str(folder), "--private_key", str(key)]
    ms_verify_cmd = [ms, "verify", "key", str(folder), "--public_key", f"{key}.pub"]
    sm_sign_cmd = [*sm, "sign", str(folder), "--key", str(key), "-q"]
    sm_verify_cmd = [*sm, "verify", str(folder), "--key", f"{key}.pub", "-q"]
    sm_sigs = {"": work / "sm.sig", "blake3": work / "sm-b3.sig", "shards": work / "sm-sh.sig"}
    extra = {"": [], "blake3": ["--hash", "blake3"], "shards": ["--shard-size", "128MB"]}
    steps: dict[str, Callable[[], Timing]] = {
        "sha x1": lambda: hashing_speed(folder, 1),
        "sha xN": lambda: hashing_speed(folder, cores),
        "ms sign": lambda: timed([*ms_sign_cmd, "--signature", str(sig_ms)]),
        "ms verify": lambda: timed([*ms_verify_cmd, "--signature", str(sig_ms)]),
    }
    for v, sig in sm_sigs.items():
        steps[f"sm sign {v}"] = partial(
            timed, [*sm_sign_cmd, "--signature", str(sig), *extra[v]], env
        )
        steps[f"sm verify {v}"] = partial(timed, [*sm_verify_cmd, "--signature", str(sig)], env)
    runs: dict[str, list[Timing]] = {name: [] for name in steps}
    for _ in range(args.repeat):  # interleaved, so that a burst of load hits every method alike
        for name, step in steps.items():
            runs[name].append(step())
    t = {name: min(times) for name, times in runs.items()}
    # Each tool verifies the other's signature, or the figures mean nothing.
    timed([*ms_verify_cmd, "--signature", str(sm_sigs[""])])
    timed([*sm_verify_cmd, "--signature", str(sig_ms)], env)

    one, many = t["sha x1"], t["sha xN"]
    ms_sign, ms_verify = t["ms sign"], t["ms verify"]
    sm_sign, sm_verify = t["sm sign "], t["sm verify "]
    rows: list[tuple[str, Timing, Timing | None]] = [
        ("sha256 x1 (one core)", one, None),
        (f"sha256 x{cores} (all cores)", many, None),
        ("model_signing sign / verify", ms_sign, ms_verify),
        ("secmlops sign / verify", sm_sign, sm_verify),
        ("  --hash blake3", t["sm sign blake3"], t["sm verify blake3"]),
        ("  --shard-size 128MB", t["sm sign shards"], t["sm verify shards"]),
    ]

    # The same work as libraries in one process: no interpreter start-up in the figures.
    lib = library_timings(folder, key, work, args.repeat)
    rows.append(("model_signing library", lib["ms_sign"], lib["ms_verify"]))
    rows.append(("secmlops library", lib["sm_sign"], lib["sm_verify"]))

    gb = total / 1e9
    print(
        f"\nmodel: {folder} ({gb:.2f} GB, {len(files_of(folder))} files), {cores} cores, "
        f"warm page cache, best of {args.repeat}; wall seconds (CPU seconds)\n"
    )
    print(f"{'method':30} {'sign s (cpu)':>15} {'GB/s':>6} {'verify s (cpu)':>16} {'GB/s':>6}")

    def cell(t: Timing | None) -> str:
        return f"{t[0]:7.2f} ({t[1]:5.2f}) {gb / t[0]:6.2f}" if t else f"{'':22}"

    for label, signed, verified in rows:
        print(f"{label:30} {cell(signed)} {cell(verified)}")
    print(
        f"\nsecmlops vs model_signing (same sha256, same key): sign {ms_sign[0] / sm_sign[0]:.2f}x, "
        f"verify {ms_verify[0] / sm_verify[0]:.2f}x as fast"
    )
    print(
        f"secmlops vs the machine's {cores}-core sha256 pass: sign {many[0] / sm_sign[0]:.0%}, "
        f"verify {many[0] / sm_verify[0]:.0%} of its speed"
    )
    if not args.keep:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
