"""Keras v3 `.keras` archives, and the Keras model configs that they and legacy `.h5` files carry.

A `.keras` file is a zip holding `config.json`, `metadata.json` and `model.weights.h5`. Loading
it rebuilds every object named in `config.json`: a `Lambda` layer brings marshalled Python
bytecode, a `module`/`class_name` pair outside Keras imports arbitrary code, and some Keras
functions switch safe mode off, download files or load other models. `check_keras_config` walks a
parsed config (also used for the `model_config` attribute of `.h5` files and the metadata of
TensorFlow SavedModels) and reports each of these. The zip scanner recurses into the members
itself; this module reads only `config.json`.
"""

from __future__ import annotations

import binascii
import json
import re
import struct
import zipfile
import zlib
from collections.abc import Iterator
from typing import Any

from secmlops.errors import ScanError
from secmlops.findings import Finding, Location, Severity
from secmlops.scan.models.engine import Blob, ScanContext
from secmlops.scan.models.rules import (
    KERAS_CUSTOM_OBJECT,
    KERAS_DANGEROUS_CALLABLE,
    KERAS_EXTERNAL_RESOURCE,
    KERAS_LAMBDA,
    KERAS_SAFE_MODE_BYPASS,
    KERAS_TFOPLAMBDA,
)

MAX_CONFIG_BYTES = 64 * 2**20
MAX_NODES = 2_000_000
MAX_DEPTH = 500
MAX_LISTED = 20

# Top-level packages whose objects Keras itself provides.
KERAS_PACKAGES = frozenset({"keras", "tf_keras"})
KERAS_TF_PREFIXES = ("tensorflow.keras", "tensorflow.python.keras")
# Official Keras add-on packages: their objects need the package but carry no code themselves.
KERAS_ECOSYSTEM = frozenset({"keras_hub", "keras_nlp", "keras_cv", "keras_rs", "keras_tuner"})
# Modules whose functions run code, touch files/processes/network or load more code.
DANGEROUS_MODULES = frozenset(
    {
        "os", "posix", "nt", "posixpath", "ntpath", "subprocess", "_posixsubprocess", "builtins",
        "__builtin__", "__builtins__", "sys", "importlib", "imp", "runpy", "code", "codeop", "pty",
        "shutil", "socket", "_socket", "ctypes", "_ctypes", "cffi", "pickle", "_pickle", "cPickle",
        "marshal", "dill", "cloudpickle", "joblib", "shelve", "webbrowser", "http", "urllib",
        "urllib2", "urllib3", "requests", "httpx", "aiohttp", "ftplib", "smtplib", "telnetlib",
        "asyncio", "multiprocessing", "concurrent", "threading", "_thread", "signal", "pathlib",
        "io", "_io", "tempfile", "glob", "fileinput", "types", "inspect", "gc", "pdb", "bdb",
        "timeit", "trace", "commands", "popen2", "platform", "operator", "functools", "zipimport",
        "pkgutil", "site", "sysconfig", "distutils", "setuptools", "pip", "venv", "ensurepip",
        "paramiko", "pexpect", "sh", "plumbum", "fabric", "invoke",
    }
)  # fmt: skip
# Keras functions that defeat safe mode, download files or load/save other artifacts.
KERAS_DANGEROUS_NAMES = frozenset(
    {
        "get_file", "load_model", "load_weights", "save_model", "save_weights", "save", "load",
        "export", "export_saved_model", "legacy_h5_format", "load_model_from_hdf5",
        "deserialize_keras_object", "import_module", "exec", "eval",
    }
)  # fmt: skip
SAFE_MODE_NAMES = frozenset({"enable_unsafe_deserialization"})
# Names in Lambda bytecode that make the intent plain.
SUSPICIOUS_CODE_NAMES = frozenset(
    {
        "os", "system", "popen", "Popen", "subprocess", "eval", "exec", "__import__", "builtins",
        "__builtins__", "getattr", "open", "socket", "compile", "importlib", "import_module",
        "spawn", "spawnv", "execv", "execve", "fork", "check_output", "check_call", "urlopen",
        "requests", "urllib", "pickle", "marshal", "loads", "remove", "unlink", "rmtree", "shell",
        "ctypes", "CDLL", "globals", "setattr", "environ", "b64decode", "codecs",
    }
)  # fmt: skip
TF_DANGEROUS_API = re.compile(
    r"(^|\.)(gfile|py_function|numpy_function|py_func|script_ops|summary|write_file|read_file|"
    r"matching_files|load_op_library|load_library|save|restore|raw_ops|experimental_io)(\.|_|$)"
)
PATH_KEYS = frozenset(
    {
        "filepath", "file_path", "path", "origin", "url", "uri", "fname", "vocabulary",
        "vocabulary_file", "vocab_file", "vocabulary_path", "cache_dir", "idf_weights",
        "saved_model_dir", "model_path", "weights_path", "checkpoint_path",
    }
)  # fmt: skip
EXTERNAL_LAYERS = {"TFSMLayer": "filepath", "StringLookup": "vocabulary",
                   "IntegerLookup": "vocabulary", "TextVectorization": "vocabulary"}  # fmt: skip
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class KerasScanner:
    """Keras v3 `.keras` zips: `config.json` beside `metadata.json` / `model.weights.*`."""

    name = "keras"

    def sniff(self, blob: Blob) -> bool:
        if not blob.head.startswith(b"PK\x03\x04"):
            return False
        names = zip_member_names(blob.head, blob.tail, blob.size)
        if "config.json" not in names:
            return False
        return "metadata.json" in names or any(n.startswith("model.weights") for n in names)

    def scan(self, blob: Blob, ctx: ScanContext) -> None:
        with blob.open() as f:
            try:
                zf = zipfile.ZipFile(f)
            except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError) as exc:
                raise ScanError(f"unreadable .keras archive: {exc}") from exc
            with zf:
                configs = [info for info in zf.infolist() if info.filename == "config.json"]
                if not configs:
                    raise ScanError(".keras archive has no config.json in its central directory")
                for info in configs:
                    data = _read_member(zf, info, MAX_CONFIG_BYTES)
                    config = parse_config_json(data, "config.json")
                    check_keras_config(config, blob.location.child("config.json"), ctx)


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> bytes:
    if info.file_size > limit:
        raise ScanError(f"{info.filename}: {info.file_size} bytes is over the {limit}-byte limit")
    try:
        with zf.open(info) as member:
            data = member.read(limit + 1)
    except (zipfile.BadZipFile, zlib.error, NotImplementedError, RuntimeError, OSError,
            EOFError, ValueError) as exc:  # fmt: skip
        raise ScanError(f"{info.filename}: cannot be extracted: {exc}") from exc
    if len(data) > limit:
        raise ScanError(f"{info.filename}: expands beyond the {limit}-byte limit")
    return data


