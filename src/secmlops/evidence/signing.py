"""Sign and verify models in the OpenSSF model-signing format, naming exactly what does not match.

A signature is a Sigstore bundle holding a DSSE envelope over an in-toto statement that lists the
digest of every file (or file shard) of the model: the format the `model_signing` tool writes and
reads. Signing and verifying go through the `model-signing` library (its manifest, payload, signers
and verifiers); secmlops adds a parallel, streaming hasher with progress, refuses symbolic links and
special files, and compares the signed manifest with the files on disk itself so that a failure
says which file changed, is missing or is extra, or which signer was expected.

Public API: `sign_model`, `verify_model`, the method records (`KeySigner`, `CertificateSigner`,
`SigstoreSigner`; `PublicKeyTrust`, `CertificateTrust`, `SigstoreTrust`), `HashSettings`,
`default_signature_path` and `verification_findings`.
"""

from __future__ import annotations

import base64
import binascii
import concurrent.futures
import contextlib
import dataclasses
import datetime
import hashlib
import importlib
import importlib.util
import json
import os
import stat
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Literal, cast

from secmlops.errors import SignatureError
from secmlops.evidence import keys, rules
from secmlops.findings import Finding, Location, Rule


def _defer_model_signing_init() -> None:
    """Let `model_signing` submodules load without the package's __init__.

    model_signing/__init__.py imports every signing method (Sigstore, its HTTP stack and Fulcio
    client, certificates): ~0.35 s on every `secmlops sign` / `verify`, for key signatures too.
    The package is registered as a plain namespace for its submodules; a PEP 562 module
    __getattr__ loads a public submodule (`model_signing.verifying`, ...) on first attribute
    access, and any other attribute (`__version__`, ...) runs the real __init__ once, so code
    that uses the public API still works. Nothing changes when the package was already imported."""
    if "model_signing" in sys.modules:
        return
    spec = importlib.util.find_spec("model_signing")
    if spec is None or spec.submodule_search_locations is None:
        return  # not installed: the real import raises where it is needed
    package = importlib.util.module_from_spec(spec)
    initialised: list[bool] = []

    def submodule(name: str) -> Any:
        if not name.startswith("__"):
            try:
                return importlib.import_module(f"model_signing.{name}")
            except ModuleNotFoundError:
                pass
        if not initialised and spec.loader is not None:
            initialised.append(True)
            spec.loader.exec_module(package)  # the real __init__, into the same module object
            if name in package.__dict__:
                return package.__dict__[name]
        raise AttributeError(f"module 'model_signing' has no attribute {name!r}")

    package.__getattr__ = submodule  # type: ignore[method-assign]
    sys.modules["model_signing"] = package


_defer_model_signing_init()

Progress = Callable[[str, int, int], None]  # (what, bytes done, bytes total)
HashName = Literal["sha256", "blake3"]
HASHES: tuple[str, ...] = ("sha256", "blake3")
DEFAULT_SIGNATURE_NAME = "model.sig"
# model_signing leaves these out of a signature by default (and records that it did).
GIT_PATHS: tuple[str, ...] = (".git", ".gitattributes", ".github", ".gitignore")
# 1 MiB reads, as model_signing does: measured cheaper in kernel time than large reads into one
# reused buffer (the copy stays in cache), and never more than a few MiB in memory per thread.
_CHUNK = 2**20
_BUNDLE_MEDIA_TYPES = (
    "application/vnd.dev.sigstore.bundle.v0.3+json",
    "application/vnd.dev.sigstore.bundle+json;version=0.3",
    "application/vnd.dev.sigstore.bundle+json;version=0.2",
    "application/vnd.dev.sigstore.bundle+json;version=0.1",
)
_SIGSTORE_TUF_URL = "https://tuf-repo-cdn.sigstore.dev"
# A manifest of 100,000 files is about 15 MB; anything far larger is not a signature.
_MAX_JSON = 256 * 2**20


# ---- how to sign and whom to trust ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KeySigner:
    """Sign with an elliptic-curve private key (PEM, optionally passphrase-protected)."""

    private_key: Path
    passphrase: bytes | None = None


@dataclass(frozen=True, slots=True)
class CertificateSigner:
    """Sign with a key and its certificate from your own PKI; the chain is embedded."""

    private_key: Path
    signing_certificate: Path
    chain: tuple[Path, ...] = ()


@dataclass(frozen=True, slots=True)
class SigstoreSigner:
    """Sigstore keyless signing (needs the network; fails fast without it)."""

    identity_token: str | None = None
    trust_config: Path | None = None
    timeout: float = 5.0


@dataclass(frozen=True, slots=True)
class PublicKeyTrust:
    """Accept signatures made by the private half of this public key."""

    public_key: Path


@dataclass(frozen=True, slots=True)
class CertificateTrust:
    """Accept certificates chaining to these CA certificates (optionally naming `identity`)."""

    chain: tuple[Path, ...]
    identity: str | None = None


@dataclass(frozen=True, slots=True)
class SigstoreTrust:
    """Accept Sigstore keyless signatures by `identity` from `issuer`, verified offline.

    `trust_config` is a Sigstore trusted root or client trust configuration (JSON); without it
    the trusted root shipped with sigstore-python is used (no network either way).
    """

    identity: str
    issuer: str
    trust_config: Path | None = None


SignMethod = KeySigner | CertificateSigner | SigstoreSigner
VerifyMethod = PublicKeyTrust | CertificateTrust | SigstoreTrust


@dataclass(frozen=True, slots=True)
class HashSettings:
    """How files are digested. `shard_size` None signs whole files (what `model_signing` verifies
    by default); a size signs shards of it, hashed in parallel even inside one large file."""

    hash: HashName = "sha256"
    shard_size: int | None = None
    workers: int = 0  # 0: cores + 4 threads (at most 32)
    ignore: tuple[str, ...] = ()  # paths relative to the model folder left out of the signature
    ignore_git_paths: bool = True


