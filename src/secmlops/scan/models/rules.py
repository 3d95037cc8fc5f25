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

# Format-specific rules (the format modules import them, and are themselves loaded only when a
# file could be of their format: the catalogue stays complete either way).
GGUF_TEMPLATE_INJECTION = Rule(
    "MODEL-GGUF-TEMPLATE-INJECTION",
    Severity.CRITICAL,
    "GGUF chat template contains a Jinja sandbox escape",
    "Chat templates are rendered with Jinja2 when the model is used; access to dunder attributes, "
    "template globals such as cycler/lipsum/self, computed attribute names or os/popen lead out "
    "of the template to arbitrary code (CVE-2024-34359, llama-cpp-python).",
    "Do not load this model with a template renderer; replace tokenizer.chat_template with the "
    "upstream model's template.",
    _EXEC,
)

GGUF_TEMPLATE_INVALID = Rule(
    "MODEL-GGUF-TEMPLATE-INVALID",
    Severity.HIGH,
    "GGUF chat template cannot be analysed",
    "A template that Jinja2 cannot parse (or that is not a string) cannot be checked for "
    "sandbox escapes; renderers with other Jinja implementations may still accept it.",
    "Replace tokenizer.chat_template with the upstream model's template.",
    _EXEC,
)

GGUF_MALFORMED = Rule(
    "MODEL-GGUF-MALFORMED",
    Severity.HIGH,
    "GGUF header or tensor table is malformed",
    "Counts and lengths larger than the file, unknown types, misaligned, out-of-bounds or "
    "overlapping tensors are the shape of the published GGUF parser exploits (heap overflows in "
    "llama.cpp/ggml) and make loaders crash or read memory they should not.",
    "Do not load this file; re-convert the model from its original weights.",
    _ROBUST,
)

TF_DANGEROUS_OP = Rule(
    "MODEL-TF-DANGEROUS-OP",
    Severity.CRITICAL,
    "TensorFlow graph runs Python or writes files",
    "PyFunc/EagerPyFunc call Python functions of the loading process, WriteFile writes attacker-"
    "chosen bytes to an attacker-chosen path (a path to code execution), and shell-like custom "
    "ops run commands; they execute whenever the graph or signature runs.",
    "Do not load or serve this model; re-export it from reviewed code without these ops.",
    _EXEC,
)

TF_FILE_ACCESS = Rule(
    "MODEL-TF-FILE-ACCESS",
    Severity.HIGH,
    "TensorFlow graph reads, lists or writes files or contacts the network",
    "ReadFile, MatchingFiles, dataset readers/writers, summary writers, file-backed debug ops, "
    "memory-mapped constants and checkpoint ops with literal paths outside the model let a model "
    "exfiltrate local files into its outputs or write to the file system when served.",
    "Review why the graph needs file access; serve models whose signatures contain only "
    "computation.",
    _EXEC,
)

TF_CUSTOM_OP = Rule(
    "MODEL-TF-CUSTOM-OP",
    Severity.MEDIUM,
    "TensorFlow graph uses ops that are not part of TensorFlow",
    "Ops missing from TensorFlow's op registry come from a custom op library (native code loaded "
    "with tf.load_op_library) that is not part of the model and was not reviewed.",
    "Identify the op library (TF Text, SentencePiece, Addons...) and install it only from a "
    "trusted source; prefer models built from core ops.",
    _SUPPLY,
)

TF_ASSET_PATH = Rule(
    "MODEL-TF-ASSET-PATH",
    Severity.HIGH,
    "SavedModel asset path leaves the model's folder",
    "Asset file names are joined to the assets/ folder when the model loads; absolute paths or "
    "'..' components make the loader read files chosen by the model author.",
    "Re-export the SavedModel with assets stored in its assets/ folder.",
    _SUPPLY,
)

