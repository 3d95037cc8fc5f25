"""Stable rule ids of the model scanner. Documented in docs/rules.md (a test keeps them in sync)."""

from __future__ import annotations

from secmlops.findings import Rule, Severity

_EXEC = ("NIST-AI-RMF:MANAGE-2.2", "ISO42001:A.6.2.6", "OWASP-ML:ML06")
_SUPPLY = ("NIST-AI-RMF:GOVERN-6.1", "ISO42001:A.10.3", "OWASP-ML:ML06")
_ROBUST = ("NIST-AI-RMF:MEASURE-2.7", "ISO42001:A.6.2.4")

PICKLE_EXEC = Rule(
    "MODEL-PICKLE-EXEC",
    Severity.CRITICAL,
    "Pickle reaches a dangerous callable",
    "Loading the file imports or calls a function that runs code, spawns processes, resolves "
    "names, touches files or the network, loads native code or deserialises nested data.",
    "Do not load this file. Obtain the model from a trusted source in a safe format "
    "(safetensors, ONNX) or rebuild it from verified weights.",
    _EXEC,
)
PICKLE_UNKNOWN = Rule(
    "MODEL-PICKLE-UNKNOWN-GLOBAL",
    Severity.HIGH,
    "Pickle references a callable that is not on the allowlist",
    "Only callables known to rebuild data without side effects are allowed; anything else may "
    "run code of the file author's choosing when loaded or when the model is used.",
    "Review the callable. If it is a trusted data constructor, allow it in "
    '[tool.secmlops.models] allow = ["module.name:use"]; otherwise convert the model.',
    _EXEC,
)
PICKLE_COMPUTED_CALL = Rule(
    "MODEL-PICKLE-COMPUTED-CALL",
    Severity.CRITICAL,
    "Pickle calls a value computed at load time",
    "The unpickler calls something that is not a named global (the result of another call, an "
    "attribute fetched at load time or an extension code): a scanner cannot know what runs.",
    "Do not load this file; benign framework pickles never call computed values.",
    _EXEC,
)
PICKLE_STATE_HIJACK = Rule(
    "MODEL-PICKLE-STATE-HIJACK",
    Severity.CRITICAL,
    "Pickle BUILD sets special attributes",
    "A BUILD state that sets dunder attributes such as __setstate__ or __reduce__ turns later "
    "opcodes or later use of the object into calls chosen by the file's author.",
    "Do not load this file.",
    _EXEC,
)
PICKLE_EXT = Rule(
    "MODEL-PICKLE-EXT",
    Severity.HIGH,
    "Pickle uses the copyreg extension registry",
    "EXT1/EXT2/EXT4 opcodes fetch a callable registered in the loading process at run time; "
    "what they resolve to cannot be known from the file.",
    "Do not load this file unless the extension codes are known and registered by you.",
    _EXEC,
)
PICKLE_MALFORMED = Rule(
    "MODEL-PICKLE-MALFORMED",
    Severity.MEDIUM,
    "Pickle stream is broken",
    "The loader stops with an error at this point; everything before the break runs when the "
    "file is loaded (a known trick to hide payloads from tools that give up on errors).",
    "Treat the file as corrupt or tampered; re-create it from a trusted source.",
    _ROBUST,
)
PICKLE_DIFFERENTIAL = Rule(
    "MODEL-PICKLE-PARSER-DIFFERENTIAL",
    Severity.HIGH,
    "Pickle is read differently by different parsers",
    "Constructs that CPython's C unpickler, the pure-Python unpickler and pickletools read "
    "differently (lying frames, base-prefixed integers, data after STOP, odd quoting) are used "
    "to show scanners one program and run another.",
    "Do not load this file; framework writers never produce these constructs.",
    _EXEC,
)
PICKLE_LIMIT = Rule(
    "MODEL-PICKLE-LIMIT",
    Severity.HIGH,
    "Pickle is too large or deep to analyse",
    "The opcode budget or nesting limit was reached before the end of the stream.",
    "Raise the limit only for files from a trusted source, or convert the model.",
    _ROBUST,
)
PICKLE_NESTED = Rule(
    "MODEL-PICKLE-NESTED",
    Severity.LOW,
    "Pickle deserialises embedded bytes",
    "torch.storage._load_from_bytes (what pickle.dumps of a tensor writes) and pickle.loads run a "
    "second loader on bytes stored in the file; those bytes are scanned as a member of their own "
    "and any finding in them is reported there.",
    "No action needed when the embedded member is clean; prefer torch.save or safetensors.",
    _EXEC,
)
PICKLE_MULTIPLE = Rule(
    "MODEL-PICKLE-MULTIPLE",
    Severity.INFO,
    "File holds several pickles",
    "Scanners that stop at the first STOP miss payloads in later pickles; each one is analysed.",
    "No action needed when the other findings are clean (legacy PyTorch files hold five).",
    _ROBUST,
)
FORMAT_UNKNOWN = Rule(
    "MODEL-FORMAT-UNKNOWN",
    Severity.MEDIUM,
    "File named like a model matches no known format",
    "A mislabeled or unknown file cannot be vouched for; tools that skip such files report "
    "them as clean.",
    "Identify the file's real format; remove it from model folders if it is not needed.",
    _ROBUST,
)
SYMLINK = Rule(
    "MODEL-SYMLINK",
    Severity.MEDIUM,
    "Symbolic link in a model folder",
    "A link can point a loader at a file outside the scanned folder.",
    "Replace links by the files themselves, or scan with --follow-symlinks.",
    _SUPPLY,
)
SCAN_INCOMPLETE = Rule(
    "MODEL-SCAN-INCOMPLETE",
    Severity.HIGH,
    "File could not be fully checked",
    "The scanner fails closed: a file that cannot be parsed or read is never reported as clean.",
    "Check that the file is complete and of a supported format.",
    _ROBUST,
)
ARCHIVE_TRAVERSAL = Rule(
    "MODEL-ARCHIVE-PATH-TRAVERSAL",
    Severity.HIGH,
    "Archive member escapes the extraction folder",
    "Absolute paths, '..' components, drive letters or links in member names let extraction "
    "write outside its folder.",
    "Do not extract this archive; re-create it with relative member names.",
    _SUPPLY,
)
ARCHIVE_BOMB = Rule(
    "MODEL-ARCHIVE-BOMB",
    Severity.HIGH,
    "Compressed content expands beyond the limits",
    "The compression ratio, expanded size or member count exceeds the configured limits "
    "(decompression bomb).",
    "Do not extract it; if the file is legitimate, raise the limits in configuration.",
    _ROBUST,
)
ARCHIVE_DEPTH = Rule(
    "MODEL-ARCHIVE-DEPTH",
    Severity.HIGH,
    "Containers nested too deeply",
    "Nesting containers is used to exhaust scanners and hide payloads below their depth limit.",
    "Flatten the archive, or raise the depth limit for trusted files.",
    _ROBUST,
)
ARCHIVE_INCONSISTENT = Rule(
    "MODEL-ARCHIVE-INCONSISTENT",
    Severity.HIGH,
    "Archive structure is inconsistent",
    "Duplicate member names, central directory and local headers that disagree, wrong CRCs or "
    "data before the first member make different readers see different files.",
    "Re-create the archive with a standard tool from trusted content.",
    _SUPPLY,
)
ARCHIVE_ENCRYPTED = Rule(
    "MODEL-ARCHIVE-ENCRYPTED",
    Severity.HIGH,
    "Encrypted archive member",
    "Encrypted content cannot be inspected.",
    "Provide the content unencrypted for scanning.",
    _ROBUST,
)
TORCHSCRIPT = Rule(
    "MODEL-TORCHSCRIPT-CODE",
    Severity.MEDIUM,
    "TorchScript archive carries code",
    "TorchScript archives contain Python-like code that torch.jit.load compiles and runs; "
    "operators reachable from it include file and process access.",
    "Prefer weights-only formats; review the code/ members of the archive.",
    _EXEC,
)
TORCHSCRIPT_DANGEROUS = Rule(
    "MODEL-TORCHSCRIPT-DANGEROUS-OP",
    Severity.CRITICAL,
    "TorchScript code calls a dangerous operator or builtin",
    "The archive's code calls operators that reach the file system, processes or Python itself.",
    "Do not load this archive.",
    _EXEC,
)
NUMPY_OBJECT = Rule(
    "MODEL-NUMPY-OBJECT-ARRAY",
    Severity.LOW,
    "NumPy file holds an object array (pickle inside)",
    "Object arrays are stored as pickles and need allow_pickle=True to load; the embedded "
    "pickle is analysed separately.",
    "Store numeric arrays only, or use safetensors.",
    _EXEC,
)
NUMPY_MALFORMED = Rule(
    "MODEL-NUMPY-MALFORMED",
    Severity.MEDIUM,
    "NumPy file header is invalid",
    "The .npy header does not parse or does not match the data size.",
    "Re-create the file with numpy.save.",
    _ROBUST,
)
SKOPS_DANGEROUS = Rule(
    "MODEL-SKOPS-DANGEROUS-TYPE",
    Severity.CRITICAL,
    "skops file names a dangerous callable or type",
    "skops rebuilds every object its schema names; a function such as os.system stored in an "
    "estimator (e.g. FunctionTransformer(func=...)) runs on the model's inputs once loaded with "
    "that type trusted.",
    "Do not trust or load the file; rebuild the model from reviewed code.",
    _EXEC,
)
SKOPS_UNKNOWN = Rule(
    "MODEL-SKOPS-UNKNOWN-TYPE",
    Severity.HIGH,
    "skops file names a type that is not on the allowlist",
    "Loading it needs this type in skops' trusted list; anything outside known scikit-learn, "
    "NumPy and SciPy data types may run code when built or used.",
    "Review the type; if it is a trusted data type, allow it in [tool.secmlops.models] "
    'allow = ["module.name:new"].',
    _EXEC,
)
SKOPS_MALFORMED = Rule(
    "MODEL-SKOPS-MALFORMED",
    Severity.MEDIUM,
    "skops schema does not parse",
    "The schema.json of a skops file is not valid JSON of the skops shape, or is too large to check.",
    "Re-create the file with skops.io.dump.",
    _EXEC,
)

