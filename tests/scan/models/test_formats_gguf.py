"""GGUF: chat-template sandbox escapes, hostile headers and tensor tables; real models pass."""

from __future__ import annotations

import contextlib
import struct
import tempfile
from pathlib import Path
from typing import Any

import gguf
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from secmlops.errors import ScanError
from secmlops.findings import Location, Report, Severity
from secmlops.scan.models import ModelScanSettings, scan_paths
from secmlops.scan.models.engine import Blob, ScanContext
from secmlops.scan.models.formats.chat_template import analyze_chat_template
from secmlops.scan.models.formats.gguf import GGML_TYPES, GgufScanner

INJECTION = "MODEL-GGUF-TEMPLATE-INJECTION"
INVALID = "MODEL-GGUF-TEMPLATE-INVALID"
MALFORMED = "MODEL-GGUF-MALFORMED"

# -- real chat templates (as shipped in the models' tokenizer_config.json) ----------------------

CHATML = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content']"
    " + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n'"
    " }}{% endif %}"
)
LLAMA3 = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
    "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim"
    " + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}"
    "{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant"
    "<|end_header_id|>\\n\\n' }}{% endif %}"
)
MISTRAL = (
    "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 "
    "% 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant"
    "/...') }}{% endif %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' "
    "[/INST]' }}{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}{% else "
    "%}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}"
)
GEMMA = (
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not "
    "supported') }}{% endif %}{% for message in messages %}{% if (message['role'] == 'user') != "
    "(loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/"
    "user/assistant/...') }}{% endif %}{% if (message['role'] == 'assistant') %}{% set role = "
    "'model' %}{% else %}{% set role = message['role'] %}{% endif %}{{ '<start_of_turn>' + role + "
    "'\\n' + message['content'] | trim + '<end_of_turn>\\n' }}{% endfor %}{% if add_generation_prompt"
    " %}{{'<start_of_turn>model\\n'}}{% endif %}"
)
QWEN25 = """{%- if tools %}
    {{- '<|im_start|>system\\n' }}
    {%- if messages[0]['role'] == 'system' %}
        {{- messages[0]['content'] }}
    {%- else %}
        {{- 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.' }}
    {%- endif %}
    {{- "\\n\\n# Tools\\n\\nYou are provided with function signatures within <tools></tools>:\\n<tools>" }}
    {%- for tool in tools %}
        {{- "\\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\\n</tools>\\n\\n<tool_call>\\n{\\"name\\": <function-name>, \\"arguments\\": <args>}\\n</tool_call><|im_end|>\\n" }}
{%- else %}
    {%- if messages[0]['role'] == 'system' %}
        {{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}
    {%- else %}
        {{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud.<|im_end|>\\n' }}
    {%- endif %}
{%- endif %}
{%- for message in messages %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) or (message.role == "assistant" and not message.tool_calls) %}
        {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}
    {%- elif message.role == "assistant" %}
        {{- '<|im_start|>' + message.role }}
        {%- if message.content %}
            {{- '\\n' + message.content }}
        {%- endif %}
        {%- for tool_call in message.tool_calls %}
            {%- if tool_call.function is defined %}
                {%- set tool_call = tool_call.function %}
            {%- endif %}
            {{- '\\n<tool_call>\\n{"name": "' }}
            {{- tool_call.name }}
            {{- '", "arguments": ' }}
            {{- tool_call.arguments | tojson }}
            {{- '}\\n</tool_call>' }}
        {%- endfor %}
        {{- '<|im_end|>\\n' }}
    {%- elif message.role == "tool" %}
        {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != "tool") %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\\n<tool_response>\\n' }}
        {{- message.content }}
        {{- '\\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
            {{- '<|im_end|>\\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\\n' }}
{%- endif %}
"""
QWEN3_THINKING = """{%- set ns = namespace(multi_step_tool=true, last_query_index=messages|length - 1) %}
{%- for message in messages[::-1] %}
    {%- set index = (messages|length - 1) - loop.index0 %}
    {%- if ns.multi_step_tool and message.role == "user" and message.content is string and not(message.content.startswith('<tool_response>') and message.content.endswith('</tool_response>')) %}
        {%- set ns.multi_step_tool = false %}
        {%- set ns.last_query_index = index %}
    {%- endif %}
{%- endfor %}
{%- for message in messages %}
    {%- if message.content is string %}{%- set content = message.content %}{%- else %}{%- set content = '' %}{%- endif %}
    {%- if message.role == "assistant" %}
        {%- set reasoning_content = '' %}
        {%- if '</think>' in content %}
            {%- set reasoning_content = content.split('</think>')[0].rstrip('\\n').split('<think>')[-1].lstrip('\\n') %}
            {%- set content = content.split('</think>')[-1].lstrip('\\n') %}
        {%- endif %}
        {%- if loop.index0 > ns.last_query_index %}{{- '<|im_start|>' + message.role + '\\n<think>\\n' + reasoning_content.strip('\\n') + '\\n</think>\\n\\n' + content.lstrip('\\n') }}
        {%- else %}{{- '<|im_start|>' + message.role + '\\n' + content }}{%- endif %}
        {{- '<|im_end|>\\n' }}
    {%- else %}
        {{- '<|im_start|>' + message.role + '\\n' + content + '<|im_end|>\\n' }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\\n' }}
    {%- if enable_thinking is defined and enable_thinking is false %}{{- '<think>\\n\\n</think>\\n\\n' }}{%- endif %}
{%- endif %}"""
WITH_GENERATION_TAG = (
    "{% for message in messages %}{% if message['role'] == 'assistant' %}{% generation %}"
    "{{ message['content'] }}{% endgeneration %}{% else %}{{ message['content'] }}{% endif %}"
    "{% for x in range(3) %}{% if loop.last %}{% break %}{% endif %}{% endfor %}{% endfor %}"
)
BENIGN = {
    "chatml": CHATML,
    "llama3": LLAMA3,
    "mistral": MISTRAL,
    "gemma": GEMMA,
    "qwen2.5": QWEN25,
    "qwen3": QWEN3_THINKING,
    "generation-tag": WITH_GENERATION_TAG,
}

