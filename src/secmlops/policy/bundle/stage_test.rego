package secmlops.stage_test

import rego.v1

import data.secmlops.stage

finding(sev) := {"rule_id": "DATA-POISON-LABEL", "severity": sev, "message": "flipped labels", "controls": []}

test_clean_stage_allowed if stage.allow with input as {"stage": "prepare", "findings": [finding("low")]}

test_high_finding_stops_the_stage if not stage.allow with input as {"stage": "prepare", "findings": [finding("high")]}

test_medium_finding_warns if {
	count(stage.warn) == 1 with input as {"stage": "prepare", "findings": [finding("medium")]}
	stage.allow with input as {"stage": "prepare", "findings": [finding("medium")]}
}

test_incomplete_check_stops_the_stage if not stage.allow with input as {"stage": "ingest", "errors": [{"message": "truncated parquet"}]}

label_issues(share) := {"rule_id": "DATA-POISON-LABEL", "severity": "medium", "message": "m", "controls": [], "evidence": {"share": share}}

test_natural_label_noise_passes if stage.allow with input as {"stage": "prepare", "findings": [label_issues(0.014)]}

test_flipped_labels_stop_the_stage if not stage.allow with input as {"stage": "prepare", "findings": [label_issues(0.059)]}