ALL: dict[str, Rule] = {
    r.rule_id: r
    for r in [
        PICKLE_EXEC, PICKLE_UNKNOWN, PICKLE_COMPUTED_CALL, PICKLE_STATE_HIJACK, PICKLE_EXT,
        PICKLE_MALFORMED, PICKLE_DIFFERENTIAL, PICKLE_LIMIT, PICKLE_MULTIPLE, PICKLE_NESTED, FORMAT_UNKNOWN, SYMLINK,
        SCAN_INCOMPLETE, ARCHIVE_TRAVERSAL, ARCHIVE_BOMB, ARCHIVE_DEPTH, ARCHIVE_INCONSISTENT,
        ARCHIVE_ENCRYPTED, TORCHSCRIPT, TORCHSCRIPT_DANGEROUS, NUMPY_OBJECT, NUMPY_MALFORMED,
        SKOPS_DANGEROUS, SKOPS_UNKNOWN, SKOPS_MALFORMED,
    ]
}  # fmt: skip


def register(*new: Rule) -> None:
    """Format modules register their own rules here, so reports and docs know them."""
    for rule in new:
        existing = ALL.get(rule.rule_id)
        if existing is not None and existing != rule:
            raise ValueError(f"rule id {rule.rule_id} registered twice with different content")
        ALL[rule.rule_id] = rule
