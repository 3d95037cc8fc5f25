"""Stable rule ids of the statistical data checks: poisoning, drift and the privacy budget.

Documented in docs/rules.md (a test keeps them in sync).
"""

from __future__ import annotations

from secmlops.findings import Rule, Severity

_POISON = ("NIST-AI-RMF:MEASURE-2.7", "ISO42001:A.7.4", "OWASP-ML:ML02", "MITRE-ATLAS:AML.T0020")
_DRIFT = ("NIST-AI-RMF:MEASURE-2.4", "NIST-AI-RMF:MANAGE-4.1", "ISO42001:A.6.2.6")
_PRIVACY = ("NIST-AI-RMF:MEASURE-2.10", "ISO42001:A.7.4", "OWASP-ML:ML04", "GDPR:Art.25")

POISON_LABEL = Rule(
    "DATA-POISON-LABEL",
    Severity.MEDIUM,
    "Rows whose label disagrees with the rest of the data (label issues)",
    "Confident learning on out-of-fold predicted probabilities finds rows whose given label is "
    "unlikely under a model trained without them; flipped labels are the cheapest poisoning attack.",
    "Review the listed rows (ranked by score) and relabel or drop them before training; find out "
    "how they entered the data.",
    _POISON,
)
POISON_CLUSTER = Rule(
    "DATA-POISON-CLUSTER",
    Severity.HIGH,
    "A tight cluster of anomalous rows inside one class",
    "Injected poison is often many near-identical points placed in an unusual region of one "
    "class; scattered outliers are natural, a dense clump of them is not.",
    "Review the listed rows and where they came from; remove them if they were not collected "
    "by the normal process.",
    _POISON,
)
POISON_DUPLICATE = Rule(
    "DATA-POISON-DUPLICATE",
    Severity.MEDIUM,
    "Exact or near-duplicate rows (high severity when their labels conflict)",
    "Repeating a point amplifies its weight in training; copies of one point with different "
    "labels are a direct attempt to move the decision boundary.",
    "Deduplicate the data; for conflicting labels find the correct label or drop the group.",
    _POISON,
)
POISON_BALANCE = Rule(
    "DATA-POISON-BALANCE",
    Severity.MEDIUM,
    "Class balance differs from the reference",
    "A shift in label shares that a chi-squared test finds significant and whose effect size "
    "(Cohen's w) is not negligible can come from injected or deleted rows of one class.",
    "Compare the data source with the reference snapshot and explain the change before training.",
    _POISON,
)
POISON_TRIGGER = Rule(
    "DATA-POISON-TRIGGER",
    Severity.HIGH,
    "A rare value or token almost always comes with one label (backdoor trigger signal)",
    "Backdoors pair a rare trigger (a token, a pixel, a category) with a target label; a value "
    "whose rows nearly all share one label, with a significant chi-squared after multiple-testing "
    "correction, is the footprint such an attack leaves in the training set.",
    "Inspect the listed rows: if the value has no legitimate reason to decide the label, remove "
    "those rows and check the model for the trigger.",
    _POISON,
)
POISON_UNCHECKED = Rule(
    "DATA-POISON-UNCHECKED",
    Severity.MEDIUM,
    "A poisoning check could not run on this data",
    "A check that cannot run is not a clean result: too few rows per class, no usable features "
    "or no reference mean the data was not checked for that attack.",
    "Provide more rows, usable feature columns or a --reference data set, as the message says.",
    _POISON,
)
DRIFT_FEATURE = Rule(
    "DATA-DRIFT-FEATURE",
    Severity.MEDIUM,
    "A feature's distribution drifted from the reference",
    "An effect size (normalised Wasserstein distance, PSI or Jensen-Shannon distance) above its "
    "threshold, confirmed by a significant test after Benjamini-Hochberg correction, means the "
    "model now sees inputs unlike those it was validated on.",
    "Find the cause (upstream change, new population, attack); retrain or recalibrate if the "
    "change is real, fix the pipeline if not.",
    _DRIFT,
)
DRIFT_DATASET = Rule(
    "DATA-DRIFT-DATASET",
    Severity.HIGH,
    "The data set as a whole drifted from the reference",
    "When a large share of features drift together the model's validation no longer describes "
    "its inputs.",
    "Stop relying on the model's validated metrics; investigate and retrain on current data.",
    _DRIFT,
)
DRIFT_SCHEMA = Rule(
    "DATA-DRIFT-SCHEMA",
    Severity.HIGH,
    "A reference column is missing or changed type",
    "A feature the reference has but the current data lacks (or holds with another type) cannot "
    "be compared, and the model will receive wrong or missing inputs.",
    "Restore the column or its type upstream, or build a new reference profile on purpose.",
    _DRIFT,
)
DP_EPSILON_HIGH = Rule(
    "DP-BUDGET-EPSILON-HIGH",
    Severity.MEDIUM,
    "Privacy loss epsilon above 10",
    "Above epsilon = 10 the differential-privacy guarantee is too weak to protect individuals "
    "in practice (membership inference succeeds at close to non-private rates).",
    "Add noise, train for fewer steps or sample less, and re-run the accountant.",
    _PRIVACY,
)
DP_DELTA_HIGH = Rule(
    "DP-BUDGET-DELTA-HIGH",
    Severity.HIGH,
    "Privacy failure probability delta at least 1/N",
    "With delta >= 1/N a mechanism may reveal one whole record outright and still satisfy "
    "(epsilon, delta)-DP; delta must be far below one over the number of rows.",
    "Use delta well below 1/N (1/N^1.1 or smaller) and recompute epsilon.",
    _PRIVACY,
)
DP_CLAIM_LOW = Rule(
    "DP-BUDGET-CLAIM-LOW",
    Severity.HIGH,
    "A claimed epsilon is lower than the independently recomputed one",
    "The ledger recomputes epsilon from the mechanism parameters with Google's dp-accounting; a "
    "lower claim understates the privacy loss.",
    "Record the recomputed epsilon (omit --epsilon) or correct the mechanism parameters.",
    _PRIVACY,
)
DP_OVER_BUDGET = Rule(
    "DP-BUDGET-EXCEEDED",
    Severity.CRITICAL,
    "The privacy budget of the data set is exhausted",
    "The ledger's entries together spend more epsilon or delta than the caps set at init.",
    "Stop releasing results computed on this data set; a new budget needs a governance decision.",
    _PRIVACY,
)
DP_UNVERIFIED = Rule(
    "DP-BUDGET-UNVERIFIED",
    Severity.LOW,
    "A ledger entry's epsilon was not recomputed",
    "Entries of a custom mechanism carry only a claimed epsilon and delta that the ledger cannot "
    "check independently.",
    "Record the mechanism's parameters (gaussian, laplace or dpsgd) so the ledger can verify it.",
    _PRIVACY,
)
DP_STATUS = Rule(
    "DP-BUDGET-STATUS",
    Severity.INFO,
    "Privacy budget spent and remaining",
    "The total privacy loss (basic composition of every entry) against the caps set at init.",
    "Nothing to fix; keep spending within the caps.",
    _PRIVACY,
)

ALL: dict[str, Rule] = {
    r.rule_id: r
    for r in (
        POISON_LABEL,
        POISON_CLUSTER,
        POISON_DUPLICATE,
        POISON_BALANCE,
        POISON_TRIGGER,
        POISON_UNCHECKED,
        DRIFT_FEATURE,
        DRIFT_DATASET,
        DRIFT_SCHEMA,
        DP_EPSILON_HIGH,
        DP_DELTA_HIGH,
        DP_CLAIM_LOW,
        DP_OVER_BUDGET,
        DP_UNVERIFIED,
        DP_STATUS,
    )
}