ATTACKS = {
    # The published llama-cpp-python proof of concept (CVE-2024-34359).
    "cve-2024-34359": (
        '{% for x in ().__class__.__base__.__subclasses__() %}{% if "warning" in x.__name__ %}'
        "{{x()._module.__builtins__['__import__']('os').popen(\"touch /tmp/retr0reg\")}}{%endif%}"
        "{% endfor %}"
    ),
    "self-globals": "{{ self.__init__.__globals__.__builtins__.__import__('os').popen('id').read() }}",
    "cycler": "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "joiner": "{{ joiner.__init__.__globals__ }}",
    "lipsum": "{{ lipsum['__glob' ~ 'als__'] }}",
    "namespace-attr": "{{ namespace.__init__ }}",
    "request": "{{ request.application }}",
    "config": "{{ config.items() }}",
    "attr-filter": "{{ ''|attr('__class__') }}",
    "attr-concat": "{{ messages|attr('__cla' ~ 'ss__') }}",
    "attr-join-variable": "{% set a = ['_','_','cla','ss','_','_']|join %}{{ messages|attr(a) }}",
    "item-join-variable": "{% set n = ['_','_','cla','ss','_','_']|join %}{{ messages[n] }}",
    "item-multiply": "{{ messages[('_' * 2) ~ 'class' ~ ('_' * 2)] }}",
    "escaped-literal": "{{ messages['\\x5f\\x5fclass\\x5f\\x5f'] }}",
    "format-string": "{{ '{0.__class__}'.format(messages) }}",
    "mro-item": "{{ messages.__class__['__mro__'] }}",
    "popen-attribute": "{{ x.popen('id') }}",
    "os-name": "{{ os.system('id') }}",
    "string-os": '{{ x["os"] }}',
}


