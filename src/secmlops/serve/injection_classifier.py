"""Optional prompt-injection classifier on sentence embeddings (the `[llm]` extra).

The pattern shield (`shields.score_injection`) knows phrasings; paraphrased attacks slip past it.
This classifier scores meaning instead: WordLlama's `l2_supercat` 256-dimensional embeddings,
whose weights and tokenizer ship inside the `wordllama` wheel (loaded from the installed package
with downloads disabled: never a network call), feed a logistic regression whose 257 numbers ship
with secmlops (`injection_classifier.json`, with the corpus, split and scores it was trained on;
regenerate with `benchmarks/tools/train_injection_classifier.py`). Scoring a prompt takes about
0.3 ms.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from secmlops.errors import GatewayError
from secmlops.serve.shields import InjectionVerdict

WEIGHTS_FILE = "injection_classifier.json"
_MAX_CHARS = 20_000  # embeddings average tokens: a longer text adds cost, not signal


@dataclass(frozen=True, slots=True)
class ClassifierWeights:
    embedding: str  # the WordLlama configuration the coefficients belong to
    dimension: int
    coef: tuple[float, ...]
    intercept: float
    provenance: dict[str, Any]

    @classmethod
    def load(cls, path: Path | None = None) -> ClassifierWeights:
        """The shipped weights, or a file of the same shape (a retrained classifier)."""
        try:
            text = (
                path.read_text(encoding="utf-8")
                if path is not None
                else resources.files("secmlops.serve").joinpath(WEIGHTS_FILE).read_text("utf-8")
            )
            doc = json.loads(text)
            coef = tuple(float(c) for c in doc["coef"])
            weights = cls(str(doc["embedding"]), int(doc["dimension"]), coef,
                          float(doc["intercept"]), dict(doc.get("provenance", {})))  # fmt: skip
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise GatewayError(f"cannot read the injection classifier weights: {exc}") from exc
        if len(coef) != weights.dimension or not all(math.isfinite(c) for c in coef):
            raise GatewayError("injection classifier weights are malformed (length or values)")
        return weights


class EmbeddingClassifier:
    """Probability that a text is a prompt-injection attempt."""

    def __init__(self, weights: ClassifierWeights | None = None) -> None:
        import numpy as np

        self.weights = weights or ClassifierWeights.load()
        self._model = _load_wordllama(self.weights.embedding, self.weights.dimension)
        self._coef = np.asarray(self.weights.coef, dtype=np.float32)

    def scores(self, texts: list[str]) -> list[float]:
        import numpy as np

        if not texts:
            return []
        vectors = np.asarray(
            self._model.embed([t[:_MAX_CHARS] for t in texts], norm=False), dtype=np.float32
        )
        # Unit length as in training; a text with no known token (empty, control characters)
        # has a zero vector and gets the intercept alone instead of NaN.
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        vectors = np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)
        logits = vectors @ self._coef + self.weights.intercept
        return [float(p) for p in 1.0 / (1.0 + np.exp(-np.clip(logits, -40, 40)))]

    def score(self, text: str) -> float:
        return self.scores([text])[0]


def _load_wordllama(config: str, dimension: int) -> Any:
    try:
        import wordllama
        from wordllama import WordLlama
    except ImportError as exc:
        raise GatewayError(
            "the embedding classifier needs the llm extra",
            hint="pip install 'secmlops[llm]', or set chat.injection.classifier: false",
        ) from exc
    # The wheel ships weights/ and tokenizers/ in the package folder; pointing the cache there
    # makes WordLlama find both locally (disable_download: a missing file is an error, not a fetch).
    package = Path(wordllama.__file__).parent
    try:
        return WordLlama.load(config, cache_dir=package, dim=dimension, disable_download=True)
    except (OSError, ValueError) as exc:
        raise GatewayError(f"the WordLlama {config} model is not installed locally: {exc}") from exc


def combine_injection(
    verdict: InjectionVerdict, probability: float, *, flag_at: float = 0.4, block_at: float = 0.7
) -> InjectionVerdict:
    """The pattern verdict raised by the classifier's probability (the higher score decides).

    Both scores live on the same 0..1 scale and meet the same flag/block thresholds; the
    classifier can only add suspicion, never clear what a pattern found."""
    score = max(verdict.score, probability)
    signals = verdict.signals
    if probability > verdict.score:
        signals = (*signals, f"embedding classifier p={probability:.2f}")
    action = "block" if score >= block_at else "flag" if score >= flag_at else "allow"
    return dataclasses.replace(verdict, score=round(score, 3), signals=signals, action=action)