# ---- results ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SigningResult:
    """What `sign_model` wrote: the bundle, the model's root digest and the work done."""

    signature: Path
    model_digest: str  # sha256 over the resource digests: the statement subject
    files: int
    bytes_hashed: int
    seconds: float


@dataclass(frozen=True, slots=True)
class FileProblem:
    """One file that does not match the signature (path relative to the model)."""

    path: str
    message: str
    expected: str | None = None
    actual: str | None = None


@dataclass(frozen=True, slots=True)
class SignerProblem:
    """Why the signature itself was not accepted (the files were then not compared)."""

    rule_id: str
    message: str


@dataclass(frozen=True, slots=True)
class VerificationResult:
    """The verdict and exactly what differs; `verified` only when every list is empty."""

    model: Path
    signature: Path
    method: str  # key | certificate | sigstore
    signer: str  # who signed, as far as the bundle says
    hash_type: str = ""
    serialization: str = ""
    files_checked: int = 0
    bytes_hashed: int = 0
    changed: tuple[FileProblem, ...] = ()
    missing: tuple[FileProblem, ...] = ()
    extra: tuple[FileProblem, ...] = ()
    unsafe: tuple[FileProblem, ...] = ()
    signer_problems: tuple[SignerProblem, ...] = ()
    seconds: float = 0.0

    @property
    def verified(self) -> bool:
        return not (
            self.changed or self.missing or self.extra or self.unsafe or self.signer_problems
        )


def default_signature_path(model: Path) -> Path:
    """`FOLDER/model.sig` for a folder (left out of its own manifest), `FILE.sig` for a file."""
    if model.is_dir():
        return model / DEFAULT_SIGNATURE_NAME
    return model.with_name(model.name + ".sig")


# ---- signing ----------------------------------------------------------------------------------


def sign_model(
    model: Path,
    method: SignMethod,
    *,
    signature: Path | None = None,
    settings: HashSettings = HashSettings(),
    progress: Progress | None = None,
) -> SigningResult:
    """Hash every file of `model` (file or folder) and write a model-signing bundle."""
    started = time.perf_counter()
    model = _check_model_path(model)
    signature = signature or default_signature_path(model)
    if settings.hash not in HASHES:
        raise SignatureError(f"unknown hash {settings.hash!r}", hint="use sha256 or blake3")
    if settings.shard_size is not None and settings.hash == "blake3":
        raise SignatureError(
            "blake3 is not sharded", hint="blake3 already hashes one file on all cores"
        )
    if settings.shard_size is not None and settings.shard_size <= 0:
        raise SignatureError(f"shard size must be positive, got {settings.shard_size}")
    ignore = _ignore_list(model, signature, settings.ignore, settings.ignore_git_paths)
    entries, unsafe = _inventory(model, ignore)
    if unsafe:
        listed = ", ".join(f"{p.path} ({p.message})" for p in unsafe[:5])
        raise SignatureError(
            f"refusing to sign {model}: {listed}",
            hint="symbolic links and special files are never signed; replace them by real files",
        )
    if settings.shard_size is not None:
        colons = [e.name for e in entries if ":" in e.name]
        if colons:
            raise SignatureError(
                f"cannot sign {colons[0]!r} in shards: the format separates offsets with ':'",
                hint="rename the file, or sign whole files (no --shard-size)",
            )
    hashing = _BackgroundHash(_work_items(entries, settings.shard_size), settings, progress)
    try:
        # While the files hash: load model-signing and check the key, so that a bad key or an
        # unreachable Sigstore stops the run at once.
        signer = _build_signer(method)
        from model_signing._signing import signing as ms_signing
    except BaseException:
        hashing.cancel()
        raise
    manifest = _manifest(model, hashing.result(), settings, ignore)
    payload = ms_signing.Payload(manifest)
    try:
        with _network_timeout(method):
            bundle = signer.sign(payload)
    except Exception as exc:  # the Sigstore client raises many types; none may escape raw
        raise SignatureError(f"signing failed: {exc}") from exc
    _write_atomically(signature, bundle)
    subject = payload.statement.pb.subject[0].digest["sha256"]
    return SigningResult(
        signature=signature,
        model_digest=str(subject),
        files=len(entries),
        bytes_hashed=sum(e.size for e in entries),
        seconds=time.perf_counter() - started,
    )


def _build_signer(method: SignMethod) -> Any:
    # Each method imports only its own signer module (certificates and Sigstore are heavy).
    if isinstance(method, KeySigner):
        from model_signing._signing import sign_ec_key

        _check_ec(keys.load_private_key(method.private_key, method.passphrase), method.private_key)
        # model_signing passes the password straight to cryptography, which wants bytes.
        return sign_ec_key.Signer(method.private_key, cast(Any, method.passphrase))
    if isinstance(method, CertificateSigner):
        from model_signing._signing import sign_certificate

        try:
            _check_ec(keys.load_private_key(method.private_key), method.private_key)
        except SignatureError as exc:
            raise SignatureError(
                exc.message,
                hint="certificate signing needs an unencrypted key (model_signing has no "
                "passphrase for it); keep it on an encrypted volume or use --key",
            ) from exc
        try:
            return sign_certificate.Signer(
                method.private_key, method.signing_certificate, list(method.chain)
            )
        except OSError as exc:
            raise SignatureError(f"cannot read {exc.filename}: {exc.strerror}") from exc
        except ValueError as exc:
            raise SignatureError(f"certificate signing cannot start: {exc}") from exc
    return _sigstore_signer(method)


