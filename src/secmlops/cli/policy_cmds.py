"""`secmlops policy eval|test`: the Rego gate from the command line."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer
from rich.console import Console

from secmlops.cli.app import policy_app

BundleOpt = typer.Option(
    None, "--bundle", help="Replace the shipped policy bundle with this folder (*.rego + data/)."
)
ExtendOpt = typer.Option(
    [], "--extend", help="Add this folder's rules and data overrides to the bundle. Repeatable."
)


@policy_app.command("eval")
def policy_eval(
    input_file: Path = typer.Option(..., "--input", "-i", help="Policy input document (JSON)."),
    bundle: Path | None = BundleOpt,
    extend: list[Path] = ExtendOpt,
    waivers: Path | None = typer.Option(
        None,
        "--waivers",
        help="Waiver file (YAML/JSON): rule_id, scope, reason, approver, expires.",
    ),
    fmt: str = typer.Option("text", "--format", "-f", help="text or json."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Write the decision here."),
) -> None:
    """Evaluate the gate over an input document. Exit 0 allowed, 1 denied, 2 could not evaluate."""
    from secmlops.errors import UsageError
    from secmlops.policy.gate import evaluate_gate, load_input
    from secmlops.policy.waivers import load_waivers

    if fmt not in ("text", "json"):
        raise UsageError(f"unknown format {fmt!r}", hint="use text or json")
    decision = evaluate_gate(
        load_input(input_file),
        bundle=bundle,
        extend=extend,
        waivers=load_waivers(waivers) if waivers else (),
    )
    if fmt == "json":
        text = json.dumps(decision.to_dict(), indent=2) + "\n"
    else:
        lines = ["ALLOW" if decision.allow else "DENY"]
        for kind, items in (("deny", decision.deny), ("warn", decision.warn)):
            lines += [f"  {kind} {v.severity.label:8} {v.rule_id}: {v.msg}" for v in items]
        text = "\n".join(lines) + "\n"
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")
    raise typer.Exit(0 if decision.allow else 1)


@policy_app.command("test")
def policy_test(
    bundle: Path | None = BundleOpt,
    extend: list[Path] = ExtendOpt,
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print failures only."),
) -> None:
    """Run the bundle's Rego unit tests (test_* rules in *_test.rego). Exit 1 if any fails."""
    from secmlops.policy.gate import resolve_bundle
    from secmlops.policy.testing import run_policy_tests

    results = run_policy_tests(resolve_bundle(bundle, extend))
    out = Console(highlight=False)
    for r in results:
        if not (quiet and r.passed):
            out.print(f"{'PASS' if r.passed else 'FAIL'} {r.name}")
    failed = sum(not r.passed for r in results)
    out.print(f"{len(results) - failed}/{len(results)} policy tests passed")
    raise typer.Exit(1 if failed else 0)
