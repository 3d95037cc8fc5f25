# The deny candidates of the default gate. Each has a subject that a waiver can name as its scope.
package secmlops.gate

import rego.v1

model_name := object.get(object.get(input, "model", {}), "name", "model")

findings := object.get(input, "findings", [])

# --- signature required and verified ---------------------------------------------------------
candidates contains c if {
	not input.signature.present == true
	c := {
		"rule_id": "POLICY-SIGNATURE-REQUIRED", "severity": "critical", "subject": model_name,
		"msg": sprintf("model %s has no signature: no signature, no deploy", [model_name]),
		"controls": ["NIST-AI-RMF:MANAGE-2.2", "ISO42001:A.7.5"],
	}
}

candidates contains c if {
	input.signature.present == true
	not input.signature.verified == true
	c := {
		"rule_id": "POLICY-SIGNATURE-INVALID", "severity": "critical", "subject": model_name,
		"msg": sprintf("the signature of %s does not verify: %s", [model_name, object.get(input.signature, "reason", "no reason given")]),
		"controls": ["NIST-AI-RMF:MANAGE-2.2", "ISO42001:A.7.5"],
	}
}

# --- no critical/high vulnerabilities (or malicious packages) without a live waiver -----------
candidates contains c if {
	some f in findings
	has_prefix(f.rule_id, cfg.vulnerability_rule_prefixes)
	at_least(f.severity, cfg.vulnerability_min_severity)
	subject := vulnerability_subject(f)
	c := {
		"rule_id": "POLICY-VULNERABLE-DEPENDENCY", "severity": lower(f.severity), "subject": subject,
		"msg": sprintf("%s: %s", [subject, f.message]),
		"controls": ["NIST-AI-RMF:GOVERN-6.1", "ISO42001:A.10.3"],
	}
}

vulnerability_subject(f) := sprintf("%s %s", [f.location.package, f.evidence.id]) if {
	f.location.package
	f.evidence.id
} else := object.get(object.get(f, "location", {}), "package", f.rule_id)

# --- no unsafe serialization -------------------------------------------------------------------
candidates contains c if {
	some f in findings
	has_prefix(f.rule_id, cfg.serialization_rule_prefixes)
	at_least(f.severity, cfg.serialization_min_severity)
	c := {
		"rule_id": "POLICY-UNSAFE-SERIALIZATION", "severity": "critical", "subject": model_name,
		"msg": sprintf("%s: %s", [f.rule_id, f.message]),
		"controls": ["NIST-AI-RMF:MANAGE-2.2", "ISO42001:A.6.2.6"],
	}
}

candidates contains c if {
	lower(object.get(object.get(input, "model", {}), "format", "")) in {f | some f in cfg.unsafe_formats}
	c := {
		"rule_id": "POLICY-UNSAFE-SERIALIZATION", "severity": "high", "subject": model_name,
		"msg": sprintf("model %s is stored as %s, a format that runs code when loaded; use safetensors, ONNX or skops", [model_name, input.model.format]),
		"controls": ["NIST-AI-RMF:MANAGE-2.2", "ISO42001:A.6.2.6"],
	}
}

# --- metrics above thresholds and not regressed against production ----------------------------
candidates contains c if {
	some name, floor in cfg.metrics.min
	value := object.get(object.get(input, "metrics", {}), name, null)
	not is_number(value)
	c := {
		"rule_id": "POLICY-METRIC-MISSING", "severity": "high", "subject": name,
		"msg": sprintf("metric %s is required (>= %v) but was not reported", [name, floor]),
		"controls": ["NIST-AI-RMF:MEASURE-2.3", "ISO42001:A.6.2.4"],
	}
}

candidates contains c if {
	some name, floor in cfg.metrics.min
	value := input.metrics[name]
	is_number(value)
	value < floor
	c := {
		"rule_id": "POLICY-METRIC-BELOW-THRESHOLD", "severity": "high", "subject": name,
		"msg": sprintf("%s = %v is below the threshold %v", [name, value, floor]),
		"controls": ["NIST-AI-RMF:MEASURE-2.3", "ISO42001:A.6.2.4"],
	}
}

candidates contains c if {
	some name, prod in input.production.metrics
	value := input.metrics[name]
	is_number(value)
	is_number(prod)
	prod - value > cfg.metrics.max_regression
	c := {
		"rule_id": "POLICY-METRIC-REGRESSION", "severity": "high", "subject": name,
		"msg": sprintf("%s = %v regressed from %v in production (allowed drop %v)", [name, value, prod, cfg.metrics.max_regression]),
		"controls": ["NIST-AI-RMF:MEASURE-2.3", "ISO42001:A.6.2.4"],
	}
}