def gguf_file(path: Path, kv: dict[str, Any], big_endian: bool = False) -> Path:
    endian = gguf.GGUFEndian.BIG if big_endian else gguf.GGUFEndian.LITTLE
    w = gguf.GGUFWriter(str(path), "llama", endianess=endian)
    for key, value in kv.items():
        if key == "general.alignment":
            w.add_custom_alignment(value)
        elif isinstance(value, str):
            w.add_string(key, value)
        elif isinstance(value, int):
            w.add_uint32(key, value)
        elif isinstance(value, list):
            w.add_array(key, value)
    w.add_tensor("token_embd.weight", np.ones((8, 32), dtype=np.float32))
    w.add_tensor("output_norm.weight", np.ones(32, dtype=np.float32))
    w.add_tensor(
        "blk.0.attn_q.weight",
        np.zeros((4, 34), np.uint8),
        raw_dtype=gguf.GGMLQuantizationType.Q8_0,
    )
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def findings(path: Path) -> dict[str, Severity]:
    report = scan_paths([path])
    assert not report.errors, report.errors
    return {f.rule_id: f.severity for f in report.findings}


# -- benign ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(BENIGN))
def test_real_chat_templates_pass(tmp_path: Path, name: str) -> None:
    path = gguf_file(tmp_path / f"{name}.gguf", {"tokenizer.chat_template": BENIGN[name]})
    assert findings(path) == {}


def test_named_templates_and_token_lists_pass(tmp_path: Path) -> None:
    kv = {
        "tokenizer.chat_templates": ["tool_use"],
        "tokenizer.chat_template": CHATML,
        "tokenizer.chat_template.tool_use": QWEN25,
        "tokenizer.ggml.tokens": [f"tok{i}" for i in range(2000)],
        "tokenizer.ggml.scores": [0.5] * 2000,
        "general.alignment": 64,
    }
    assert findings(gguf_file(tmp_path / "m.gguf", kv)) == {}


def test_big_endian_file_passes(tmp_path: Path) -> None:
    path = gguf_file(tmp_path / "be.gguf", {"tokenizer.chat_template": LLAMA3}, big_endian=True)
    assert path.read_bytes()[4:8] == b"\x00\x00\x00\x03"
    assert findings(path) == {}


def test_ggml_type_table_matches_gguf_py() -> None:
    for type_id, (name, block, size) in GGML_TYPES.items():
        quant = gguf.GGMLQuantizationType(type_id)
        assert quant.name == name
        assert gguf.GGML_QUANT_SIZES[quant] == (block, size)


# -- chat template attacks -------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_template_sandbox_escapes_are_critical(tmp_path: Path, name: str) -> None:
    path = gguf_file(tmp_path / "evil.gguf", {"tokenizer.chat_template": ATTACKS[name]})
    report = scan_paths([path])
    hit = [f for f in report.findings if f.rule_id == INJECTION]
    assert hit and hit[0].severity is Severity.CRITICAL, name
    assert hit[0].evidence["key"] == "tokenizer.chat_template"


def test_escape_in_a_named_template_is_found(tmp_path: Path) -> None:
    kv = {"tokenizer.chat_template": CHATML, "tokenizer.chat_template.rag": ATTACKS["cycler"]}
    report = scan_paths([gguf_file(tmp_path / "m.gguf", kv)])
    assert [f.evidence["key"] for f in report.findings] == ["tokenizer.chat_template.rag"]


def test_include_of_another_template_is_high() -> None:
    result = analyze_chat_template("{% include 'other.j2' %}")
    assert [severity for severity, _ in result.reasons] == [Severity.HIGH]


def test_unparseable_template_is_high(tmp_path: Path) -> None:
    path = gguf_file(tmp_path / "m.gguf", {"tokenizer.chat_template": "{% for x in %}{{ x }"})
    assert findings(path) == {INVALID: Severity.HIGH}


