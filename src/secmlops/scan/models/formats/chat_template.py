"""Chat templates (Jinja2 source that llama-cpp-python, transformers and others render).

An unsandboxed or escapable render runs code (CVE-2024-34359). A template is parsed with
Jinja2's parser, never rendered, and its syntax tree is searched for the constructs that
sandbox escapes are made of. Used for GGUF metadata; kept apart so that scanning other formats
never loads it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from secmlops.findings import Severity

MAX_TEMPLATE = 1 << 20

# Attribute names that lead out of the template (besides every name starting with "_").
DANGEROUS_ATTRS = frozenset(
    {
        "popen", "system", "os", "subprocess", "eval", "exec", "import_module", "builtins",
        "globals", "getattr", "setattr", "spawn", "spawnv", "execv", "check_output", "mro",
        "func_globals", "f_globals", "f_locals", "f_back", "gi_frame", "gi_code", "cr_frame",
        "tb_frame", "co_code", "func_code", "load_module", "modules",
    }
)  # fmt: skip
# String constants that are only useful to reach code.
DANGEROUS_CONSTANTS = frozenset(
    {
        "os", "popen", "subprocess", "eval", "exec", "__import__", "builtins", "import_module",
        "sys", "check_output", "getattr", "globals",
    }
)  # fmt: skip
# Globals that give access to Python objects (Jinja's own and Flask's); any reference escapes.
ESCAPE_GLOBALS = frozenset(
    {"self", "config", "request", "url_for", "get_flashed_messages", "lipsum", "cycler",
     "joiner", "os", "sys", "subprocess", "builtins", "importlib"}
)  # fmt: skip
# Jinja globals that real templates call (`namespace(...)`); only a direct call is allowed.
CALL_ONLY_GLOBALS = frozenset({"namespace"})
# Filters that build strings from pieces.
STRING_FILTERS = frozenset(
    {"join", "format", "replace", "reverse", "string", "lower", "upper", "trim", "title",
     "capitalize", "urlencode", "center", "indent", "striptags", "first", "last", "list", "safe"}
)  # fmt: skip
SOURCE_TOKENS = re.compile(
    r"__(?:class|mro|subclasses|globals|builtins|import|init|base|bases|dict|getattribute|"
    r"reduce|reduce_ex|code|func|self|loader|spec)__|\bpopen\b|\bsubprocess\b"
)
_DUNDER = re.compile(r"__\w+__")
_FRAGMENT = re.compile(r"^[\w.]*__[\w.]*$")


@dataclass(slots=True)
class TemplateAnalysis:
    """What a chat template does that a safe one never does. `error`: it does not parse."""

    reasons: list[tuple[Severity, str]] = field(default_factory=list)
    error: str | None = None

    def add(self, severity: Severity, reason: str) -> None:
        if all(reason != r for _, r in self.reasons):
            self.reasons.append((severity, reason))


def analyze_chat_template(source: str) -> TemplateAnalysis:
    """Parse (never render) a Jinja2 chat template and list the sandbox-escape constructs in it."""
    result = TemplateAnalysis()
    if len(source) > MAX_TEMPLATE:
        result.error = f"template is {len(source)} characters (limit {MAX_TEMPLATE})"
        return result
    try:
        tree = _environment().parse(source)
    except RecursionError:
        result.error = "template is nested too deeply"
    except Exception as exc:  # jinja2 raises many exception types for hostile input
        result.error = f"{type(exc).__name__}: {exc}"[:300]
    else:
        _TemplateWalk(result).run(tree)
    # Also on the raw text: catches what a parse failure hid, and spells out the tokens.
    for match in SOURCE_TOKENS.finditer(source):
        result.add(Severity.CRITICAL, f"template source contains {match.group(0)!r}")
    return result


def _environment() -> Any:
    import jinja2
    import jinja2.ext
    from jinja2 import nodes

    class GenerationTag(jinja2.ext.Extension):
        """transformers' `{% generation %}` block (assistant masks): analysed like any body."""

        tags = {"generation"}  # noqa: RUF012 - jinja2's API

        def parse(self, parser: Any) -> Any:
            lineno = next(parser.stream).lineno
            body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
            return nodes.Scope(body, lineno=lineno)

    return jinja2.Environment(
        extensions=["jinja2.ext.loopcontrols", "jinja2.ext.do", GenerationTag],
        autoescape=False,  # noqa: S701 - parsed only, never rendered
    )