# --- fairness gap between groups below a bound --------------------------------------------------
candidates contains c if {
	some metric, groups in input.fairness
	values := [v | some _, v in groups]
	count(values) >= 2
	gap := max(values) - min(values)
	gap > cfg.fairness.max_gap
	c := {
		"rule_id": "POLICY-FAIRNESS-GAP", "severity": "high", "subject": metric,
		"msg": sprintf("%s differs by %.3f between groups (bound %v): %v", [metric, gap, cfg.fairness.max_gap, groups]),
		"controls": ["NIST-AI-RMF:MEASURE-2.11", "ISO42001:A.7.4"],
	}
}

# --- model card complete -------------------------------------------------------------------------
candidates contains c if {
	not input.model_card
	c := {
		"rule_id": "POLICY-MODEL-CARD-MISSING", "severity": "medium", "subject": model_name,
		"msg": sprintf("model %s has no model card", [model_name]),
		"controls": ["NIST-AI-RMF:MAP-4.1", "ISO42001:A.6.2.7"],
	}
}

candidates contains c if {
	input.model_card.completeness < cfg.model_card.min_completeness
	c := {
		"rule_id": "POLICY-MODEL-CARD-INCOMPLETE", "severity": "medium", "subject": model_name,
		"msg": sprintf("model card %v complete (minimum %v); missing: %v", [input.model_card.completeness, cfg.model_card.min_completeness, object.get(input.model_card, "missing", [])]),
		"controls": ["NIST-AI-RMF:MAP-4.1", "ISO42001:A.6.2.7"],
	}
}

warn contains v if {
	input.model_card.completeness >= cfg.model_card.min_completeness
	input.model_card.completeness < cfg.model_card.warn_below
	v := {
		"rule_id": "POLICY-MODEL-CARD-INCOMPLETE", "severity": "low",
		"msg": sprintf("model card fields still missing: %v", [object.get(input.model_card, "missing", [])]),
		"controls": ["NIST-AI-RMF:MAP-4.1", "ISO42001:A.6.2.7"],
	}
}

# --- no PII columns or secrets in training data ---------------------------------------------------
candidates contains c if {
	some f in object.get(object.get(input, "data", {}), "findings", [])
	has_prefix(f.rule_id, cfg.training_data_rule_prefixes)
	at_least(f.severity, cfg.training_data_min_severity)
	subject := object.get(object.get(f, "location", {}), "column", object.get(object.get(f, "location", {}), "path", f.rule_id))
	c := {
		"rule_id": "POLICY-TRAINING-DATA-SENSITIVE", "severity": "high", "subject": subject,
		"msg": sprintf("training data contains %s at %s: %s", [f.rule_id, subject, f.message]),
		"controls": ["NIST-AI-RMF:MAP-4.1", "ISO42001:A.7.4"],
	}
}

# --- data drift within bounds ---------------------------------------------------------------------
candidates contains c if {
	share := input.data.drift.share_drifted
	share > cfg.drift.max_share_drifted
	c := {
		"rule_id": "POLICY-DATA-DRIFT", "severity": "high", "subject": model_name,
		"msg": sprintf("%v of features drifted (bound %v): %v", [share, cfg.drift.max_share_drifted, object.get(input.data.drift, "drifted", [])]),
		"controls": ["NIST-AI-RMF:MEASURE-2.4", "ISO42001:A.6.2.6"],
	}
}

# --- separation of duties: the registrant is not the approver -------------------------------------
candidates contains c if {
	input.stage in {s | some s in cfg.separation_of_duties_stages}
	not input.approver
	c := {
		"rule_id": "POLICY-APPROVAL-MISSING", "severity": "high", "subject": model_name,
		"msg": sprintf("stage %s needs an approver distinct from the registrant", [input.stage]),
		"controls": ["ISO42001:A.3.2", "NIST-AI-RMF:GOVERN-2.1"],
	}
}

candidates contains c if {
	input.approver
	input.approver == input.registrant
	c := {
		"rule_id": "POLICY-SEPARATION-OF-DUTIES", "severity": "high", "subject": model_name,
		"msg": sprintf("%s registered and approved %s: the approver must be someone else", [input.approver, model_name]),
		"controls": ["ISO42001:A.3.2", "NIST-AI-RMF:GOVERN-2.1"],
	}
}