def _check_ec(key: keys.PrivateKey | keys.PublicKey, path: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    if not isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        raise SignatureError(
            f"{path} is not an elliptic-curve key",
            hint="the model-signing format takes P-256 or P-384 keys: secmlops keygen --type p256",
        )


def _sigstore_signer(method: SigstoreSigner) -> Any:
    """Check the Sigstore services answer within the timeout, then build the keyless signer."""
    import socket
    from urllib.parse import urlsplit

    urls = [_SIGSTORE_TUF_URL]
    if method.trust_config is not None:
        urls = _trust_config_urls(method.trust_config) or urls
    for url in urls:
        parts = urlsplit(url)
        host, port = parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)
        try:
            with socket.create_connection((host, port), timeout=method.timeout):
                pass
        except OSError as exc:
            raise SignatureError(
                f"Sigstore keyless signing needs the network: cannot reach {host}:{port} "
                f"within {method.timeout:g}s ({exc.strerror or exc})",
                hint="sign offline with --key KEY or with --certificate-chain/--signing-certificate",
            ) from exc
    from model_signing._signing import sign_sigstore
    from sigstore.oidc import detect_credential

    if method.identity_token is None and not sys.stdin.isatty():
        try:
            ambient = detect_credential("sigstore")
        except Exception:  # a CI provider that is present but misconfigured
            ambient = None
        if ambient is None:
            raise SignatureError(
                "Sigstore keyless signing needs an OIDC identity token",
                hint="pass --identity-token-env VAR, run in CI with ambient credentials, or "
                "run in a terminal for the browser flow",
            )
    try:
        with _network_timeout(method):
            return sign_sigstore.Signer(
                use_ambient_credentials=method.identity_token is None,
                identity_token=method.identity_token,
                trust_config=method.trust_config,
                force_oob=True,
            )
    except Exception as exc:
        raise SignatureError(f"Sigstore is not available: {exc}") from exc


@contextlib.contextmanager
def _network_timeout(method: SignMethod) -> Iterator[None]:
    """A socket timeout around Sigstore calls, so that a dead link fails instead of hanging."""
    import socket

    if not isinstance(method, SigstoreSigner):
        yield
        return
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(max(method.timeout, 30.0))
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


def _trust_config_urls(path: Path) -> list[str]:
    doc = _read_json(path, "trust configuration")
    signing = doc.get("signingConfig") if isinstance(doc, dict) else None
    cas = signing.get("caUrls", []) if isinstance(signing, dict) else []
    return [c["url"] for c in cas if isinstance(c, dict) and isinstance(c.get("url"), str)]