class _TemplateWalk:
    def __init__(self, result: TemplateAnalysis) -> None:
        self.result = result
        self.computed: set[str] = set()  # variables holding strings built at render time

    def run(self, tree: Any) -> None:
        from jinja2 import nodes

        for node, _parent in _iter_nodes(tree):
            if (
                isinstance(node, nodes.Assign)
                and isinstance(node.target, nodes.Name)
                and _string_built(node.node)
            ):
                self.computed.add(node.target.name)
        for node, parent in _iter_nodes(tree):
            self._node(node, parent)

    def _node(self, node: Any, parent: Any) -> None:
        from jinja2 import nodes

        add = self.result.add
        if isinstance(node, nodes.Getattr):
            self._attribute_name(node.attr, "attribute")
        elif isinstance(node, nodes.Getitem):
            arg = node.arg
            if isinstance(arg, nodes.Const) and isinstance(arg.value, str):
                self._attribute_name(arg.value, "item")
            elif _string_built(arg):
                folded = _fold(arg)
                if folded is not None:
                    self._attribute_name(folded, "computed item")
                add(Severity.CRITICAL, "item name built from string pieces at render time")
            elif isinstance(arg, nodes.Name) and arg.name in self.computed:
                add(Severity.CRITICAL, f"item name taken from built string variable {arg.name!r}")
        elif isinstance(node, nodes.Filter) and node.name == "attr":
            first: Any = node.args[0] if node.args else None
            if isinstance(first, nodes.Const) and isinstance(first.value, str):
                self._attribute_name(first.value, "attr filter")
            else:
                folded = _fold(first) if first is not None else None
                if folded is not None:
                    self._attribute_name(folded, "attr filter")
                add(Severity.CRITICAL, "attr filter with a computed attribute name")
        elif isinstance(node, nodes.Const) and isinstance(node.value, str):
            self._constant(node.value)
        elif isinstance(node, nodes.Name) and node.ctx == "load":
            self._name(node.name, parent, node)
        elif isinstance(node, nodes.Import | nodes.FromImport | nodes.Include | nodes.Extends):
            add(Severity.HIGH, f"{type(node).__name__.lower()} of another template")
        elif (
            isinstance(node, nodes.Assign | nodes.For)
            and isinstance(node.target, nodes.Name)
            and node.target.name.startswith("__")
        ):
            add(Severity.CRITICAL, f"assigns to dunder name {node.target.name!r}")

    def _attribute_name(self, name: str, how: str) -> None:
        if name.startswith("_"):
            self.result.add(Severity.CRITICAL, f"{how} access to private name {name!r}")
        elif name in DANGEROUS_ATTRS:
            self.result.add(Severity.CRITICAL, f"{how} access to {name!r}")

    def _constant(self, value: str) -> None:
        if value in DANGEROUS_CONSTANTS:
            self.result.add(Severity.CRITICAL, f"string constant {value!r}")
        elif _DUNDER.search(value) or ("__" in value and _FRAGMENT.match(value)):
            self.result.add(Severity.CRITICAL, f"string constant with dunder name {value[:60]!r}")

    def _name(self, name: str, parent: Any, node: Any) -> None:
        from jinja2 import nodes

        if name in ESCAPE_GLOBALS:
            self.result.add(Severity.CRITICAL, f"reference to global {name!r}")
        elif name in CALL_ONLY_GLOBALS:
            if not (isinstance(parent, nodes.Call) and parent.node is node):
                self.result.add(Severity.CRITICAL, f"global {name!r} used other than by a call")
        elif name.startswith("__"):
            self.result.add(Severity.CRITICAL, f"reference to dunder name {name!r}")


def _iter_nodes(tree: Any) -> Iterator[tuple[Any, Any]]:
    """Every node with its parent, iteratively (templates can nest deeply)."""
    stack: list[tuple[Any, Any]] = [(tree, None)]
    while stack:
        node, parent = stack.pop()
        yield node, parent
        for child in node.iter_child_nodes():
            stack.append((child, node))


def _string_built(node: Any) -> bool:
    """Whether an expression assembles a string from pieces (concatenation, join, format...)."""
    from jinja2 import nodes

    if isinstance(node, nodes.Concat):
        return True
    if isinstance(node, nodes.Filter):
        return node.name in STRING_FILTERS or node.name == "attr"
    if isinstance(node, nodes.Add | nodes.Mul | nodes.Mod):
        return any(
            (isinstance(side, nodes.Const) and isinstance(side.value, str)) or _string_built(side)
            for side in (node.left, node.right)
        )
    if isinstance(node, nodes.Call) and isinstance(node.node, nodes.Getattr):
        return node.node.attr in ("format", "join", "replace", "lower", "upper", "strip")
    return False


def _fold(node: Any, depth: int = 0) -> str | None:
    """The value of a constant string expression, when it can be known without rendering."""
    from jinja2 import nodes

    if depth > 50:
        return None
    if isinstance(node, nodes.Const):
        return node.value if isinstance(node.value, str) else None
    if isinstance(node, nodes.Concat):
        parts = [_fold(n, depth + 1) for n in node.nodes]
        return None if any(p is None for p in parts) else "".join(p or "" for p in parts)
    if isinstance(node, nodes.Add):
        left, right = _fold(node.left, depth + 1), _fold(node.right, depth + 1)
        return None if left is None or right is None else left + right
    if isinstance(node, nodes.Mul):
        text = _fold(node.left, depth + 1)
        count = node.right.value if isinstance(node.right, nodes.Const) else None
        if text is not None and isinstance(count, int) and 0 <= count <= 64:
            return text * count
        return None
    if isinstance(node, nodes.Filter) and node.node is not None:
        if node.name == "join" and isinstance(node.node, nodes.List | nodes.Tuple):
            items = [_fold(n, depth + 1) for n in node.node.items]
            sep = _fold(node.args[0], depth + 1) if node.args else ""
            if sep is None or any(i is None for i in items):
                return None
            return sep.join(i or "" for i in items)
        inner = _fold(node.node, depth + 1)
        if inner is None:
            return None
        transforms: dict[str, Callable[[str], str]] = {
            "lower": str.lower,
            "upper": str.upper,
            "trim": str.strip,
            "string": str,
            "reverse": lambda text: text[::-1],
        }
        transform = transforms.get(node.name)
        return None if transform is None else str(transform(inner))
    return None
