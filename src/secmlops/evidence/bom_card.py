"""The model-card file a user writes: what the AI-BOM cannot derive from the files themselves.

YAML (or JSON, which is YAML), validated strictly: unknown keys and wrong types are errors, so a
typo never silently drops a field. Field names follow CycloneDX 1.6 `modelCard` where one exists.
The schema is documented in docs/bom.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from secmlops.errors import EvidenceError
from secmlops.evidence.attest import read_text_file

_MAX_CARD_BYTES = 2 * 2**20


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class CardDataset(_Strict):
    """A data set the model was trained or evaluated on."""

    name: str | None = None
    path: str | None = None  # file or folder, relative to the card: hashed into the BOM
    url: str | None = (
        None  # where it can be obtained (no digest: reported as not content-addressed)
    )
    classification: str | None = None  # e.g. public, internal, confidential, restricted
    description: str | None = None
    sensitiveData: list[str] | None = None
    use: Literal["training", "validation", "testing", "other"] | None = None

    @model_validator(mode="after")
    def _somewhere(self) -> CardDataset:
        if self.path is None and self.url is None and self.name is None:
            raise ValueError("a dataset needs at least a path, a url or a name")
        return self


class ConfidenceInterval(_Strict):
    lowerBound: float | str
    upperBound: float | str


class CardMetric(_Strict):
    type: str
    value: float | int | str
    slice: str | None = None
    confidenceInterval: ConfidenceInterval | None = None


class Risk(_Strict):
    name: str
    mitigationStrategy: str | None = None


class FairnessAssessment(_Strict):
    groupAtRisk: str
    benefits: str | None = None
    harms: str | None = None
    mitigationStrategy: str | None = None


class Considerations(_Strict):
    users: list[str] | None = None
    useCases: list[str] | None = None
    technicalLimitations: list[str] | None = None
    performanceTradeoffs: list[str] | None = None
    ethicalConsiderations: list[Risk] | None = None
    fairnessAssessments: list[FairnessAssessment] | None = None


class ModelCardFile(_Strict):
    """The whole card file (every field optional; missing ones lower the completeness score)."""

    name: str | None = None
    version: str | None = None
    description: str | None = None
    supplier: str | None = None
    license: str | None = None
    approach: (
        Literal["supervised", "unsupervised", "reinforcement-learning", "semi-supervised",
                "self-supervised"]
        | None
    ) = None  # fmt: skip
    task: str | None = None
    architectureFamily: str | None = None
    modelArchitecture: str | None = None
    inputs: list[str] | None = None
    outputs: list[str] | None = None
    datasets: list[CardDataset] | None = None
    metrics: list[CardMetric] | None = None
    considerations: Considerations | None = None

    @field_validator("*", mode="before")
    @classmethod
    def _no_blank_strings(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            raise ValueError("must not be empty")
        return value


# Fields a complete card fills (the score is the share present); order is the order reported.
RECOMMENDED_FIELDS: tuple[str, ...] = (
    "version",
    "description",
    "supplier",
    "license",
    "approach",
    "task",
    "architectureFamily",
    "modelArchitecture",
    "inputs",
    "outputs",
    "datasets",
    "datasets[].classification",
    "metrics",
    "considerations.users",
    "considerations.useCases",
    "considerations.technicalLimitations",
    "considerations.ethicalConsiderations",
    "considerations.fairnessAssessments",
)


@dataclass(frozen=True, slots=True)
class LoadedCard:
    """A validated card and the folder its relative dataset paths are resolved against."""

    card: ModelCardFile
    base: Path


def load_card(path: Path) -> LoadedCard:
    """Read and validate a card file; EvidenceError naming the field for anything wrong."""
    import yaml

    text = read_text_file(path, "model card", _MAX_CARD_BYTES)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise EvidenceError(f"model card {path} is not valid YAML{where}") from None
    except RecursionError:
        raise EvidenceError(f"model card {path} is nested too deeply") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise EvidenceError(
            f"model card {path} must be a mapping of fields, not {type(data).__name__}",
            hint="see docs/bom.md for the card schema",
        )
    try:
        card = ModelCardFile.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise EvidenceError(
            f"model card {path}: {where}: {first['msg']}{more}",
            hint="see docs/bom.md for the card schema",
        ) from None
    return LoadedCard(card, path.parent)


def missing_fields(card: ModelCardFile | None) -> list[str]:
    """The recommended fields the card leaves empty (all of them without a card)."""
    if card is None:
        return list(RECOMMENDED_FIELDS)
    present: dict[str, bool] = {
        name: bool(getattr(card, name))
        for name in RECOMMENDED_FIELDS
        if "." not in name and "[" not in name
    }
    present["datasets[].classification"] = bool(card.datasets) and all(
        d.classification for d in card.datasets or []
    )
    cons = card.considerations
    for name in RECOMMENDED_FIELDS:
        if name.startswith("considerations."):
            present[name] = cons is not None and bool(getattr(cons, name.split(".", 1)[1]))
    return [name for name in RECOMMENDED_FIELDS if not present[name]]
