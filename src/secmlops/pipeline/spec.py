"""`pipeline.yaml`: what a pipeline runs, what each stage reads and writes, which controls apply."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from secmlops.errors import ConfigError, first_problem

_ENTRY = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
MAX_SPEC_BYTES = 1 << 20


class ControlSpec(BaseModel):
    """One control: its name and its options (e.g. `{control: poisoning, label: is_fraud}`)."""

    model_config = ConfigDict(extra="allow")

    control: str


class StageSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z][a-z0-9_-]{0,39}$")
    run: str | None = None
    inputs: list[str] = []
    outputs: list[str] = []
    params: dict[str, Any] = {}
    controls: list[ControlSpec] = []

    @field_validator("run")
    @classmethod
    def _entry_point(cls, value: str | None) -> str | None:
        if value is not None and not _ENTRY.match(value):
            raise ValueError("run must be 'module:function'")
        return value

    @field_validator("controls", mode="before")
    @classmethod
    def _short_controls(cls, value: Any) -> Any:
        # `controls: [model_scan, sign]` is shorthand for `[{control: model_scan}, …]`.
        if isinstance(value, list):
            return [{"control": v} if isinstance(v, str) else v for v in value]
        return value

    @field_validator("inputs", "outputs")
    @classmethod
    def _relative(cls, value: list[str]) -> list[str]:
        for item in value:
            path = Path(item)
            if path.is_absolute() or ".." in path.parts:
                raise ValueError(f"{item!r} must be a path inside the pipeline folder")
        return value


class PipelineSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
    model: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
    model_path: str
    stages: list[StageSpec] = Field(min_length=1)

    @field_validator("stages")
    @classmethod
    def _unique(cls, value: list[StageSpec]) -> list[StageSpec]:
        names = [s.name for s in value]
        if len(set(names)) != len(names):
            raise ValueError("stage names must be unique")
        return value


def load_pipeline(path: Path) -> PipelineSpec:
    try:
        if path.stat().st_size > MAX_SPEC_BYTES:
            raise ConfigError(f"{path} is larger than {MAX_SPEC_BYTES} bytes")
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from exc
    try:
        return PipelineSpec.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {first_problem(exc)}", hint="see docs/pipeline.md") from exc
