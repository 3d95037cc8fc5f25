"""HDF5 files: Keras `.h5` models and weight files (also the `model.weights.h5` inside `.keras`).

Legacy Keras stores the model architecture as JSON in the `model_config` (and `training_config`)
attribute; loading it rebuilds every layer, Lambda bytecode included, so the config gets the same
checks as a `.keras` config. HDF5 itself can point outside the file: external links, datasets whose
raw data lives in other files, and virtual datasets mapping other files; h5py follows all of them on
access. The file is opened read-only with h5py and never read beyond attributes and link metadata.

The HDF5 C library crashes on some corrupt files (and has a history of memory-corruption bugs), so
where the platform can fork, the file is read in a child process that only reports what it saw;
a crash, a hang or an error there fails the scan closed instead of taking the scanner down.
"""

from __future__ import annotations

import json
from typing import Any

from secmlops.errors import ScanError
from secmlops.scan.models.engine import HEAD_SIZE, Blob, ScanContext
from secmlops.scan.models.formats import HDF5_SIGNATURE
from secmlops.scan.models.formats.keras import check_keras_config, parse_config_json
from secmlops.scan.models.rules import HDF5_EXTERNAL

KERAS_CONFIG_ATTRS = ("model_config", "training_config")
MAX_OBJECTS = 1_000_000
MAX_CONFIG_BYTES = 64 * 2**20
MAX_LISTED = 20
CHILD_TIMEOUT = 300.0  # seconds for the child to read the file's metadata


def signature_offset(head: bytes) -> int | None:
    """Where the HDF5 superblock starts: offset 0 or a power of two from 512 (user block)."""
    offset = 0
    while offset + len(HDF5_SIGNATURE) <= min(len(head), HEAD_SIZE):
        if head[offset : offset + len(HDF5_SIGNATURE)] == HDF5_SIGNATURE:
            return offset
        offset = 512 if offset == 0 else offset * 2
    return None


class Hdf5Scanner:
    """HDF5 containers, whatever the extension (.h5, .hdf5, .keras members, .weights.h5)."""

    name = "hdf5"

    def sniff(self, blob: Blob) -> bool:
        return signature_offset(blob.head) is not None

    def scan(self, blob: Blob, ctx: ScanContext) -> None:
        seen = inspect_isolated(blob)
        for ref in seen.get("externals", []):
            targets = ref.get("target_file") or ", ".join(ref.get("files", []))
            ctx.emit(
                HDF5_EXTERNAL.finding(
                    blob.location, f"{ref['object']}: {ref['kind']} -> {targets}", ref
                )
            )
        for entry in seen.get("configs", []):
            config = parse_config_json(entry["text"], f"{entry['origin']} attribute")
            check_keras_config(config, blob.location, ctx, entry["origin"])
        if seen.get("error"):
            raise ScanError(str(seen["error"]))


def inspect_isolated(blob: Blob) -> dict[str, Any]:
    """What `inspect` reports, computed in a forked child so library crashes cannot escape."""
    import multiprocessing  # only when an HDF5 file is opened (a heavy import)

    if "fork" not in multiprocessing.get_all_start_methods():
        return inspect(blob)
    mp = multiprocessing.get_context("fork")
    receiver, sender = mp.Pipe(duplex=False)
    child = mp.Process(target=_child, args=(blob, sender), daemon=True)
    child.start()
    sender.close()
    try:
        if not receiver.poll(CHILD_TIMEOUT):
            raise ScanError(f"HDF5 reader did not finish within {CHILD_TIMEOUT:.0f} s")
        try:
            data = receiver.recv_bytes()
        except EOFError:
            child.join(5)
            raise ScanError(
                f"HDF5 reader crashed on this file (exit code {child.exitcode}); the HDF5 "
                "library cannot parse it safely"
            ) from None
    finally:
        receiver.close()
        child.join(5)
        if child.is_alive():
            child.kill()
            child.join()
    result: dict[str, Any] = json.loads(data)
    return result