def _write_atomically(path: Path, bundle: Any) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        bundle.write(tmp)
        tmp.replace(path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise SignatureError(f"cannot write signature {path}: {exc.strerror or exc}") from exc


# ---- the files of a model ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Entry:
    name: str  # relative POSIX path, "." for a single-file model
    path: Path
    size: int


@dataclass(frozen=True, slots=True)
class _Work:
    identifier: str
    path: Path
    start: int
    end: int | None  # None: to the end of the file
    length: int  # expected bytes, for scheduling and progress


def _check_model_path(model: Path) -> Path:
    try:
        st = model.lstat()
    except FileNotFoundError:
        raise SignatureError(f"{model} does not exist") from None
    except OSError as exc:
        raise SignatureError(f"cannot read {model}: {exc.strerror}") from exc
    if stat.S_ISLNK(st.st_mode):
        raise SignatureError(
            f"{model} is a symbolic link", hint="pass the real model path; links are never followed"
        )
    if not (stat.S_ISDIR(st.st_mode) or stat.S_ISREG(st.st_mode)):
        raise SignatureError(f"{model} is neither a file nor a folder")
    return model


def _clean_relative(text: str, what: str) -> str:
    """A normalised relative POSIX path inside the model, or SignatureError."""
    pure = PurePosixPath(text)
    if not text or pure.is_absolute() or ".." in pure.parts or str(pure) in ("", "."):
        raise SignatureError(
            f"{what} {text!r} is outside the model folder",
            hint="paths must be relative to the model and must not contain '..'",
        )
    return str(pure)


def _ignore_list(
    model: Path, signature: Path | None, user: Iterable[str], git: bool
) -> tuple[str, ...]:
    names = {_clean_relative(p, "ignored path") for p in user}
    if git:
        names.update(GIT_PATHS)
    if signature is not None and model.is_dir():
        inside = _relative_inside(model, signature)
        if inside is not None:
            names.add(inside)
    return tuple(sorted(names))


def _relative_inside(model: Path, path: Path) -> str | None:
    try:
        rel = path.absolute().resolve().relative_to(model.absolute().resolve())
    except (ValueError, OSError):
        return None
    return rel.as_posix() if rel.parts else None


def _is_ignored(name: str, ignore: Sequence[str]) -> bool:
    return any(name == p or name.startswith(p + "/") for p in ignore)


def _inventory(model: Path, ignore: Sequence[str]) -> tuple[list[_Entry], list[FileProblem]]:
    """Every regular file (not following links), and the links and special files found."""
    if model.is_file():
        return [_Entry(".", model, model.stat().st_size)], []
    entries: list[_Entry] = []
    unsafe: list[FileProblem] = []
    stack = [(model, "")]
    while stack:
        folder, prefix = stack.pop()
        try:
            with os.scandir(folder) as it:
                listing = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            raise SignatureError(f"cannot list {folder}: {exc.strerror}") from exc
        for item in listing:
            name = prefix + item.name
            if _is_ignored(name, ignore):
                continue
            try:
                st = item.stat(follow_symlinks=False)
            except OSError as exc:
                raise SignatureError(f"cannot read {item.path}: {exc.strerror}") from exc
            if stat.S_ISLNK(st.st_mode):
                target = os.readlink(item.path)
                unsafe.append(FileProblem(name, f"symbolic link to {target}"))
            elif stat.S_ISDIR(st.st_mode):
                stack.append((Path(item.path), name + "/"))
            elif stat.S_ISREG(st.st_mode):
                entries.append(_Entry(name, Path(item.path), st.st_size))
            else:
                unsafe.append(FileProblem(name, "special file (FIFO, socket or device)"))
    return entries, unsafe


def _work_items(entries: Iterable[_Entry], shard_size: int | None) -> list[_Work]:
    work: list[_Work] = []
    for e in entries:
        if shard_size is None:
            work.append(_Work(e.name, e.path, 0, None, e.size))
            continue
        # model_signing's shard serialization has no shard for an empty file.
        for start in range(0, e.size, shard_size):
            end = min(start + shard_size, e.size)
            work.append(_Work(f"{e.name}:{start}:{end}", e.path, start, end, end - start))
    return work


# ---- hashing ----------------------------------------------------------------------------------


class _Counter:
    """Bytes hashed so far, added to by worker threads and read by the progress loop; `stop`
    abandons the work (the caller found a reason to fail while hashing ran)."""

    def __init__(self) -> None:
        self.done = 0
        self.stop = threading.Event()
        self._lock = threading.Lock()

    def add(self, n: int) -> None:
        with self._lock:
            self.done += n


def _hash_one(item: _Work, algorithm: str, counter: _Counter) -> bytes:
    """Stream one file or shard through the hash; the file is opened without following links."""
    import blake3

    hasher: Any = (
        hashlib.sha256() if algorithm == "sha256" else blake3.blake3(max_threads=blake3.blake3.AUTO)
    )
    try:
        fd = os.open(item.path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise SignatureError(f"cannot read {item.path}: {exc.strerror}") from exc
    with os.fdopen(fd, "rb", buffering=0) as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise SignatureError(f"{item.path} changed into a special file while hashing")
        if hasattr(os, "posix_fadvise"):
            length = 0 if item.end is None else item.end - item.start
            os.posix_fadvise(fd, item.start, length, os.POSIX_FADV_SEQUENTIAL)
        if item.start:
            f.seek(item.start)
        remaining = None if item.end is None else item.end - item.start
        # BLAKE3 spreads one update over all cores only when the update is large.
        chunk = _CHUNK if algorithm == "sha256" else 16 * _CHUNK
        while (remaining is None or remaining > 0) and not counter.stop.is_set():
            data = f.read(chunk if remaining is None else min(chunk, remaining))
            if not data:
                break
            hasher.update(data)
            counter.add(len(data))
            if remaining is not None:
                remaining -= len(data)
    return bytes(hasher.digest())


def _hash_items(
    work: Sequence[_Work],
    settings: HashSettings,
    progress: Progress | None,
    counter: _Counter | None = None,
) -> dict[str, bytes]:
    """Digest every item on a thread pool (hashlib and blake3 release the GIL), biggest first."""
    total = sum(w.length for w in work)
    counter = counter or _Counter()
    # Like ThreadPoolExecutor's default: a few threads more than cores keep reads in flight
    # while others hash (cold caches, network disks); hashlib and blake3 release the GIL.
    workers = settings.workers or min(32, (os.cpu_count() or 1) + 4)
    ordered = sorted(work, key=lambda w: -w.length)
    out: dict[str, bytes] = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(_hash_one, w, settings.hash, counter): w for w in ordered}
        pending: set[concurrent.futures.Future[bytes]] = set(futures)
        while pending:
            done, pending = concurrent.futures.wait(
                pending, timeout=0.2, return_when=concurrent.futures.FIRST_EXCEPTION
            )
            for fut in done:
                out[futures[fut].identifier] = fut.result()  # re-raises a worker's error
            if counter.stop.is_set():
                pool.shutdown(cancel_futures=True)
                return {}
            if progress is not None:
                unit = "files" if settings.shard_size is None else "shards"
                progress(f"{len(out)} of {len(work)} {unit}", counter.done, total)
    return out


class _BackgroundHash:
    """`_hash_items` on a helper thread, so that loading model-signing (about a second of imports)
    and checking the signature overlap with the hashing instead of preceding it."""

    def __init__(
        self, work: Sequence[_Work], settings: HashSettings, progress: Progress | None
    ) -> None:
        self.settings = settings
        self._counter = _Counter()
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
        self._future = self._pool.submit(_hash_items, work, settings, progress, self._counter)

    def result(self) -> dict[str, bytes]:
        try:
            return self._future.result()
        finally:
            self._pool.shutdown()

    def cancel(self) -> None:
        self._counter.stop.set()
        self._pool.shutdown(wait=True)


def _algorithm_name(settings: HashSettings) -> str:
    if settings.shard_size is not None:
        return f"{settings.hash}-sharded-{settings.shard_size}"
    return settings.hash


def _manifest(
    model: Path, digests: Mapping[str, bytes], settings: HashSettings, ignore: Sequence[str]
) -> Any:
    """The model_signing Manifest of these digests, with the serialization it records."""
    from model_signing import manifest as ms_manifest
    from model_signing._hashing import hashing as ms_hashing

    algorithm = _algorithm_name(settings)
    serialization: Any
    if settings.shard_size is None:
        serialization = ms_manifest._FileSerialization(
            settings.hash, False, [Path(p) for p in ignore]
        )
    else:
        serialization = ms_manifest._ShardSerialization(
            settings.hash, settings.shard_size, False, [Path(p) for p in ignore]
        )
    items = [
        serialization.new_item(identifier, ms_hashing.Digest(algorithm, value))
        for identifier, value in digests.items()
    ]
    name = model.name or os.path.basename(model.resolve())
    return ms_manifest.Manifest(name, items, serialization)


# ---- verification -----------------------------------------------------------------------------


def verify_model(
    model: Path,
    method: VerifyMethod,
    *,
    signature: Path | None = None,
    workers: int = 0,
    progress: Progress | None = None,
) -> VerificationResult:
    """Check the signature, then every file; report each difference by name.

    Raises SignatureError when the check cannot be made at all (no model, no or unreadable
    signature, malformed bundle, unreadable trust material): never a silent pass.
    """
    started = time.perf_counter()
    model = _check_model_path(model)
    signature = signature or default_signature_path(model)
    doc = _read_json(signature, "signature")
    kind = _bundle_kind(doc, signature)
    name = _method_name(method)
    base = VerificationResult(model, signature, name, signer=_describe_signer(doc, kind))
    if kind != name:
        problem = SignerProblem(
            rules.WRONG_SIGNER.rule_id,
            f"the signature was made with a {kind} ({base.signer}) but you asked to verify "
            f"with a {name}",
        )
        return _replace(base, signer_problems=(problem,), seconds=time.perf_counter() - started)
    # Start hashing with the serialization the (not yet verified) statement names, while the
    # signature is checked; the verified statement decides whether those digests are used.
    early = _early_hashing(model, signature, doc, workers, progress)
    try:
        outcome = _verify_signed_statement(signature, doc, method)
        problems: tuple[SignerProblem, ...] = ()
        if isinstance(outcome, SignerProblem):
            problems = (outcome,)
        elif isinstance(method, CertificateTrust):
            problems = _certificate_problems(doc, method.identity)
    except BaseException:
        if early is not None:
            early.hashing.cancel()
        raise
    if problems or isinstance(outcome, SignerProblem):
        if early is not None:
            early.hashing.cancel()
        return _replace(base, signer_problems=problems, seconds=time.perf_counter() - started)
    expected, params = outcome
    settings, ignore = _hash_plan(model, signature, params, workers)
    if early is not None and (early.hashing.settings, early.ignore) == (settings, ignore):
        entries, unsafe = early.entries, early.unsafe
        digests = early.hashing.result()
    else:
        if early is not None:
            early.hashing.cancel()
        entries, unsafe = _inventory(model, ignore)
        digests = _hash_items(_work_items(entries, settings.shard_size), settings, progress)
    actual = _actual_by_file(digests, _algorithm_name(settings), settings.shard_size is not None)
    for e in entries:
        actual.setdefault(e.name, {})  # empty files have no shard
    changed, missing, extra = _diff(expected, actual, {u.path for u in unsafe})
    return _replace(
        base,
        hash_type=settings.hash,
        serialization="shards" if settings.shard_size is not None else "files",
        files_checked=len(entries),
        bytes_hashed=sum(e.size for e in entries),
        changed=changed,
        missing=missing,
        extra=extra,
        unsafe=tuple(unsafe),
        seconds=time.perf_counter() - started,
    )


def _hash_plan(
    model: Path, signature: Path, params: Mapping[str, Any], workers: int
) -> tuple[HashSettings, list[str]]:
    """The hash settings and ignored paths a statement's serialization asks for."""
    settings = _settings_from(params, workers)
    ignore = _bundle_ignores(params)
    inside = _relative_inside(model, signature) if model.is_dir() else None
    if inside is not None:
        ignore.append(inside)
    return settings, ignore


@dataclass(frozen=True, slots=True)
class _EarlyHash:
    """Hashing started before the signature was checked, with the plan it followed."""

    hashing: _BackgroundHash
    ignore: list[str]
    entries: list[_Entry]
    unsafe: list[FileProblem]


def _early_hashing(
    model: Path, signature: Path, doc: Mapping[str, Any], workers: int, progress: Progress | None
) -> _EarlyHash | None:
    """Hashing started from the unverified statement, or None when it cannot even be read (the
    checked path then reports why)."""
    try:
        payload = base64.b64decode(doc["dsseEnvelope"]["payload"], validate=True)
        params = json.loads(payload)["predicate"]["serialization"]
        settings, ignore = _hash_plan(model, signature, params, workers)
        entries, unsafe = _inventory(model, ignore)
    except (KeyError, TypeError, ValueError, RecursionError, SignatureError):
        return None
    work = _work_items(entries, settings.shard_size)
    return _EarlyHash(_BackgroundHash(work, settings, progress), ignore, entries, unsafe)


def _replace(result: VerificationResult, **changes: Any) -> VerificationResult:
    return dataclasses.replace(result, **changes)


def _method_name(method: VerifyMethod) -> str:
    if isinstance(method, PublicKeyTrust):
        return "key"
    if isinstance(method, CertificateTrust):
        return "certificate"
    return "sigstore"


def _read_json(path: Path, what: str) -> Any:
    try:
        if path.stat().st_size > _MAX_JSON:
            raise SignatureError(f"{what} {path} is larger than {_MAX_JSON // 2**20} MiB")
        raw = path.read_bytes()
    except FileNotFoundError:
        hint = (
            f"sign it first (secmlops sign), or pass --signature; default name {DEFAULT_SIGNATURE_NAME}"
            if what == "signature"
            else None
        )
        raise SignatureError(f"{what} {path} does not exist", hint=hint) from None
    except IsADirectoryError:
        raise SignatureError(f"{what} {path} is a folder, not a file") from None
    except OSError as exc:
        raise SignatureError(f"cannot read {what} {path}: {exc.strerror}") from exc
    if not raw.strip():
        raise SignatureError(f"{what} {path} is empty")
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise SignatureError(f"{what} {path} is not JSON ({_short(exc)})") from exc


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:200]