SAFETENSORS_HEADER = Rule(
    "MODEL-SAFETENSORS-HEADER",
    Severity.HIGH,
    "safetensors header is inconsistent",
    "Duplicate keys, non-standard JSON, unknown dtypes or malformed tensor entries are read "
    "differently by different parsers (last key wins in one, first in another, error in a "
    "third), so a checked file can load as something else.",
    "Re-create the file with safetensors.save_file from trusted tensors.",
    _SUPPLY,
)

SAFETENSORS_OFFSETS = Rule(
    "MODEL-SAFETENSORS-OFFSETS",
    Severity.HIGH,
    "safetensors tensor offsets are out of bounds, overlapping or mis-sized",
    "A data range outside the file, overlapping another tensor or not matching shape x dtype "
    "makes loaders read out of bounds, crash, or alias one tensor's bytes into another.",
    "Re-create the file with safetensors.save_file; do not load it with a custom reader.",
    _ROBUST,
)

SAFETENSORS_LAYOUT = Rule(
    "MODEL-SAFETENSORS-LAYOUT",
    Severity.MEDIUM,
    "safetensors file has unused bytes or invalid metadata",
    "Gaps between tensors, bytes after the last tensor and non-string __metadata__ are rejected "
    "by the reference loader and can hide extra content that other readers ignore.",
    "Re-create the file with safetensors.save_file.",
    _ROBUST,
)

KERAS_LAMBDA = Rule(
    "MODEL-KERAS-LAMBDA",
    Severity.CRITICAL,
    "Keras model carries Python bytecode (Lambda)",
    "A Lambda layer or a serialised `__lambda__` function stores marshalled Python bytecode that "
    "Keras rebuilds and runs: on load in Keras 2 and legacy .h5 loading (CVE-2024-3660), on load "
    "or first call in Keras 3 when safe_mode is off.",
    "Do not load this model. Re-create it without Lambda layers (a reviewed Layer subclass in your "
    "own code) or load only its weights from a safe format.",
    _EXEC,
)

KERAS_TFOPLAMBDA = Rule(
    "MODEL-KERAS-TFOPLAMBDA",
    Severity.HIGH,
    "Keras model calls TensorFlow functions by name (TFOpLambda)",
    "TFOpLambda/SlicingOpLambda layers call the TensorFlow API named in the config; names under "
    "tf.io, tf.py_function or tf.numpy_function read or write files or run Python.",
    "Review the named functions; prefer models whose layers are built-in Keras layers.",
    _EXEC,
)

KERAS_DANGEROUS_CALLABLE = Rule(
    "MODEL-KERAS-DANGEROUS-CALLABLE",
    Severity.CRITICAL,
    "Keras config references a dangerous module or function",
    "Keras imports the module and resolves the name given by `module`/`class_name`/`config`; "
    "modules such as os, subprocess or builtins, and Keras functions that download files or load "
    "other models, run attacker-chosen code even in safe mode (CVE-2025-1550 and later bypasses).",
    "Do not load this model; rebuild it from a trusted source.",
    _EXEC,
)

KERAS_SAFE_MODE_BYPASS = Rule(
    "MODEL-KERAS-SAFE-MODE-BYPASS",
    Severity.CRITICAL,
    "Keras config tries to switch safe mode off",
    "A config that calls enable_unsafe_deserialization or passes safe_mode=False to a nested "
    "loader disables the protection that stops Lambda bytecode and arbitrary imports.",
    "Do not load this model; it was crafted to defeat Keras' safe mode.",
    _EXEC,
)

KERAS_CUSTOM_OBJECT = Rule(
    "MODEL-KERAS-CUSTOM-OBJECT",
    Severity.HIGH,
    "Keras config needs code from outside Keras",
    "Objects whose module or registered package is not Keras are rebuilt by importing that "
    "module; what runs depends on code that is not in the model file and was not reviewed here.",
    "Review the named modules and load the model only where that exact code is installed from a "
    "trusted source.",
    _SUPPLY,
)

