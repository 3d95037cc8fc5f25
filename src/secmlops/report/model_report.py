"""`secmlops report MODEL`: the evidence an auditor asks for, as HTML, JSON and OSCAL.

Everything comes from the registry (what the gate saw and decided at registration and promotion,
the lineage) and the audit log; nothing is recomputed or invented. Controls without evidence are
shown as "not assessed", never as satisfied.
"""

from __future__ import annotations

import base64
import io
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from secmlops import __version__
from secmlops.report.controls_map import CONTROL_MAP, RULE_TO_CONTROL
from secmlops.store.audit import AuditVerification
from secmlops.store.registry import VersionInfo

_NAMESPACE = uuid.UUID("6f1c7f0e-3d1b-4a52-9b0e-5ec3a1f0c0de")


def _evidence_present(key: str, facts: Mapping[str, Any], info: VersionInfo) -> bool:
    data = facts.get("data", {}) if isinstance(facts.get("data"), Mapping) else {}
    return {
        "model_scan": "findings" in facts,
        "signature": "signature" in facts,
        "dependencies": any(str(f.get("rule_id", "")).startswith("DEPS-") for f in facts.get("findings", []))
        or bool(facts.get("dependencies")),
        "metrics": bool(facts.get("metrics")),
        "fairness": bool(facts.get("fairness")),
        "model_card": bool(facts.get("model_card")),
        "training_data": "findings" in data and bool(data.get("scanned", True)),
        "drift": "drift" in data,
        "separation_of_duties": bool(facts.get("registrant")),
        "lineage": bool(info.lineage),
        "audit": True,
    }.get(key, False)  # fmt: skip


def build_model_report(info: VersionInfo, audit: AuditVerification | None) -> dict[str, Any]:
    """The report as a JSON-ready document."""
    facts = dict(info.facts)
    denied = {RULE_TO_CONTROL.get(v["rule_id"]) for v in info.decision.get("deny", [])}
    controls = []
    for title, key, ids in CONTROL_MAP:
        if key == "audit":
            status = (
                "not assessed" if audit is None else ("satisfied" if audit.ok else "not satisfied")
            )
        elif key in denied:
            status = "not satisfied"
        elif _evidence_present(key, facts, info):
            status = "satisfied"
        else:
            status = "not assessed"
        controls.append({"control": key, "title": title, "status": status, "mappings": list(ids)})
    return {
        "tool": "secmlops",
        "version": __version__,
        "generated": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "model": info.to_dict(),
        "model_card": facts.get("model_card", {}),
        "metrics": facts.get("metrics", {}),
        "production_metrics": facts.get("production", {}).get("metrics", {}),
        "fairness": facts.get("fairness", {}),
        "signature": facts.get("signature", {}),
        "findings": facts.get("findings", []),
        "data_findings": facts.get("data", {}).get("findings", []),
        "decision": info.decision,
        "controls": controls,
        "audit": None if audit is None else
        {"records": audit.records, "checkpoints": audit.checkpoints, "problems": list(audit.problems)},
    }  # fmt: skip


