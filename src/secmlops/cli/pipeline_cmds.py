"""`secmlops pipeline run`: run a pipeline.yaml with its controls and gates."""

from __future__ import annotations

import os
from pathlib import Path

import typer
from rich.console import Console

from secmlops.cli.app import app

pipeline_app = typer.Typer(help="Secured ML pipelines (pipeline.yaml).", no_args_is_help=True)
app.add_typer(pipeline_app, name="pipeline")


@pipeline_app.command("run")
def pipeline_run(
    spec: Path = typer.Argument(Path("pipeline.yaml"), help="The pipeline file."),
    key: Path = typer.Option(..., "--key", help="Signing key (PEM); KEY.pub must lie beside it."),
    passphrase_env: str | None = typer.Option(
        None, "--passphrase-env", help="Env var with the key passphrase."
    ),
    home: Path | None = typer.Option(
        None, "--home", help="Store, database and run records (default: FOLDER/.secmlops)."
    ),
    force: bool = typer.Option(False, "--force", help="Run every stage even when nothing changed."),
) -> None:
    """Run each stage's code and controls, attest it, and stop at the first denied gate (exit 1)."""
    from secmlops.pipeline.controls import CONTROLS
    from secmlops.pipeline.runner import PipelineDenied, StageOutcome, run_pipeline
    from secmlops.pipeline.spec import load_pipeline

    out = Console(highlight=False)

    def show(o: StageOutcome) -> None:
        state = (
            "skipped (unchanged)"
            if o.skipped
            else ("allowed" if o.decision is None or o.decision.allow else "DENIED")
        )
        out.print(f"  {o.name:10} {state:20} {o.seconds:6.2f}s  {len(o.findings)} findings")

    root = spec.resolve().parent
    passphrase = os.environ.get(passphrase_env, "").encode() if passphrase_env else None
    try:
        _, facts = run_pipeline(
            load_pipeline(spec), root, key_path=key, passphrase=passphrase,
            home=home or root / ".secmlops", controls=CONTROLS, force=force, on_stage=show,
        )  # fmt: skip
    except PipelineDenied as exc:
        out.print(f"[bold red]stage {exc.stage} denied[/]")
        for v in exc.decision.deny:
            out.print(f"    {v.severity.label:8} {v.rule_id}: {v.msg}")
        raise typer.Exit(1) from exc
    registered = facts.get("registered")
    if registered:
        out.print(f"[green]registered {registered['name']}@{registered['version']}[/]")