def parse_config_json(data: bytes | str, what: str) -> Any:
    """Parse a Keras JSON config the way Keras does, failing closed with a clear message."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        return json.loads(text)
    except UnicodeDecodeError as exc:
        raise ScanError(f"{what} is not UTF-8: {exc}") from exc
    except RecursionError as exc:
        raise ScanError(f"{what} is nested too deeply to parse") from exc
    except ValueError as exc:
        raise ScanError(f"{what} is not valid JSON: {exc}") from exc


def zip_member_names(head: bytes, tail: bytes, size: int) -> set[str]:
    """Member names visible in the central directory (from the tail) and local headers (head)."""
    names: set[str] = set()
    eocd = tail.rfind(b"PK\x05\x06")
    if eocd >= 0 and eocd + 22 <= len(tail):
        entries, cd_size, cd_offset = struct.unpack_from("<HII", tail, eocd + 10)
        tail_start = size - len(tail)
        start = cd_offset - tail_start
        if start >= 0 and start + cd_size <= len(tail):
            pos = start
            for _ in range(entries):
                if tail[pos : pos + 4] != b"PK\x01\x02" or pos + 46 > len(tail):
                    break
                n_name, n_extra, n_comment = struct.unpack_from("<HHH", tail, pos + 28)
                names.add(tail[pos + 46 : pos + 46 + n_name].decode("utf-8", "replace"))
                pos += 46 + n_name + n_extra + n_comment
    pos = 0
    while pos + 30 <= len(head) and head[pos : pos + 4] == b"PK\x03\x04":
        flags, _method = struct.unpack_from("<HH", head, pos + 6)
        (compressed,) = struct.unpack_from("<I", head, pos + 18)
        n_name, n_extra = struct.unpack_from("<HH", head, pos + 26)
        names.add(head[pos + 30 : pos + 30 + n_name].decode("utf-8", "replace"))
        if flags & 0x08:
            break  # sizes follow the data: the next header cannot be located from here
        pos += 30 + n_name + n_extra + compressed
    return names


def check_keras_config(
    config: Any,
    location: Location,
    ctx: ScanContext,
    origin: str = "$",
    seen: set[tuple[str, ...]] | None = None,
) -> None:
    """Report Lambda bytecode, dangerous or foreign modules and safe-mode bypasses in a config.

    `origin` names the root of the config in messages (`$` for a whole config file). Pass the same
    `seen` set for configs that repeat each other (SavedModel metadata describes every layer on
    its own and again inside the model) to report each problem once.
    """
    _ConfigWalk(location, ctx, seen if seen is not None else set()).run(config, origin)


class _ConfigWalk:
    def __init__(self, location: Location, ctx: ScanContext, seen: set[tuple[str, ...]]) -> None:
        self.location = location
        self.ctx = ctx
        self.seen = seen
        self.handled: set[int] = set()  # function dicts already reported with their Lambda layer
        self.custom: dict[str, list[str]] = {}
        self.ecosystem: dict[str, list[str]] = {}

    def run(self, config: Any, origin: str) -> None:
        stack: list[tuple[Any, str, int]] = [(config, origin, 0)]
        visited = 0
        while stack:
            node, path, depth = stack.pop()
            visited += 1
            if visited > MAX_NODES:
                raise ScanError(f"Keras config has more than {MAX_NODES} values")
            if depth > MAX_DEPTH:
                raise ScanError(f"Keras config is nested more than {MAX_DEPTH} levels deep")
            if isinstance(node, dict):
                self._object(node, path)
                children = [(v, f"{path}.{k}") for k, v in node.items()]
            elif isinstance(node, list):
                children = [(v, f"{path}[{i}]") for i, v in enumerate(node)]
            else:
                continue
            visited += len(children)
            for value, child_path in reversed(children):
                if isinstance(value, dict | list):
                    stack.append((value, child_path, depth + 1))
                elif isinstance(value, str) and isinstance(node, list):
                    self._string(value, child_path)
        self._report_foreign()

    def _emit(self, key: tuple[str, ...], finding: Finding) -> None:
        if key not in self.seen:
            self.seen.add(key)
            self.ctx.emit(finding)

    # -- one serialised object ------------------------------------------------------------
    def _object(self, obj: dict[Any, Any], path: str) -> None:
        class_name = obj.get("class_name")
        class_name = class_name if isinstance(class_name, str) else None
        module = obj.get("module") if isinstance(obj.get("module"), str) else None
        registered = obj.get("registered_name")
        registered = registered if isinstance(registered, str) else None
        cfg = obj.get("config")
        layer = _layer_name(cfg)
        where = f"{path} ({class_name or 'object'}{f' {layer!r}' if layer else ''})"

        if class_name == "Lambda":
            self._lambda_layer(cfg if isinstance(cfg, dict) else {}, where)
        elif class_name == "__lambda__" and id(obj) not in self.handled:
            code = cfg.get("code") if isinstance(cfg, dict) else None
            self._emit_lambda(where, "a serialised Python lambda", [code])
        elif class_name in ("TFOpLambda", "SlicingOpLambda"):
            self._tf_op_lambda(cfg if isinstance(cfg, dict) else {}, where)
        names = _candidate_names(class_name, cfg, registered)
        if class_name is not None and module:
            self._module(module, names, where)
        elif class_name and "." in class_name and ">" not in class_name:
            # Keras 2 resolved dotted class names through importlib as well.
            mod, _, attr = class_name.rpartition(".")
            self._module(mod, [attr], where)
        for name in names:
            if name in SAFE_MODE_NAMES:
                self._safe_mode(where, f"calls {name}")
        if not module:
            for text in (registered, class_name):
                if text and ">" in text and _top(text) not in KERAS_PACKAGES:
                    self._foreign(text.split(">", 1)[0], where)
                    break
        external_key = EXTERNAL_LAYERS.get(class_name or "")
        for key, value in obj.items():
            self._keyed_value(str(key), value, path, external_key)

    def _lambda_layer(self, cfg: dict[Any, Any], where: str) -> None:
        function = cfg.get("function")
        fn_type = cfg.get("function_type")
        module = cfg.get("module") if isinstance(cfg.get("module"), str) else None
        codes: list[Any] = []
        named: str | None = None
        if isinstance(function, dict):
            self.handled.add(id(function))
            inner = function.get("config")
            if function.get("class_name") == "__lambda__" and isinstance(inner, dict):
                codes.append(inner.get("code"))
            elif isinstance(inner, str):
                fmod = function.get("module")
                named = f"{fmod}.{inner}" if isinstance(fmod, str) and fmod else inner
        elif isinstance(function, list) and function:
            codes.append(function[0])
        elif isinstance(function, str):
            if fn_type == "function":
                named = f"{module}.{function}" if module else function
            else:
                codes.append(function)
        for key in ("output_shape", "mask"):
            extra = cfg.get(key)
            if isinstance(extra, dict) and extra.get("class_name") == "__lambda__":
                self.handled.add(id(extra))
                inner = extra.get("config")
                if isinstance(inner, dict):
                    codes.append(inner.get("code"))
            elif isinstance(extra, list) and extra and cfg.get(f"{key}_type") == "lambda":
                codes.append(extra[0])
        if named is not None and not codes:
            description = f"a Lambda layer calling {named}"
            if _top(named) in DANGEROUS_MODULES:
                description += " (a dangerous module)"
            self._emit_lambda(where, description, [], named=named)
        else:
            self._emit_lambda(where, "a Lambda layer with serialised Python code", codes)

    def _emit_lambda(
        self, where: str, description: str, codes: list[Any], named: str | None = None
    ) -> None:
        names: list[str] = []
        constants: list[str] = []
        undecoded = 0
        for code in codes:
            if not isinstance(code, str):
                continue
            decoded = decode_function_code(code)
            if decoded is None:
                undecoded += 1
                continue
            for text in decoded:
                if _IDENT.match(text):
                    if text not in names:
                        names.append(text)
                elif text not in constants:
                    constants.append(text)
        suspicious = [n for n in names if n in SUSPICIOUS_CODE_NAMES]
        message = f"{where}: {description}; Keras rebuilds and runs it"
        if suspicious:
            message += f"; the code uses {', '.join(suspicious[:8])}"
        elif names:
            message += f"; names in the code: {', '.join(names[:8])}"
        evidence: dict[str, Any] = {"at": where}
        if named:
            evidence["function"] = named
        if names:
            evidence["names"] = names[:40]
        if constants:
            evidence["constants"] = [c[:200] for c in constants[:20]]
        if suspicious:
            evidence["suspicious"] = suspicious
        if undecoded:
            evidence["undecoded"] = undecoded
        layer = where.rsplit("(", 1)[-1]
        key = ("lambda", layer, named or "", *names[:40], *constants[:20])
        self._emit(key, KERAS_LAMBDA.finding(self.location, message, evidence))

    def _tf_op_lambda(self, cfg: dict[Any, Any], where: str) -> None:
        function = cfg.get("function")
        name = function if isinstance(function, str) else repr(function)[:100]
        dangerous = isinstance(function, str) and bool(TF_DANGEROUS_API.search(function))
        message = f"{where}: calls TensorFlow API {name!r}"
        if dangerous:
            message += ", which reads/writes files or runs Python"
        self._emit(
            ("tfop", where.rsplit("(", 1)[-1], name),
            KERAS_TFOPLAMBDA.finding(
                self.location,
                message,
                {"at": where, "function": name},
                severity=Severity.CRITICAL if dangerous else None,
            ),
        )

    def _module(self, module: str, names: list[str], where: str) -> None:
        top = _top(module)
        if top in KERAS_PACKAGES or module.startswith(KERAS_TF_PREFIXES):
            for name in names:
                if name in KERAS_DANGEROUS_NAMES:
                    self._dangerous(where, f"{module}.{name}", "a Keras function that loads, "
                                    "saves or downloads files outside the model")  # fmt: skip
            return
        if top in DANGEROUS_MODULES:
            target = f"{module}.{names[0]}" if names else module
            self._dangerous(where, target, f"module {module!r} runs code or touches the system")
            return
        for name in names:
            danger = self.ctx.allowlist.danger_of(f"{module}.{name}")
            if danger is not None:
                self._dangerous(where, f"{module}.{name}", danger.why)
                return
        self._foreign(module, where)

    def _foreign(self, module: str, where: str) -> None:
        if _top(module) in KERAS_ECOSYSTEM:
            self.ecosystem.setdefault(_top(module), []).append(where)
        else:
            self.custom.setdefault(module, []).append(where)

    def _report_foreign(self) -> None:
        for module, places in sorted(self.custom.items()):
            self._emit(
                ("custom", module),
                KERAS_CUSTOM_OBJECT.finding(
                    self.location,
                    f"{len(places)} object(s) are rebuilt from {module!r}, which is not part of "
                    f"Keras (first at {places[0]})",
                    {"module": module, "count": len(places), "at": places[:MAX_LISTED]},
                ),
            )
        for package, places in sorted(self.ecosystem.items()):
            self._emit(
                ("custom", package),
                KERAS_CUSTOM_OBJECT.finding(
                    self.location,
                    f"{len(places)} object(s) need the official Keras add-on package {package!r}",
                    {"module": package, "count": len(places), "at": places[:MAX_LISTED]},
                    severity=Severity.LOW,
                ),
            )

    def _dangerous(self, where: str, target: str, why: str) -> None:
        self._emit(
            ("dangerous", target),
            KERAS_DANGEROUS_CALLABLE.finding(
                self.location,
                f"{where}: references {target} ({why})",
                {"at": where, "target": target},
            ),
        )

    def _safe_mode(self, where: str, what: str) -> None:
        self._emit(
            ("safe_mode", what),
            KERAS_SAFE_MODE_BYPASS.finding(self.location, f"{where}: {what}", {"at": where}),
        )

    def _external(self, where: str, key: str, target: str) -> None:
        self._emit(
            ("external", key, target),
            KERAS_EXTERNAL_RESOURCE.finding(
                self.location,
                f"{where}: {key} points at {target[:200]!r}",
                {"at": where, "key": key, "target": target[:500]},
            ),
        )

    # -- plain values ---------------------------------------------------------------------
    def _keyed_value(self, key: str, value: Any, path: str, external_key: str | None) -> None:
        if key == "safe_mode" and value in (False, "false", "False"):
            self._safe_mode(f"{path}.{key}", "passes safe_mode=False to a nested loader")
        elif key == "config" and isinstance(value, dict):
            # A layer's own settings: lookup vocabularies and SavedModel paths live here.
            for inner_key, inner in value.items():
                if not isinstance(inner, str) or not inner:
                    continue
                if inner_key == external_key or (
                    inner_key in PATH_KEYS and (_URL.match(inner) or "/" in inner or "\\" in inner)
                ):
                    self._external(f"{path}.config.{inner_key}", str(inner_key), inner)
        elif isinstance(value, str) and key not in ("config", "registered_name", "class_name"):
            self._string(value, f"{path}.{key}")

    def _string(self, text: str, path: str) -> None:
        if text.rsplit(".", 1)[-1] in SAFE_MODE_NAMES:
            self._safe_mode(path, f"names {text}")


def _layer_name(cfg: Any) -> str | None:
    if isinstance(cfg, dict):
        name = cfg.get("name")
        if isinstance(name, str):
            return name[:100]
    return None


def _candidate_names(class_name: str | None, cfg: Any, registered: str | None) -> list[str]:
    """Names Keras may resolve for an object: the class, a function's name, the registration."""
    names: list[str] = []
    if class_name and class_name not in ("function", "__lambda__"):
        names.append(class_name.rsplit(".", 1)[-1])
    if class_name == "function" and isinstance(cfg, str):
        names.append(cfg)
    if registered:
        names.append(registered.rsplit(">", 1)[-1])
    return [n for i, n in enumerate(names) if n and n not in names[:i]]