def _malformed(path: Path, why: str) -> SignatureError:
    return SignatureError(
        f"signature {path} is not a model-signing bundle: {why}",
        hint="it must be a Sigstore bundle written by `secmlops sign` or `model_signing sign`",
    )


def _bundle_kind(doc: Any, path: Path) -> str:
    """key, certificate or sigstore, from the bundle's verification material."""
    if not isinstance(doc, dict):
        raise _malformed(path, "the JSON is not an object")
    if doc.get("mediaType") not in _BUNDLE_MEDIA_TYPES:
        raise _malformed(path, f"unknown mediaType {str(doc.get('mediaType'))[:80]!r}")
    envelope = doc.get("dsseEnvelope")
    if not isinstance(envelope, dict) or not envelope.get("signatures"):
        raise _malformed(path, "no signed DSSE envelope")
    material = doc.get("verificationMaterial")
    if not isinstance(material, dict):
        raise _malformed(path, "no verificationMaterial")
    if "publicKey" in material:
        return "key"
    if material.get("tlogEntries") or "certificate" in material:
        return "sigstore"  # keyless: a Fulcio certificate logged in Rekor
    if "x509CertificateChain" in material:
        return "certificate"
    raise _malformed(path, "verificationMaterial names no key and no certificate")


def _describe_signer(doc: Mapping[str, Any], kind: str) -> str:
    material = doc["verificationMaterial"]
    if kind == "key":
        hint = (
            material["publicKey"].get("hint") if isinstance(material["publicKey"], dict) else None
        )
        return f"key {hint[:16]}…" if isinstance(hint, str) and hint else "key (no key hint)"
    certs = _bundle_certificates(doc)
    if not certs:
        return kind
    return f"certificate {', '.join(_identities(certs[0])) or certs[0].subject.rfc4514_string()}"