def test_unparseable_template_still_shows_escape_tokens(tmp_path: Path) -> None:
    text = "{% if %}{{ ''.__class__.__mro__ }}"
    path = gguf_file(tmp_path / "m.gguf", {"tokenizer.chat_template": text})
    assert findings(path) == {INVALID: Severity.HIGH, INJECTION: Severity.CRITICAL}


def test_template_that_is_not_a_string_is_high(tmp_path: Path) -> None:
    path = gguf_file(tmp_path / "m.gguf", {"tokenizer.chat_template": 7})
    assert findings(path) == {INVALID: Severity.HIGH}


def test_deeply_nested_template_does_not_crash() -> None:
    result = analyze_chat_template("{{ " + "(" * 5000 + "1" + ")" * 5000 + " }}")
    assert result.error is not None


# -- hand-built headers ----------------------------------------------------------------------


def _s(text: str | bytes) -> bytes:
    raw = text.encode() if isinstance(text, str) else text
    return struct.pack("<Q", len(raw)) + raw


def _kv_u32(key: str, value: int) -> bytes:
    return _s(key) + struct.pack("<II", 4, value)


def _kv_str(key: str, value: str) -> bytes:
    return _s(key) + struct.pack("<I", 8) + _s(value)


def _tensor(name: str, dims: list[int], ggml_type: int, offset: int) -> bytes:
    return (
        _s(name)
        + struct.pack("<I", len(dims))
        + b"".join(struct.pack("<Q", d) for d in dims)
        + struct.pack("<IQ", ggml_type, offset)
    )


def raw_gguf(
    kvs: list[bytes],
    tensors: list[bytes],
    data: bytes = b"",
    counts: tuple[int, int] | None = None,
    alignment: int = 32,
) -> bytes:
    n_tensors, n_kv = counts if counts is not None else (len(tensors), len(kvs))
    body = b"GGUF" + struct.pack("<IQQ", 3, n_tensors, n_kv) + b"".join(kvs) + b"".join(tensors)
    body += b"\x00" * (-len(body) % alignment)
    return body + data