def _top(module: str) -> str:
    return module.split(".", 1)[0].split(">", 1)[0]


def decode_function_code(code: str) -> list[str] | None:
    """Strings in Keras-serialised function code (base64 marshal), without unmarshalling it.

    `marshal.loads` is unsafe on hostile input and version-specific, so the string records of the
    marshal format are read directly; names (co_names, co_varnames) and constants come out.
    """
    try:
        import base64  # only for Lambda layers' marshalled code

        raw = base64.b64decode(code.encode("ascii"), validate=False)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        return None
    if not raw:
        return None
    return list(_marshal_strings(raw))


def _marshal_strings(raw: bytes, limit: int = 2000) -> Iterator[str]:
    pos = 0
    count = 0
    n = len(raw)
    while pos < n and count < limit:
        kind = raw[pos] & 0x7F
        if kind in (0x7A, 0x5A) and pos + 1 < n:  # 'z'/'Z': short ASCII, 1-byte length
            length = raw[pos + 1]
            body = raw[pos + 2 : pos + 2 + length]
            if length and len(body) == length and _printable(body):
                yield body.decode("ascii")
                count += 1
                pos += 2 + length
                continue
        elif kind in (0x61, 0x41, 0x75, 0x74) and pos + 5 <= n:  # 'a','A','u','t': 4-byte length
            (length,) = struct.unpack_from("<I", raw, pos + 1)
            if 0 < length <= 4096 and pos + 5 + length <= n:
                body = raw[pos + 5 : pos + 5 + length]
                try:
                    text = body.decode("utf-8")
                except UnicodeDecodeError:
                    text = ""
                if text and text.isprintable():
                    yield text
                    count += 1
                    pos += 5 + length
                    continue
        pos += 1


def _printable(body: bytes) -> bool:
    return all(32 <= b < 127 for b in body)