def _bundle_certificates(doc: Mapping[str, Any]) -> list[Any]:
    from cryptography import x509

    material = doc.get("verificationMaterial", {})
    raw: list[Any] = []
    if isinstance(material.get("x509CertificateChain"), dict):
        raw = list(material["x509CertificateChain"].get("certificates", []))
    elif isinstance(material.get("certificate"), dict):
        raw = [material["certificate"]]
    certs = []
    for item in raw:
        try:
            certs.append(x509.load_der_x509_certificate(base64.b64decode(item["rawBytes"])))
        except (KeyError, TypeError, ValueError, binascii.Error):
            continue
    return certs


def _identities(cert: Any) -> list[str]:
    """The names a certificate vouches for: SAN e-mails, URIs, DNS names; subject CN and e-mail."""
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    names: list[str] = []
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        for kind in (x509.RFC822Name, x509.UniformResourceIdentifier, x509.DNSName):
            names.extend(str(v) for v in san.get_values_for_type(kind))
    except x509.ExtensionNotFound:
        pass
    for oid in (NameOID.COMMON_NAME, NameOID.EMAIL_ADDRESS):
        names.extend(str(a.value) for a in cert.subject.get_attributes_for_oid(oid))
    return list(dict.fromkeys(names))


def _verify_signed_statement(
    path: Path, doc: Mapping[str, Any], method: VerifyMethod
) -> tuple[dict[str, tuple[str, str]], dict[str, Any]] | SignerProblem:
    """Check the signature with model_signing's verifiers; return the signed resources."""
    from cryptography.exceptions import InvalidSignature
    from model_signing._signing import sign_sigstore_pb

    if isinstance(method, SigstoreTrust):
        verified = _verify_sigstore(path, method)
        if isinstance(verified, SignerProblem):
            return verified
        payload_type, payload = verified
    else:
        verifier = _pb_verifier(method)
        try:
            bundle = sign_sigstore_pb.Signature.read(path)
        except Exception as exc:  # pydantic, KeyError, TypeError: all mean a broken bundle
            raise _malformed(path, _short(exc)) from exc
        try:
            payload_type, payload = verifier._verify_signed_content(bundle)
        except InvalidSignature:
            who = "this key" if isinstance(method, PublicKeyTrust) else "the signing certificate"
            return SignerProblem(
                rules.SIGNATURE_INVALID.rule_id,
                f"the DSSE signature does not verify with {who}: the signed statement was "
                "edited, or the signature belongs to another key",
            )
        except ValueError as exc:
            text = str(exc)
            if text.startswith("Key mismatch"):
                return SignerProblem(
                    rules.WRONG_SIGNER.rule_id,
                    f"signed by another key: the bundle names key "
                    f"{_describe_signer(doc, 'key')}, the trusted key is "
                    f"{_pem_hint(_public_key_path(method))[:16]}…",
                )
            if "cannot be used for signing" in text:
                return SignerProblem(rules.UNTRUSTED_CERTIFICATE.rule_id, text)
            raise _malformed(path, _short(exc)) from exc
        except (IndexError, AttributeError, TypeError, binascii.Error) as exc:
            raise _malformed(path, _short(exc)) from exc
        except Exception as exc:
            if type(exc).__name__ == "X509StoreContextError":  # pyOpenSSL chain failure
                return SignerProblem(
                    rules.UNTRUSTED_CERTIFICATE.rule_id,
                    f"the signing certificate does not chain to the trusted CA: {_short(exc)}",
                )
            raise
    return _statement_resources(path, payload_type, payload)


def _public_key_path(method: VerifyMethod) -> Path:
    assert isinstance(method, PublicKeyTrust)
    return method.public_key


def _pem_hint(path: Path) -> str:
    """model_signing's key hint: SHA-256 of the public key's PEM."""
    return hashlib.sha256(keys.public_pem(keys.load_public_key(path))).hexdigest()


def _pb_verifier(method: VerifyMethod) -> Any:
    if isinstance(method, PublicKeyTrust):
        from model_signing._signing import sign_ec_key

        _check_ec(keys.load_public_key(method.public_key), method.public_key)
        return sign_ec_key.Verifier(method.public_key)
    from model_signing._signing import sign_certificate

    assert isinstance(method, CertificateTrust)
    if not method.chain:
        raise SignatureError(
            "no CA certificate given", hint="pass --certificate-chain CA.pem (repeatable)"
        )
    try:
        return sign_certificate.Verifier(list(method.chain))
    except OSError as exc:
        raise SignatureError(f"cannot read {exc.filename}: {exc.strerror}") from exc
    except ValueError as exc:
        raise SignatureError(f"the CA certificates cannot be loaded: {_short(exc)}") from exc


