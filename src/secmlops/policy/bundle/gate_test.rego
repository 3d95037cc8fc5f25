# Unit tests of the default gate: `secmlops policy test` runs every test_* rule below.
package secmlops.gate_test

import rego.v1

import data.secmlops.gate

good := {
	"now": "2026-11-30T00:00:00Z",
	"stage": "register",
	"model": {"name": "fraud", "version": "3", "format": "safetensors"},
	"signature": {"present": true, "verified": true, "signer": "ml-release@bank.example"},
	"findings": [{"rule_id": "MODEL-FORMAT-UNKNOWN", "severity": "medium", "message": "x", "location": {}, "evidence": {}}],
	"metrics": {"accuracy": 0.93},
	"production": {"metrics": {"accuracy": 0.94}},
	"fairness": {"tpr": {"a": 0.90, "b": 0.85}},
	"model_card": {"completeness": 1.0, "missing": []},
	"data": {"findings": [], "drift": {"share_drifted": 0.1, "drifted": []}},
	"registrant": "alice",
	"approver": "bob",
	"waivers": [],
}

denied(id, doc) if {
	some v in gate.deny with input as doc
	v.rule_id == id
}

warned(id, doc) if {
	some v in gate.warn with input as doc
	v.rule_id == id
}

vuln := {"rule_id": "DEPS-VULN", "severity": "critical", "message": "RCE", "location": {"package": "torch==2.5.0"}, "evidence": {"id": "GHSA-53q9-r3pm-6pq6"}}

test_good_input_is_allowed if {
	gate.allow with input as good
	count(gate.deny) == 0 with input as good
}

test_missing_signature_denied if denied("POLICY-SIGNATURE-REQUIRED", object.union(good, {"signature": {"present": false}}))

test_absent_signature_object_denied if denied("POLICY-SIGNATURE-REQUIRED", object.remove(good, ["signature"]))

test_unverified_signature_denied if denied("POLICY-SIGNATURE-INVALID", object.union(good, {"signature": {"present": true, "verified": false}}))

test_verified_as_number_is_not_true if denied("POLICY-SIGNATURE-INVALID", object.union(good, {"signature": {"present": true, "verified": 1}}))

test_high_vulnerability_denied if denied("POLICY-VULNERABLE-DEPENDENCY", object.union(good, {"findings": [vuln]}))

test_medium_vulnerability_allowed if {
	doc := object.union(good, {"findings": [object.union(vuln, {"severity": "medium"})]})
	not denied("POLICY-VULNERABLE-DEPENDENCY", doc)
}

test_live_waiver_lifts_vulnerability if {
	w := {"rule_id": "POLICY-VULNERABLE-DEPENDENCY", "scope": "torch==2.5.0 GHSA-53q9-r3pm-6pq6", "reason": "not reachable", "approver": "sec", "expires": "2026-12-31T00:00:00Z"}
	doc := object.union(good, {"findings": [vuln], "waivers": [w]})
	not denied("POLICY-VULNERABLE-DEPENDENCY", doc)
	warned("POLICY-WAIVER-USED", doc)
}

test_expired_waiver_stops_counting if {
	w := {"rule_id": "POLICY-VULNERABLE-DEPENDENCY", "scope": "*", "reason": "old", "approver": "sec", "expires": "2026-11-29T00:00:00Z"}
	doc := object.union(good, {"findings": [vuln], "waivers": [w]})
	denied("POLICY-VULNERABLE-DEPENDENCY", doc)
	warned("POLICY-WAIVER-EXPIRED", doc)
}

test_waiver_for_other_rule_does_not_apply if {
	w := {"rule_id": "POLICY-FAIRNESS-GAP", "scope": "*", "reason": "x", "approver": "sec", "expires": "2027-01-01T00:00:00Z"}
	denied("POLICY-VULNERABLE-DEPENDENCY", object.union(good, {"findings": [vuln], "waivers": [w]}))
}

test_pickle_exec_finding_denied if {
	f := {"rule_id": "MODEL-PICKLE-EXEC", "severity": "critical", "message": "os.system", "location": {"path": "m.pt"}, "evidence": {}}
	denied("POLICY-UNSAFE-SERIALIZATION", object.union(good, {"findings": [f]}))
}

test_pickle_format_denied if denied("POLICY-UNSAFE-SERIALIZATION", object.union(good, {"model": {"name": "fraud", "format": "pickle"}}))

test_metric_below_threshold_denied if denied("POLICY-METRIC-BELOW-THRESHOLD", object.union(good, {"metrics": {"accuracy": 0.5}, "production": {}}))

test_metric_missing_denied if denied("POLICY-METRIC-MISSING", object.remove(good, ["metrics"]))

test_metric_not_a_number_denied if denied("POLICY-METRIC-MISSING", object.union(good, {"metrics": {"accuracy": "0.99"}}))

test_metric_regression_denied if denied("POLICY-METRIC-REGRESSION", object.union(good, {"metrics": {"accuracy": 0.90}}))

test_small_regression_allowed if not denied("POLICY-METRIC-REGRESSION", object.union(good, {"metrics": {"accuracy": 0.93}}))

test_fairness_gap_denied if denied("POLICY-FAIRNESS-GAP", object.union(good, {"fairness": {"tpr": {"a": 0.9, "b": 0.7}}}))

test_model_card_missing_denied if denied("POLICY-MODEL-CARD-MISSING", object.remove(good, ["model_card"]))

test_model_card_incomplete_denied if denied("POLICY-MODEL-CARD-INCOMPLETE", object.union(good, {"model_card": {"completeness": 0.5, "missing": ["datasets"]}}))

test_model_card_nearly_complete_warns if {
	doc := object.union(good, {"model_card": {"completeness": 0.9, "missing": ["limitations"]}})
	not denied("POLICY-MODEL-CARD-INCOMPLETE", doc)
	warned("POLICY-MODEL-CARD-INCOMPLETE", doc)
}

test_pii_in_training_data_denied if {
	f := {"rule_id": "PII-COLUMN", "severity": "high", "message": "e-mail addresses", "location": {"column": "email"}, "evidence": {}}
	denied("POLICY-TRAINING-DATA-SENSITIVE", object.union(good, {"data": {"findings": [f]}}))
}

test_low_data_finding_allowed if {
	f := {"rule_id": "PII-IP", "severity": "low", "message": "private IP", "location": {"column": "host"}, "evidence": {}}
	not denied("POLICY-TRAINING-DATA-SENSITIVE", object.union(good, {"data": {"findings": [f]}}))
}

test_drift_denied if denied("POLICY-DATA-DRIFT", object.union(good, {"data": {"drift": {"share_drifted": 0.5}}}))

test_self_approval_denied if denied("POLICY-SEPARATION-OF-DUTIES", object.union(good, {"approver": "alice"}))

test_promotion_without_approver_denied if denied("POLICY-APPROVAL-MISSING", object.remove(object.union(good, {"stage": "promote"}), ["approver"]))

test_registration_without_approver_allowed if not denied("POLICY-APPROVAL-MISSING", object.remove(good, ["approver"]))
