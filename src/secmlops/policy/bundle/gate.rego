# The default gate of secmlops. Every deny/warn rule returns {rule_id, severity, msg, controls[]}.
# Thresholds live in data.gate (data/gate.json); users extend or replace this bundle with their own
# folder (`--bundle DIR`). Input document: docs/policy.md.
package secmlops.gate

import rego.v1

cfg := data.gate

rank(sev) := cfg.severity_rank[lower(sev)]

at_least(sev, floor) if rank(sev) >= rank(floor)

has_prefix(id, prefixes) if {
	some p in prefixes
	startswith(id, p)
}

# --- waivers: rule id + scope, with an expiry after which they stop counting -------------------

now_ns := time.parse_rfc3339_ns(input.now) if input.now
else := time.now_ns()

live_waiver(w) if time.parse_rfc3339_ns(w.expires) > now_ns

waived(rule_id, subject) if {
	some w in object.get(input, "waivers", [])
	w.rule_id == rule_id
	w.scope in {"*", subject, object.get(object.get(input, "model", {}), "name", "")}
	live_waiver(w)
}

# Candidate violations carry a subject (what a waiver can scope to); deny drops the waived ones.
deny contains v if {
	some c in candidates
	not waived(c.rule_id, c.subject)
	v := object.remove(c, ["subject"])
}

warn contains v if {
	some c in candidates
	waived(c.rule_id, c.subject)
	v := {
		"rule_id": "POLICY-WAIVER-USED",
		"severity": "info",
		"msg": sprintf("%s on %s waived: %s", [c.rule_id, c.subject, c.msg]),
		"controls": ["ISO42001:A.6.2.8"],
	}
}

warn contains v if {
	some w in object.get(input, "waivers", [])
	not live_waiver(w)
	v := {
		"rule_id": "POLICY-WAIVER-EXPIRED",
		"severity": "low",
		"msg": sprintf("waiver for %s (%s) expired on %s and no longer counts", [w.rule_id, w.scope, w.expires]),
		"controls": ["ISO42001:A.6.2.8"],
	}
}

allow if count(deny) == 0

decision := {"allow": allow, "deny": deny, "warn": warn}