class _AnyCertificate:
    """Policy that accepts any certificate: the identity is checked separately, so that a wrong
    identity and an untrusted certificate get different rule ids."""

    def verify(self, cert: Any) -> None:
        return None


def _verify_sigstore(path: Path, method: SigstoreTrust) -> tuple[str, bytes] | SignerProblem:
    from sigstore.errors import Error as SigstoreError
    from sigstore.errors import VerificationError
    from sigstore.models import Bundle
    from sigstore.verify import Verifier
    from sigstore.verify.policy import Identity

    root = _trusted_root(method.trust_config)
    try:
        bundle = Bundle.from_json(path.read_bytes())
    except Exception as exc:
        raise _malformed(path, _short(exc)) from exc
    try:
        payload_type, payload = Verifier(trusted_root=root).verify_dsse(bundle, _AnyCertificate())
    except (VerificationError, SigstoreError, ValueError) as exc:
        return SignerProblem(
            rules.UNTRUSTED_CERTIFICATE.rule_id,
            f"the Sigstore bundle does not verify against the trusted root: {_short(exc)}",
        )
    try:
        Identity(identity=method.identity, issuer=method.issuer).verify(bundle.signing_certificate)
    except (VerificationError, Exception) as exc:
        found = ", ".join(_identities(bundle.signing_certificate)) or "no identity"
        return SignerProblem(
            rules.IDENTITY_MISMATCH.rule_id,
            f"signed by {found}; expected {method.identity} from {method.issuer} ({_short(exc)})",
        )
    return str(payload_type), bytes(payload)


def _trusted_root(trust_config: Path | None) -> Any:
    """A Sigstore TrustedRoot from a file (trusted root or client trust config) or the one
    embedded in sigstore-python: never fetched, so verification works offline."""
    from sigstore._utils import read_embedded
    from sigstore.models import ClientTrustConfig, TrustedRoot

    try:
        if trust_config is None:
            raw = read_embedded("trusted_root.json", _SIGSTORE_TUF_URL).decode()
            return TrustedRoot(_trustroot_module().TrustedRoot.from_json(raw))
        doc = _read_json(trust_config, "trust configuration")
        text = json.dumps(doc)
        if isinstance(doc, dict) and "trustedRoot" in doc:
            return ClientTrustConfig.from_json(text).trusted_root
        return TrustedRoot(_trustroot_module().TrustedRoot.from_json(text))
    except SignatureError:
        raise
    except Exception as exc:
        raise SignatureError(
            f"the Sigstore trusted root cannot be loaded: {_short(exc)}",
            hint="pass --trust-config with a trusted_root.json or a client trust configuration",
        ) from exc


def _trustroot_module() -> Any:
    from sigstore_models.trustroot import v1

    return v1


def _statement_resources(
    path: Path, payload_type: str, payload: bytes
) -> tuple[dict[str, tuple[str, str]], dict[str, Any]]:
    """Signed resources as {identifier: (algorithm, hex digest)} plus the serialization."""
    from model_signing._signing import signing as ms_signing

    if payload_type != "application/vnd.in-toto+json":
        raise _malformed(path, f"payload type {payload_type!r} is not an in-toto statement")
    try:
        statement = json.loads(payload)
        manifest = ms_signing.dsse_payload_to_manifest(statement)
        params = dict(manifest.serialization_type)
        resources = {
            rd.identifier: (rd.digest.algorithm, rd.digest.digest_hex)
            for rd in manifest.resource_descriptors()
        }
    except Exception as exc:  # KeyError/ValueError/TypeError from a signed but broken statement
        raise _malformed(path, f"signed statement: {_short(exc)}") from exc
    for identifier in resources:
        name = identifier.rsplit(":", 2)[0] if params.get("method") == "shards" else identifier
        if name != ".":
            _clean_relative(name, "the signature lists a file")
    return resources, params


def _settings_from(params: Mapping[str, Any], workers: int) -> HashSettings:
    method, hash_type = params.get("method"), params.get("hash_type")
    if hash_type not in HASHES:
        raise SignatureError(
            f"the signature uses hash {hash_type!r}, which secmlops does not verify",
            hint="secmlops verifies sha256 and blake3 signatures",
        )
    if method == "files":
        return HashSettings(hash=hash_type, workers=workers)
    shard = params.get("shard_size")
    # The statement travels as a protobuf Struct, where every number is a float.
    if isinstance(shard, float) and shard.is_integer():
        shard = int(shard)
    if method == "shards" and isinstance(shard, int) and shard > 0 and hash_type == "sha256":
        return HashSettings(hash="sha256", shard_size=shard, workers=workers)
    raise SignatureError(f"the signature uses an unknown serialization {dict(params)!r}")


def _bundle_ignores(params: Mapping[str, Any]) -> list[str]:
    out = []
    for p in params.get("ignore_paths", []) or []:
        text = str(p)
        try:
            out.append(_clean_relative(text, "ignored path"))
        except SignatureError:
            continue  # model_signing drops ignore paths outside the model the same way
    return out


def _actual_by_file(
    digests: Mapping[str, bytes], algorithm: str, sharded: bool
) -> dict[str, dict[str, tuple[str, str]]]:
    by_file: dict[str, dict[str, tuple[str, str]]] = {}
    for identifier, value in digests.items():
        name = identifier.rsplit(":", 2)[0] if sharded else identifier
        by_file.setdefault(name, {})[identifier] = (algorithm, value.hex())
    return by_file


