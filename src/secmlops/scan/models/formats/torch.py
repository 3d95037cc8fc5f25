"""PyTorch zip checkpoints and TorchScript archives: what PyTorch's reader would load.

The generic zip scanner analyses every pickle member; this scanner adds what is specific to
PyTorch: which record the reader really loads, and the code TorchScript compiles.
"""

from __future__ import annotations

import re
import zipfile

from secmlops.scan.models import rules
from secmlops.scan.models.engine import Blob, ScanContext

MAX_CODE_BYTES = 8 * 2**20
ZIP_INFOS = "zip-infolist"  # Blob.memo key: the central directory as zipfile parsed it
# TorchScript code that reaches files, processes, native libraries or Python itself.
DANGEROUS_CODE = re.compile(
    r"\b(?:torch\.ops\.load_library|torch\.classes\.load_library|torch\.from_file|"
    r"ops\.aten\.from_file|torch\.save|ops\.aten\.save|torch\.load|torch\.jit\.load|"
    r"__import__|builtins|subprocess|os\.system|os\.popen|eval|exec|open)\s*\("
)


class TorchZipScanner:
    """PyTorch's own zip layout: `<prefix>/data.pkl`, `<prefix>/data/N`, TorchScript `code/`."""

    name = "pytorch-zip"

    def sniff(self, blob: Blob) -> bool:
        return blob.head.startswith(b"PK\x03\x04") and (
            b"/data.pkl" in blob.head or b"/data.pkl" in blob.tail
        )

    def scan(self, blob: Blob, ctx: ScanContext) -> None:
        try:
            self._scan(blob, ctx)
        except zipfile.BadZipFile:
            return  # the zip scanner reports an unreadable archive (fail closed) once

    def _scan(self, blob: Blob, ctx: ScanContext) -> None:
        with blob.open() as f, zipfile.ZipFile(f) as zf:
            infos = zf.infolist()
            blob.memo[ZIP_INFOS] = infos  # the generic zip scanner reuses the parsed directory
            if not infos:
                return
            # PyTorchStreamReader takes the archive name from the first record.
            prefix = infos[0].filename.split("/", 1)[0]
            names = [i.filename for i in infos]
            if f"{prefix}/data.pkl" not in names and f"{prefix}/constants.pkl" not in names:
                other = sorted(n for n in names if n.endswith("/data.pkl"))
                ctx.emit(
                    rules.ARCHIVE_INCONSISTENT.finding(
                        blob.location,
                        f"PyTorch reads records under {prefix!r}/ (the first entry) but "
                        f"data.pkl is elsewhere: {', '.join(other[:3])}",
                        {"reader_prefix": prefix, "data_pkl": other[:10]},
                    )
                )
            code = [i for i in infos if i.filename.startswith(f"{prefix}/code/") and not i.is_dir()]
            if not code:
                return
            ctx.emit(
                rules.TORCHSCRIPT.finding(
                    blob.location,
                    f"TorchScript archive with {len(code)} code files; torch.jit.load compiles them",
                    {"code_files": [i.filename for i in code[:20]]},
                )
            )
            for info in code:
                if not info.filename.endswith(".py") or info.file_size > MAX_CODE_BYTES:
                    continue
                text = zf.read(info).decode("utf-8", "replace")
                for lineno, line in enumerate(text.splitlines(), start=1):
                    hit = DANGEROUS_CODE.search(line)
                    if hit:
                        loc = blob.location.child(info.filename)
                        ctx.emit(
                            rules.TORCHSCRIPT_DANGEROUS.finding(
                                type(loc)(path=loc.path, member=loc.member, line=lineno),
                                f"TorchScript code calls {hit.group(0).rstrip('( ')}",
                                {"code": line.strip()[:200]},
                            )
                        )
