"""Gateway settings (`gateway.yaml`), validated at the boundary; paths are relative to the file."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from secmlops.errors import GatewayError, first_problem


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BudgetConfig(_Strict):
    """A cost budget: at most `limit` units (prediction rows, or estimated chat tokens) per
    fixed window of `window` seconds, all tenants together; past it the circuit opens."""

    limit: int = Field(ge=1)
    window: float = Field(default=3600.0, gt=0, le=31 * 86400)


class ModelConfig(_Strict):
    name: str
    ref: str = "production"
    tenants: list[str] = Field(min_length=1)
    # Drift profile of the training data (`secmlops monitor profile`); none = no drift monitor.
    reference_profile: Path | None = None
    # Profile column holding the model's predicted scores on the training data, if any.
    prediction_column: str = "score"
    breaker_failures: int = Field(default=5, ge=1, le=1000)
    breaker_cooldown: float = Field(default=30.0, gt=0, le=3600)
    budget: BudgetConfig | None = None


class LimitsConfig(_Strict):
    requests: str = "120/minute"
    tenant_requests: str = "1000/minute"
    tokens: str = "200000/day"
    storage_url: str = "memory://"


class InjectionConfig(_Strict):
    flag_at: float = Field(default=0.4, ge=0, le=1)
    block_at: float = Field(default=0.7, ge=0, le=1)
    classifier: bool = False  # add the embedding classifier's score (needs the llm extra)


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
    budget: BudgetConfig | None = None


class ExtractionConfig(_Strict):
    enabled: bool = True
    prada_threshold: float = Field(default=0.90, gt=0, lt=1)
    action: str = Field(default="block", pattern="^(block|flag)$")


class DriftConfig(_Strict):
    window: int = Field(default=5000, ge=100, le=100_000)  # recent rows kept per model
    check_every: int = Field(default=500, ge=1)  # requests between checks ...
    check_interval: float = Field(default=60.0, gt=0, le=86400)  # ... or seconds, whichever first
    min_rows: int = Field(default=500, ge=50)  # no verdict on fewer rows
    dataset_share: float = Field(default=0.3, gt=0, le=1)  # share of drifted features = drift
    action: str = Field(default="alert", pattern="^(alert|stop)$")


class AlertsConfig(_Strict):
    webhook_url: str | None = Field(default=None, pattern="^https?://")
    timeout: float = Field(default=2.0, gt=0, le=30)
    queue_size: int = Field(default=1000, ge=1, le=100_000)
    repeat_after: float = Field(default=300.0, ge=0, le=86400)  # same alert, same subject: quiet
    secret_env: str | None = None  # environment variable with the HMAC key that signs each POST
    retries: int = Field(default=2, ge=0, le=10)  # on transport errors, 429 and 5xx


class HostMonitorConfig(_Strict):
    enabled: bool = True
    interval: float = Field(default=5.0, ge=0.05, le=3600)  # seconds between samples
    busy_percent: float = Field(default=80.0, gt=0, le=100)
    idle_requests_per_second: float = Field(default=0.2, ge=0)
    sustain: float = Field(default=300.0, gt=0, le=86400)  # busy-while-idle this long = alert
    gpu: bool = True


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
    drift: DriftConfig = Field(default_factory=DriftConfig)
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)
    host_monitor: HostMonitorConfig = Field(default_factory=HostMonitorConfig)


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
        raise GatewayError(
            f"{path}: {first_problem(exc)}",
            hint="see docs/gateway.md",
        ) from exc
    base = path.resolve().parent
    return config.model_copy(update={
        "token_keys": [base / p for p in config.token_keys],
        "home": base / config.home,
        "trust_key": base / config.trust_key,
        "models": [m.model_copy(update={"reference_profile": base / m.reference_profile})
                   if m.reference_profile is not None else m for m in config.models],
    })  # fmt: skip