def _bar_png(title: str, values: Mapping[str, float]) -> str:
    """A small bar chart as a data: URI (matplotlib, no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 2.4), dpi=100)
    names = list(values)
    ax.bar(names, [float(values[n]) for n in names], color="#3b6ea5")
    ax.set_title(title)
    ax.set_ylim(0, max(1.0, *(float(v) for v in values.values())))
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>secmlops report: {{ m.name }}@{{ m.version }}</title>
<style>body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;color:#222}
table{border-collapse:collapse;margin:.5rem 0 1.5rem}td,th{border:1px solid #ccc;padding:.3rem .6rem;text-align:left;vertical-align:top}
.satisfied{color:#1a7f37}.not-satisfied{color:#b42318;font-weight:600}.not-assessed{color:#8a6d00}
code{font-size:.85em}</style></head><body>
<h1>{{ m.name }}@{{ m.version }}</h1>
<p>Registered by {{ m.registrant }} at {{ m.created_at }}; aliases: {{ m.aliases|join(", ") or "none" }}.
Gate decision at registration: <b class="{{ 'satisfied' if d.allow else 'not-satisfied' }}">{{ "allowed" if d.allow else "denied" }}</b>.
Report generated {{ r.generated }} by secmlops {{ r.version }}.</p>
<p>Manifest <code>{{ m.manifest }}</code><br>Signature <code>{{ m.signature }}</code>
{% if r.signature %} — {{ "verified" if r.signature.verified else "NOT verified" }}{% if r.signature.signer %} (signer: {{ r.signature.signer }}){% endif %}{% endif %}</p>
<h2>Controls</h2>
<table><tr><th>control</th><th>status</th><th>NIST AI RMF / ISO/IEC 42001</th></tr>
{% for c in r.controls %}<tr><td>{{ c.title }}</td><td class="{{ c.status|replace(' ', '-') }}">{{ c.status }}</td><td>{{ c.mappings|join(", ") }}</td></tr>{% endfor %}</table>
<h2>Model card</h2>
{% if r.model_card %}<table>{% for k, v in r.model_card.items() %}<tr><th>{{ k }}</th><td>{{ v }}</td></tr>{% endfor %}</table>{% else %}<p>No model card was recorded.</p>{% endif %}
<h2>Metrics</h2>
{% if r.metrics %}<table><tr><th>metric</th><th>value</th><th>production</th></tr>
{% for k, v in r.metrics.items() %}<tr><td>{{ k }}</td><td>{{ v }}</td><td>{{ r.production_metrics.get(k, "") }}</td></tr>{% endfor %}</table>
<img alt="metrics" src="{{ plots.metrics }}">{% else %}<p>No metrics were recorded.</p>{% endif %}
<h2>Fairness</h2>
{% for metric, groups in r.fairness.items() %}<h3>{{ metric }}</h3><table><tr><th>group</th><th>value</th></tr>
{% for g, v in groups.items() %}<tr><td>{{ g }}</td><td>{{ v }}</td></tr>{% endfor %}</table>
<img alt="{{ metric }}" src="{{ plots['fairness:' ~ metric] }}">{% else %}<p>No fairness measurements were recorded.</p>{% endfor %}
<h2>Decisions</h2>
<table><tr><th></th><th>rule</th><th>severity</th><th>message</th></tr>
{% for v in d.deny %}<tr><td class="not-satisfied">deny</td><td>{{ v.rule_id }}</td><td>{{ v.severity }}</td><td>{{ v.msg }}</td></tr>{% endfor %}
{% for v in d.warn %}<tr><td class="not-assessed">warn</td><td>{{ v.rule_id }}</td><td>{{ v.severity }}</td><td>{{ v.msg }}</td></tr>{% endfor %}
{% if not d.deny and not d.warn %}<tr><td colspan="4">No deny or warn rule fired.</td></tr>{% endif %}</table>
<h2>Scan findings</h2>
{% set all = r.findings + r.data_findings %}{% if all %}<table><tr><th>rule</th><th>severity</th><th>message</th></tr>
{% for f in all %}<tr><td>{{ f.rule_id }}</td><td>{{ f.severity }}</td><td>{{ f.message }}</td></tr>{% endfor %}</table>{% else %}<p>No findings.</p>{% endif %}
<h2>Lineage</h2>
{% if m.lineage %}<table><tr><th>kind</th><th>reference</th><th>detail</th></tr>
{% for e in m.lineage %}<tr><td>{{ e.kind }}</td><td><code>{{ e.ref }}</code></td><td>{{ e.detail }}</td></tr>{% endfor %}</table>{% else %}<p>No lineage was recorded.</p>{% endif %}
<h2>Audit log</h2>
{% if r.audit is none %}<p>Not checked.</p>{% elif r.audit.problems %}<p class="not-satisfied">TAMPERED:</p><ul>{% for p in r.audit.problems %}<li>{{ p }}</li>{% endfor %}</ul>
{% else %}<p class="satisfied">{{ r.audit.records }} records and {{ r.audit.checkpoints }} signed checkpoints verified intact.</p>{% endif %}
</body></html>
"""


def render_html(report: Mapping[str, Any]) -> str:
    """HTML with every user-supplied string escaped (model cards and messages are untrusted)."""
    from jinja2 import Environment

    plots: dict[str, str] = {}
    metrics = {k: v for k, v in report["metrics"].items() if isinstance(v, int | float)}
    if metrics:
        plots["metrics"] = _bar_png("metrics", metrics)
    for metric, groups in report["fairness"].items():
        if isinstance(groups, Mapping):
            numeric = {k: v for k, v in groups.items() if isinstance(v, int | float)}
            if numeric:
                plots[f"fairness:{metric}"] = _bar_png(metric, numeric)
    env = Environment(autoescape=True)
    return env.from_string(_TEMPLATE).render(
        r=report, m=report["model"], d=report["decision"], plots=plots
    )


def render_oscal(report: Mapping[str, Any]) -> dict[str, Any]:
    """The controls and findings as an OSCAL 1.1 assessment-results document."""
    model = report["model"]
    subject = f"{model['name']}@{model['version']}"

    def uid(*parts: str) -> str:
        return str(uuid.uuid5(_NAMESPACE, "/".join((subject, *parts))))

    observations = []
    findings = []
    for c in report["controls"]:
        obs_id = uid("obs", c["control"])
        observations.append({
            "uuid": obs_id, "title": c["title"],
            "description": f"secmlops control {c['control']}: {c['status']}",
            "methods": ["TEST"], "collected": report["generated"],
            "subjects": [{"subject-uuid": uid("subject"), "type": "component"}],
        })  # fmt: skip
        state = "satisfied" if c["status"] == "satisfied" else "not-satisfied"
        for target in c["mappings"]:
            findings.append({
                "uuid": uid("finding", c["control"], target), "title": f"{c['title']} ({target})",
                "description": f"{c['status']} for {subject}",
                "target": {"type": "objective-id", "target-id": target.lower().replace(":", "_"),
                           "status": {"state": state},
                           "props": [{"name": "framework", "value": target.split(":")[0]}]},
                "related-observations": [{"observation-uuid": obs_id}],
            })  # fmt: skip
    return {
        "assessment-results": {
            "uuid": uid("assessment-results", report["generated"]),
            "metadata": {
                "title": f"secmlops assessment of {subject}",
                "last-modified": report["generated"],
                "version": report["version"],
                "oscal-version": "1.1.2",
            },
            "import-ap": {"href": "#secmlops-default-assessment-plan"},
            "results": [
                {
                    "uuid": uid("result", report["generated"]),
                    "title": f"Gate and control evidence for {subject}",
                    "description": "Controls assessed by secmlops from registry facts, decisions and the audit log.",
                    "start": model["created_at"],
                    "reviewed-controls": {"control-selections": [{"include-all": {}}]},
                    "observations": observations,
                    "findings": findings,
                }
            ],
        }
    }