def _diff(
    expected: Mapping[str, tuple[str, str]],
    actual: Mapping[str, Mapping[str, tuple[str, str]]],
    unsafe: set[str],
) -> tuple[tuple[FileProblem, ...], tuple[FileProblem, ...], tuple[FileProblem, ...]]:
    """Changed, missing and extra files; renames are recognised by identical content."""
    sharded = any("-sharded-" in alg for alg, _ in expected.values())
    signed: dict[str, dict[str, tuple[str, str]]] = {}
    for identifier, value in expected.items():
        name = identifier.rsplit(":", 2)[0] if sharded else identifier
        signed.setdefault(name, {})[identifier] = value
    changed, missing, extra = [], [], []
    for name in sorted(signed.keys() & actual.keys()):
        want, have = signed[name], actual[name]
        if want == have:
            continue
        changed.append(_change(name, want, have, sharded))
    gone = {n: _content_key(signed[n]) for n in signed.keys() - actual.keys() if n not in unsafe}
    # An empty file has no shard: it only counts when a signed file was truncated to nothing.
    new = {n: _content_key(actual[n]) for n in actual.keys() - signed.keys() if actual[n]}
    for name in sorted(gone):
        twins = sorted(n for n, key in new.items() if key == gone[name])
        note = f"; same content is now at {twins[0]} (renamed)" if twins else ""
        missing.append(FileProblem(name, f"signed file is missing{note}", gone[name], None))
    for name in sorted(new):
        twins = sorted(n for n, key in gone.items() if key == new[name])
        note = f" (renamed from {twins[0]})" if twins else ""
        extra.append(FileProblem(name, f"file is not in the signature{note}", None, new[name]))
    return tuple(changed), tuple(missing), tuple(extra)


def _content_key(items: Mapping[str, tuple[str, str]]) -> str:
    if len(items) == 1:
        return next(iter(items.values()))[1]
    return hashlib.sha256("".join(v for _, v in sorted(items.values())).encode()).hexdigest()


def _change(
    name: str,
    want: Mapping[str, tuple[str, str]],
    have: Mapping[str, tuple[str, str]],
    sharded: bool,
) -> FileProblem:
    if not sharded:
        (alg_w, dig_w), (alg_h, dig_h) = next(iter(want.values())), next(iter(have.values()))
        if alg_w != alg_h:
            return FileProblem(name, f"hashed with {alg_h}, signed with {alg_w}", dig_w, dig_h)
        return FileProblem(name, "content differs from the signed digest", dig_w, dig_h)
    signed_size = max(int(k.rsplit(":", 1)[1]) for k in want)
    size = max((int(k.rsplit(":", 1)[1]) for k in have), default=0)
    if size != signed_size:
        what = "truncated" if size < signed_size else "grew"
        message = f"size differs ({what}: signed {signed_size} bytes, now {size})"
    else:
        bad = sorted(
            (int(k.rsplit(":", 2)[1]), int(k.rsplit(":", 1)[1]))
            for k in want
            if want[k] != have.get(k)
        )
        ranges = ", ".join(f"{a}-{b}" for a, b in bad[:5])
        message = f"content differs in byte range(s) {ranges}"
    return FileProblem(name, message, _content_key(want), _content_key(have))


def _certificate_problems(
    doc: Mapping[str, Any], identity: str | None
) -> tuple[SignerProblem, ...]:
    """Validity now (a certificate signature has no trusted timestamp) and the pinned identity."""
    now = datetime.datetime.now(datetime.UTC)
    problems = []
    certs = _bundle_certificates(doc)
    for cert in certs:
        subject = cert.subject.rfc4514_string()
        if now > cert.not_valid_after_utc:
            problems.append(
                SignerProblem(
                    rules.CERTIFICATE_EXPIRED.rule_id,
                    f"certificate {subject} expired on {cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC",
                )
            )
        elif now < cert.not_valid_before_utc:
            problems.append(
                SignerProblem(
                    rules.CERTIFICATE_EXPIRED.rule_id,
                    f"certificate {subject} is not valid before "
                    f"{cert.not_valid_before_utc:%Y-%m-%d %H:%M} UTC",
                )
            )
    if identity is not None and certs and identity not in _identities(certs[0]):
        found = ", ".join(_identities(certs[0])) or "no identity"
        problems.append(
            SignerProblem(
                rules.IDENTITY_MISMATCH.rule_id,
                f"the signing certificate names {found}; expected {identity}",
            )
        )
    return tuple(problems)


# ---- findings ---------------------------------------------------------------------------------


def verification_findings(result: VerificationResult) -> list[Finding]:
    """One finding per signer problem and per changed, missing, extra or unsafe file."""
    sig = Location(path=str(result.signature))
    out: list[Finding] = [
        rules.ALL[p.rule_id].finding(sig, p.message, {"signer": result.signer})
        for p in result.signer_problems
    ]
    groups: list[tuple[Rule, tuple[FileProblem, ...]]] = [
        (rules.FILE_CHANGED, result.changed),
        (rules.FILE_MISSING, result.missing),
        (rules.FILE_EXTRA, result.extra),
        (rules.UNSAFE_PATH, result.unsafe),
    ]
    for rule, problems in groups:
        for p in problems:
            where = result.model if p.path == "." else result.model / p.path
            evidence = {
                k: v
                for k, v in (("expected", p.expected), ("actual", p.actual), ("file", p.path))
                if v is not None
            }
            out.append(rule.finding(Location(path=str(where)), f"{p.path}: {p.message}", evidence))
    return out


__all__ = [
    "CertificateSigner",
    "CertificateTrust",
    "FileProblem",
    "HashSettings",
    "KeySigner",
    "PublicKeyTrust",
    "SignerProblem",
    "SigningResult",
    "SigstoreSigner",
    "SigstoreTrust",
    "VerificationResult",
    "default_signature_path",
    "sign_model",
    "verification_findings",
    "verify_model",
]