def write(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "model.gguf"
    path.write_bytes(data)
    return path


def test_hand_built_valid_file_is_clean(tmp_path: Path) -> None:
    data = raw_gguf(
        [_kv_str("general.architecture", "llama")],
        [_tensor("a", [8], 0, 0), _tensor("b", [32], 8, 32)],
        bytes(32 + 34),
    )
    assert findings(write(tmp_path, data)) == {}


@pytest.mark.parametrize(
    ("case", "data"),
    [
        ("kv count", raw_gguf([], [], counts=(0, 2**40))),
        ("tensor count", raw_gguf([], [], counts=(2**50, 0))),
        ("key length", b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", 2**62) + b"k"),
        (
            "string length",
            raw_gguf([_s("general.name") + struct.pack("<IQ", 8, 2**60) + b"x" * 8], []),
        ),
        (
            "array count",
            raw_gguf([_s("tokenizer.ggml.scores") + struct.pack("<IIQ", 9, 6, 2**60)], []),
        ),
        (
            "string array count",
            raw_gguf([_s("tokenizer.ggml.tokens") + struct.pack("<IIQ", 9, 8, 2**59)], []),
        ),
        (
            "nested arrays",
            raw_gguf(
                [_s("x") + struct.pack("<I", 9) + struct.pack("<IQ", 9, 1) * 12 + bytes(64)], []
            ),
        ),
        ("value type", raw_gguf([_s("x") + struct.pack("<II", 99, 0)], [])),
        ("dimensions", raw_gguf([], [_tensor("t", [1, 1, 1, 1, 1], 0, 0)], bytes(8))),
        ("key not utf-8", raw_gguf([_s(b"\xff\xfe") + struct.pack("<II", 4, 1)], [])),
    ],
)
def test_hostile_header_is_malformed_and_fails_closed(
    tmp_path: Path, case: str, data: bytes
) -> None:
    report = scan_paths([write(tmp_path, data)])
    assert MALFORMED in {f.rule_id for f in report.findings}, case
    assert report.errors and report.exit_code(Severity.HIGH) == 2, case


@pytest.mark.parametrize(
    ("case", "tensors", "data"),
    [
        ("out of bounds", [_tensor("t", [1024], 0, 0)], bytes(64)),
        ("overlap", [_tensor("a", [16], 0, 0), _tensor("b", [16], 0, 32)], bytes(128)),
        ("misaligned", [_tensor("t", [4], 0, 4)], bytes(64)),
        ("unknown type", [_tensor("t", [4], 200, 0)], bytes(64)),
        ("int64 overflow", [_tensor("t", [2**40, 2**40], 0, 0)], bytes(64)),
        ("block size", [_tensor("t", [33], 8, 0)], bytes(64)),
        ("duplicate name", [_tensor("t", [4], 0, 0), _tensor("t", [4], 0, 32)], bytes(64)),
        ("long name", [_tensor("x" * 80, [4], 0, 0)], bytes(64)),
    ],
)
def test_bad_tensor_tables_are_high(
    tmp_path: Path, case: str, tensors: list[bytes], data: bytes
) -> None:
    result = findings(write(tmp_path, raw_gguf([], tensors, data)))
    assert result == {MALFORMED: Severity.HIGH}, case


def test_bad_alignment_is_reported(tmp_path: Path) -> None:
    data = raw_gguf([_kv_u32("general.alignment", 3)], [_tensor("t", [4], 0, 0)], bytes(64))
    assert findings(write(tmp_path, data)) == {MALFORMED: Severity.HIGH}


def test_duplicate_keys_are_medium_and_both_templates_checked(tmp_path: Path) -> None:
    kvs = [
        _kv_str("tokenizer.chat_template", CHATML),
        _kv_str("tokenizer.chat_template", ATTACKS["cycler"]),
    ]
    report = scan_paths([write(tmp_path, raw_gguf(kvs, []))])
    got = {f.rule_id: f.severity for f in report.findings}
    assert got == {MALFORMED: Severity.MEDIUM, INJECTION: Severity.CRITICAL}


def test_oversized_template_fails_closed(tmp_path: Path) -> None:
    kvs = [_kv_str("tokenizer.chat_template", "{{ x }}" * 200_000)]
    report = scan_paths([write(tmp_path, raw_gguf(kvs, []))])
    assert report.errors


def test_truncated_model_is_never_clean(tmp_path: Path) -> None:
    full = gguf_file(tmp_path / "full.gguf", {"tokenizer.chat_template": CHATML}).read_bytes()
    for cut in (6, 20, 60, 200, len(full) - 100, len(full) - 40):
        report = scan_paths([write(tmp_path, full[:cut])])
        assert report.errors or any(f.severity >= Severity.MEDIUM for f in report.findings), cut


def _scan_directly(data: bytes) -> None:
    report = Report(kind="models")
    with tempfile.TemporaryDirectory() as tmp:
        ctx = ScanContext(report, ModelScanSettings(), (GgufScanner(),), Path(tmp))
        blob = Blob.from_bytes(data, Location(path="fuzz.gguf"), 0, "fuzz.gguf")
        scanner = GgufScanner()
        if scanner.sniff(blob):
            with contextlib.suppress(ScanError):
                scanner.scan(blob, ctx)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.integers(0, 3), st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1), st.binary(max_size=300)
)
def test_random_headers_only_ever_raise_scan_error(
    version: int, n_tensors: int, n_kv: int, body: bytes
) -> None:
    _scan_directly(b"GGUF" + struct.pack("<IQQ", version, n_tensors % 64, n_kv % 64) + body)
    _scan_directly(b"GGUF" + struct.pack("<IQQ", 3, n_tensors, n_kv) + body)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=200))
def test_random_templates_never_crash_the_analysis(text: str) -> None:
    analyze_chat_template(text)