KERAS_EXTERNAL_RESOURCE = Rule(
    "MODEL-KERAS-EXTERNAL-RESOURCE",
    Severity.HIGH,
    "Keras layer reads a file or URL named in the config",
    "Lookup-layer vocabularies given as paths, TFSMLayer SavedModel paths and download origins "
    "make loading the model read local files (disclosure) or fetch remote content.",
    "Ship vocabularies inside the model; remove path and URL arguments from layer configs.",
    _SUPPLY,
)

HDF5_EXTERNAL = Rule(
    "MODEL-HDF5-EXTERNAL-REFERENCE",
    Severity.HIGH,
    "HDF5 file points at other files",
    "External links, external raw-data files and virtual datasets make HDF5 readers open files "
    "named by the model author (local files disclosed into tensors, or content swapped after "
    "the file was checked).",
    "Re-save the file with all data stored inside it (h5py: copy the datasets, drop the links).",
    ("NIST-AI-RMF:GOVERN-6.1", "ISO42001:A.10.3", "OWASP-ML:ML06"),
)

ONNX_EXTERNAL_DATA = Rule(
    "MODEL-ONNX-EXTERNAL-DATA-PATH",
    Severity.HIGH,
    "ONNX external data points outside the model's folder",
    "Tensors stored as external data are read from the path in the model; absolute paths, '..' "
    "components or links out of the folder make loading read arbitrary files into the model "
    "(CVE-2022-25882, CVE-2024-27318).",
    "Re-save the model with external data files next to it (onnx.save_model with a relative "
    "location), or embed the tensors.",
    ("NIST-AI-RMF:GOVERN-6.1", "ISO42001:A.10.3", "OWASP-ML:ML06"),
)

ONNX_CUSTOM_OP = Rule(
    "MODEL-ONNX-CUSTOM-OP",
    Severity.MEDIUM,
    "ONNX model uses operators from a custom domain",
    "Operators outside the standard ONNX domains run native code from a custom-op library that is "
    "not part of the model and was not reviewed; Python-callback ops run Python.",
    "Review the custom operator library and load it only from a trusted source, or re-export the "
    "model with standard operators.",
    ("NIST-AI-RMF:GOVERN-6.1", "ISO42001:A.10.3", "OWASP-ML:ML06"),
)

ALL: dict[str, Rule] = {
    r.rule_id: r
    for r in [
        PICKLE_EXEC, PICKLE_UNKNOWN, PICKLE_COMPUTED_CALL, PICKLE_STATE_HIJACK, PICKLE_EXT,
        PICKLE_MALFORMED, PICKLE_DIFFERENTIAL, PICKLE_LIMIT, PICKLE_MULTIPLE, PICKLE_NESTED, FORMAT_UNKNOWN, SYMLINK,
        SCAN_INCOMPLETE, ARCHIVE_TRAVERSAL, ARCHIVE_BOMB, ARCHIVE_DEPTH, ARCHIVE_INCONSISTENT,
        ARCHIVE_ENCRYPTED, TORCHSCRIPT, TORCHSCRIPT_DANGEROUS, NUMPY_OBJECT, NUMPY_MALFORMED,
        SKOPS_DANGEROUS, SKOPS_UNKNOWN, SKOPS_MALFORMED,
        GGUF_TEMPLATE_INJECTION, GGUF_TEMPLATE_INVALID, GGUF_MALFORMED,
        TF_DANGEROUS_OP, TF_FILE_ACCESS, TF_CUSTOM_OP, TF_ASSET_PATH,
        SAFETENSORS_HEADER, SAFETENSORS_OFFSETS, SAFETENSORS_LAYOUT,
        KERAS_LAMBDA, KERAS_TFOPLAMBDA, KERAS_DANGEROUS_CALLABLE, KERAS_SAFE_MODE_BYPASS,
        KERAS_CUSTOM_OBJECT, KERAS_EXTERNAL_RESOURCE, HDF5_EXTERNAL, ONNX_EXTERNAL_DATA,
        ONNX_CUSTOM_OP,
    ]
}  # fmt: skip
