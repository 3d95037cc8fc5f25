"""Requirements files: includes, constraints, hashes, markers, index options, broken input."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from secmlops.scan.deps.requirements import parse_requirements

HASH = "sha256:" + "a" * 64


def _write(path: Path, text: str | bytes) -> Path:
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def test_pins_specs_hashes_and_lines(tmp_path: Path) -> None:
    req = _write(
        tmp_path / "requirements.txt",
        "# header\n"
        "requests==2.28.0 \\\n"
        f"    --hash={HASH}\n"
        "numpy>=1.0,<2  # range\n"
        "Flask[async]==2.0.1\n"
        "odd===1.0.0-custom+weird\n"
        "wild==1.*\n",
    )
    m = parse_requirements(req)
    deps = {d.key: d for d in m.dependencies}
    assert deps["requests"].version == "2.28.0" and deps["requests"].line == 2
    assert deps["requests"].hashes == (HASH,)
    assert deps["numpy"].version is None and deps["numpy"].line == 4
    assert deps["flask"].version == "2.0.1"
    assert deps["odd"].version == "1.0.0-custom+weird"
    assert deps["wild"].version is None
    assert m.problems == [] and m.failures == []


def test_markers_are_evaluated_for_this_interpreter(tmp_path: Path) -> None:
    req = _write(
        tmp_path / "r.txt",
        'never==1.0 ; python_version < "3"\nalways==1.0 ; python_version >= "3"\n',
    )
    assert [d.name for d in parse_requirements(req).dependencies] == ["always"]


def test_includes_constraints_and_cycles(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    _write(tmp_path / "requirements.txt", "-r sub/base.txt\n-c constraints.txt\nnumpy\n")
    _write(tmp_path / "sub" / "base.txt", "--requirement=../requirements.txt\nsix==1.16.0\n")
    _write(tmp_path / "constraints.txt", "numpy==1.26.4\nunused==9\n")
    m = parse_requirements(tmp_path / "requirements.txt")
    deps = {d.key: d for d in m.dependencies}
    assert set(deps) == {"six", "numpy"}  # constraints add no packages; the cycle ends
    assert deps["numpy"].version == "1.26.4"
    assert deps["six"].path.endswith("base.txt") and deps["six"].line == 2


def test_missing_and_remote_includes_fail_closed(tmp_path: Path) -> None:
    req = _write(tmp_path / "r.txt", "-r nope.txt\n-r https://example.com/r.txt\n")
    m = parse_requirements(req)
    messages = [f.message for f in m.failures]
    assert any("does not exist" in x for x in messages)
    assert any("remote include" in x for x in messages)


def test_index_options_every_spelling(tmp_path: Path) -> None:
    req = _write(
        tmp_path / "r.txt",
        "-i https://pypi.org/simple\n"
        "--extra-index-url=http://internal/simple\n"
        "--trusted-host internal\n"
        "-f https://download.pytorch.org/whl/cpu\n"
        "-ihttps://mirror/simple\n",
    )
    kinds = [(s.kind, s.value, s.line) for s in parse_requirements(req).indexes]
    assert kinds == [
        ("index-url", "https://pypi.org/simple", 1),
        ("extra-index-url", "http://internal/simple", 2),
        ("trusted-host", "internal", 3),
        ("find-links", "https://download.pytorch.org/whl/cpu", 4),
        ("index-url", "https://mirror/simple", 5),
    ]


def test_urls_and_editables_are_url_dependencies(tmp_path: Path) -> None:
    req = _write(
        tmp_path / "r.txt",
        "-e git+https://github.com/org/proj.git#egg=proj\n"
        "pkg @ https://example.com/pkg-1.0.tar.gz\n"
        "./local/dir\n",
    )
    deps = parse_requirements(req).dependencies
    assert [d.source for d in deps] == ["url", "url", "url"]
    assert deps[0].name == "proj" and all(d.version is None for d in deps)


def test_malformed_lines_are_problems_with_line_numbers(tmp_path: Path) -> None:
    req = _write(
        tmp_path / "r.txt",
        "good==1.0\nthis is not valid!!\n--no-such-option x\nbad ; python_version >>> '3'\n"
        "--hash=sha256:abc\n-r\n",
    )
    m = parse_requirements(req)
    assert [p.line for p in m.problems] == [2, 3, 4, 5, 6]
    assert [d.name for d in m.dependencies] == ["good"]


def test_binary_wrong_encoding_and_huge_files_fail_closed(tmp_path: Path) -> None:
    for name, data in [
        ("bin.txt", b"requests==1.0\x00\x01\x02"),
        ("latin.txt", "café==1.0\n".encode("latin-1")),
    ]:
        m = parse_requirements(_write(tmp_path / name, data))
        assert m.failures and not m.dependencies
    huge = tmp_path / "huge.txt"
    with huge.open("wb") as f:
        f.truncate(21 * 2**20)
    assert "too large" in parse_requirements(huge).failures[0].message


def test_empty_file_declares_nothing(tmp_path: Path) -> None:
    m = parse_requirements(_write(tmp_path / "r.txt", ""))
    assert m.dependencies == [] and m.problems == [] and m.failures == []


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_characters="\x00"), max_size=300))
def test_any_text_parses_without_crashing(text: str) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "requirements.txt"
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        try:
            m = parse_requirements(path)
        except UnicodeEncodeError:
            return
        for dep in m.dependencies:
            assert dep.line is not None and dep.line >= 1
