"""Settings from secmlops.toml, [tool.secmlops] in pyproject.toml, or SECMLOPS_* variables.

The file format is validated with pydantic (a boundary); the rest of the code sees frozen
dataclasses, so a run without a configuration file does not pay for importing pydantic.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from secmlops.errors import ConfigError, Error, first_problem

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ModelsConfig:
    """[models]: what the model scanner may allow and how far it may go."""

    allow: tuple[str, ...] = ()
    max_depth: int = 6
    max_ratio: float = 250.0
    max_expanded_bytes: int = 64 * 2**30
    max_members: int = 100_000
    max_pickle_ops: int = 50_000_000


# Sections whose keys are the fields of a layer's settings dataclass: [pii] configures
# scan.data.pii.PiiSettings, and so on. The class is imported only when its section is present,
# so a run without these sections never imports pandas or scipy through the configuration.
LAYER_SECTIONS: dict[str, tuple[str, str]] = {
    "pii": ("secmlops.scan.data.pii", "PiiSettings"),
    "poisoning": ("secmlops.scan.data.poisoning", "PoisonSettings"),
    "drift": ("secmlops.scan.data.drift", "DriftThresholds"),
}


@dataclass(frozen=True, slots=True)
class Config:
    """The whole configuration."""

    fail_on: str = "high"
    models: ModelsConfig = field(default_factory=ModelsConfig)
    # validated values of the LAYER_SECTIONS present in the file, by section name
    layers: dict[str, dict[str, Any]] = field(default_factory=dict)

    def layer_settings(self, section: str, settings_type: type[T], **overrides: Any) -> T:
        """SETTINGS_TYPE from the file's [SECTION], then OVERRIDES that are not None (flags)."""
        values = {**self.layers.get(section, {})}
        values.update({k: v for k, v in overrides.items() if v is not None})
        return settings_type(**values)


def _read_toml(path: Path) -> dict[str, Any]:
    import tomllib  # only when there is a file to read (~5 ms of start-up otherwise)

    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc


def _validate(data: dict[str, Any], source: str) -> Config:
    from pydantic import BaseModel, ConfigDict, Field, ValidationError

    class ModelsSchema(BaseModel):
        model_config = ConfigDict(extra="forbid")
        allow: list[str] = Field(default_factory=list)
        max_depth: int = Field(default=6, ge=1, le=64)
        max_ratio: float = Field(default=250.0, gt=1)
        max_expanded_bytes: int = Field(default=64 * 2**30, gt=0)
        max_members: int = Field(default=100_000, gt=0)
        max_pickle_ops: int = Field(default=50_000_000, gt=0)

    class Schema(BaseModel):
        model_config = ConfigDict(extra="forbid")
        fail_on: str = "high"
        models: ModelsSchema = Field(default_factory=lambda: ModelsSchema())

    layers = {name: _layer_section(name, data.pop(name), source) for name in list(data)
              if name in LAYER_SECTIONS}  # fmt: skip
    try:
        parsed = Schema.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{source}: {first_problem(exc)}") from None
    m = parsed.models
    return Config(
        fail_on=parsed.fail_on,
        models=ModelsConfig(
            tuple(m.allow), m.max_depth, m.max_ratio, m.max_expanded_bytes, m.max_members,
            m.max_pickle_ops,
        ),
        layers=layers,
    )  # fmt: skip


def _layer_section(name: str, values: Any, source: str) -> dict[str, Any]:
    """Check [NAME] against the fields of the settings class it configures (types, ranges)."""
    import dataclasses
    import importlib

    from pydantic import TypeAdapter, ValidationError

    if not isinstance(values, dict):
        raise ConfigError(f"{source}: [{name}] must be a table of settings")
    module, cls_name = LAYER_SECTIONS[name]
    settings_type = getattr(importlib.import_module(module), cls_name)
    known = {f.name for f in dataclasses.fields(settings_type)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(
            f"{source}: [{name}] has no setting {unknown[0]!r}",
            hint=f"known settings: {', '.join(sorted(known))}",
        )
    try:  # types and ranges; the class's own checks (__post_init__) run too
        TypeAdapter(settings_type).validate_python(values)
    except ValidationError as exc:
        raise ConfigError(f"{source}: {name}.{first_problem(exc)}") from None
    except (ValueError, Error) as exc:  # raised by the settings class's own validation
        message = exc.message if isinstance(exc, Error) else str(exc)
        raise ConfigError(f"{source}: [{name}]: {message}") from None
    return dict(values)


def load_config(explicit: Path | None = None, cwd: Path | None = None) -> Config:
    """The configuration in force: an explicit file, else ./secmlops.toml, else pyproject.toml."""
    data: dict[str, Any] = {}
    source = "defaults"
    here = cwd or Path.cwd()
    if explicit is not None:
        if not explicit.is_file():
            raise ConfigError(f"config file not found: {explicit}")
        data = _read_toml(explicit)
        if explicit.name == "pyproject.toml":
            data = data.get("tool", {}).get("secmlops", {})
        source = str(explicit)
    elif (here / "secmlops.toml").is_file():
        data = _read_toml(here / "secmlops.toml")
        source = str(here / "secmlops.toml")
    elif (here / "pyproject.toml").is_file():
        data = _read_toml(here / "pyproject.toml").get("tool", {}).get("secmlops", {})
        source = str(here / "pyproject.toml")
    if "SECMLOPS_FAIL_ON" in os.environ:
        data = {**data, "fail_on": os.environ["SECMLOPS_FAIL_ON"]}
    return _validate(data, source) if data else Config()
