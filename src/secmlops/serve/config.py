"""Gateway settings (`gateway.yaml`), validated at the boundary; paths are relative to the file."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from secmlops.errors import GatewayError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelConfig(_Strict):
    name: str
    ref: str = "production"
    tenants: list[str] = Field(min_length=1)


class LimitsConfig(_Strict):
    requests: str = "120/minute"
    tenant_requests: str = "1000/minute"
    tokens: str = "200000/day"
    storage_url: str = "memory://"


class InjectionConfig(_Strict):
    flag_at: float = Field(default=0.4, ge=0, le=1)
    block_at: float = Field(default=0.7, ge=0, le=1)


class ChatConfig(_Strict):
    upstream_url: str | None = None
    upstream_api_key_env: str | None = None
    timeout: float = Field(default=30.0, gt=0, le=600)
    tenants: list[str] = []
    max_tokens: int = Field(default=1024, ge=1)
    max_top_logprobs: int = Field(default=0, ge=0, le=20)
    redact_output: bool = True
    breaker_failures: int = Field(default=5, ge=1, le=1000)
    breaker_cooldown: float = Field(default=30.0, gt=0, le=3600)
    injection: InjectionConfig = Field(default_factory=InjectionConfig)


class ExtractionConfig(_Strict):
    enabled: bool = True
    prada_threshold: float = Field(default=0.90, gt=0, lt=1)
    action: str = Field(default="block", pattern="^(block|flag)$")


class GatewayConfig(_Strict):
    issuer: str
    audience: str
    token_keys: list[Path] = Field(min_length=1)
    max_token_ttl: int = Field(default=900, ge=60, le=86400)
    clock_skew: int = Field(default=30, ge=0, le=60)
    home: Path = Path(".secmlops")
    trust_key: Path
    models: list[ModelConfig] = []
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    max_body_bytes: int = Field(default=65536, ge=1024, le=64 << 20)
    chat: ChatConfig = Field(default_factory=ChatConfig)
    extraction: ExtractionConfig = Field(default_factory=ExtractionConfig)
    # power-loss: each audit commit is fsynced (survives power loss and kernel crashes);
    # process-crash: survives the gateway being killed (SIGKILL, OOM) but not a host crash.
    audit_durability: str = Field(default="power-loss", pattern="^(power-loss|process-crash)$")


def load_gateway_config(path: Path) -> GatewayConfig:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise GatewayError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        raise GatewayError(f"{path} is not valid YAML: {exc}") from exc
    try:
        config = GatewayConfig.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise GatewayError(
            f"{path}: {'.'.join(str(p) for p in first['loc'])}: {first['msg']}",
            hint="see docs/gateway.md",
        ) from exc
    base = path.resolve().parent
    return config.model_copy(update={
        "token_keys": [base / p for p in config.token_keys],
        "home": base / config.home,
        "trust_key": base / config.trust_key,
    })  # fmt: skip