def _child(blob: Blob, sender: Any) -> None:
    try:
        result = inspect(blob)
    except BaseException as exc:  # everything goes back to the parent as data
        result = {"error": f"{type(exc).__name__}: {exc}"}
    sender.send_bytes(json.dumps(result).encode("utf-8"))
    sender.close()


def inspect(blob: Blob) -> dict[str, Any]:
    """External references and Keras config texts of an HDF5 file, plus an error if reading stopped.

    Returns `{"externals": [...], "configs": [{"origin", "text"}], "error": str | None}`.
    """
    import h5py

    result: dict[str, Any] = {"externals": [], "configs": [], "error": None}
    with blob.open() as f:
        try:
            with h5py.File(f, "r") as h5:
                _walk(h5, result)
        except ScanError as exc:
            result["error"] = exc.message
        except (
            OSError, RuntimeError, ValueError, KeyError, TypeError, IndexError,
            AttributeError, OverflowError, MemoryError, UnicodeError,
        ) as exc:  # fmt: skip
            # h5py surfaces corrupt metadata as any of these
            result["error"] = f"unreadable HDF5 file: {type(exc).__name__}: {exc}"
    return result


def _walk(h5: Any, result: dict[str, Any]) -> None:
    import h5py

    root = h5["/"]
    seen: set[Any] = {root.id}
    stack: list[tuple[str, Any]] = [("/", root)]
    count = 0
    _read_configs(root, "/", result)
    while stack:
        path, group = stack.pop()
        for name in group:
            count += 1
            if count > MAX_OBJECTS:
                raise ScanError(f"more than {MAX_OBJECTS} HDF5 links")
            child = f"{path.rstrip('/')}/{name}"
            link = group.get(name, getlink=True)
            if isinstance(link, h5py.ExternalLink):
                result["externals"].append(
                    {"object": child, "kind": "external link",
                     "target_file": str(link.filename), "target_path": str(link.path)}
                )  # fmt: skip
                continue
            if isinstance(link, h5py.SoftLink):
                continue  # resolves inside this file; its target is reached by its hard link
            obj = group.get(name)
            if obj is None or obj.id in seen:
                continue
            seen.add(obj.id)
            _read_configs(obj, child, result)
            if isinstance(obj, h5py.Group):
                stack.append((child, obj))
            elif isinstance(obj, h5py.Dataset):
                _dataset(obj, child, result)


def _dataset(dataset: Any, path: str, result: dict[str, Any]) -> None:
    if dataset.external:
        files = sorted({str(entry[0]) for entry in dataset.external})
        result["externals"].append(
            {
                "object": path,
                "kind": "dataset stored in external files",
                "files": files[:MAX_LISTED],
            }
        )
    if dataset.is_virtual:
        sources = sorted(
            {str(src.file_name) for src in dataset.virtual_sources() if src.file_name != "."}
        )
        if sources:
            result["externals"].append(
                {"object": path, "kind": "virtual dataset mapping other files",
                 "files": sources[:MAX_LISTED]}
            )  # fmt: skip


def _read_configs(obj: Any, path: str, result: dict[str, Any]) -> None:
    attrs = obj.attrs
    for name in KERAS_CONFIG_ATTRS:
        if name not in attrs:
            continue
        size = attrs.get_id(name).get_storage_size()
        if size > MAX_CONFIG_BYTES:
            raise ScanError(f"{path} attribute {name} is {size} bytes (limit {MAX_CONFIG_BYTES})")
        origin = name if path == "/" else f"{path}@{name}"
        result["configs"].append({"origin": origin, "text": _as_text(attrs[name], origin)})


def _as_text(value: Any, what: str) -> str:
    """An HDF5 string attribute as text (h5py gives str, bytes or a 1-element array)."""
    import numpy as np

    if isinstance(value, np.ndarray):
        if value.size != 1:
            raise ScanError(f"{what} is an array of {value.size} values, not a JSON string")
        value = value.reshape(-1)[0]
    if isinstance(value, bytes | np.bytes_):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ScanError(f"{what} is not UTF-8: {exc}") from exc
    if isinstance(value, str):
        return value
    raise ScanError(f"{what} is a {type(value).__name__}, not a JSON string")
