"""Settings from secmlops.toml, [tool.secmlops] in pyproject.toml, or SECMLOPS_* variables."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from secmlops.errors import ConfigError


class ModelsConfig(BaseModel):
    """[models]: what the model scanner may allow and how far it may go."""

    model_config = ConfigDict(extra="forbid")

    allow: list[str] = Field(
        default_factory=list, description='extra allowlist entries "module.name:use"'
    )
    max_depth: int = Field(default=6, ge=1, le=64)
    max_ratio: float = Field(default=250.0, gt=1)
    max_expanded_bytes: int = Field(default=64 * 2**30, gt=0)
    max_members: int = Field(default=100_000, gt=0)
    max_pickle_ops: int = Field(default=50_000_000, gt=0)


class Config(BaseModel):
    """The whole configuration."""

    model_config = ConfigDict(extra="forbid")

    fail_on: str = "high"
    models: ModelsConfig = Field(default_factory=lambda: ModelsConfig())


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc


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
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"{source}: {where}: {first['msg']}") from None
