# The gate between pipeline stages: a stage's own findings at or above the threshold stop the run.
# The register gate (package secmlops.gate) then judges the whole model.
package secmlops.stage

import rego.v1

cfg := data.gate

rank(sev) := cfg.severity_rank[lower(sev)]

deny contains v if {
	some f in object.get(input, "findings", [])
	rank(f.severity) >= rank(cfg.stage_min_severity)
	v := {
		"rule_id": "POLICY-STAGE-FINDING",
		"severity": lower(f.severity),
		"msg": sprintf("stage %s: %s %s", [input.stage, f.rule_id, f.message]),
		"controls": object.get(f, "controls", []),
	}
}

deny contains v if {
	some e in object.get(input, "errors", [])
	v := {
		"rule_id": "POLICY-STAGE-INCOMPLETE",
		"severity": "high",
		"msg": sprintf("stage %s: a check could not complete: %s", [input.stage, e.message]),
		"controls": ["NIST-AI-RMF:MEASURE-2.7"],
	}
}

warn contains v if {
	some f in object.get(input, "findings", [])
	rank(f.severity) < rank(cfg.stage_min_severity)
	rank(f.severity) >= rank("medium")
	v := {
		"rule_id": "POLICY-STAGE-FINDING",
		"severity": lower(f.severity),
		"msg": sprintf("stage %s: %s %s", [input.stage, f.rule_id, f.message]),
		"controls": object.get(f, "controls", []),
	}
}

allow if count(deny) == 0

# Label issues are found in every real data set (noise); a share above the bound is poisoning.
deny contains v if {
	some f in object.get(input, "findings", [])
	f.rule_id == "DATA-POISON-LABEL"
	f.evidence.share > cfg.poisoning.max_label_issue_share
	v := {
		"rule_id": "POLICY-POISONED-DATA",
		"severity": "high",
		"msg": sprintf("stage %s: %v of rows look mislabelled (bound %v): %s", [input.stage, f.evidence.share, cfg.poisoning.max_label_issue_share, f.message]),
		"controls": ["NIST-AI-RMF:MEASURE-2.7", "ISO42001:A.7.4"],
	}
}
