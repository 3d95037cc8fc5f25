"""The AI-BOM: CycloneDX 1.6 validity, card fields in place, nothing invented, packages, errors."""

from __future__ import annotations

import contextlib
import hashlib
import json
import pickle
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secmlops.errors import Error, EvidenceError
from secmlops.evidence.bom import BomResult, build_bom, validate_bom
from secmlops.evidence.bom_card import RECOMMENDED_FIELDS, load_card
from secmlops.evidence.packages import Package, installed_packages, lockfile_packages, purl_for
from secmlops.findings import Severity

FULL_CARD = """
name: churn-model
version: "2.1.0"
description: Predicts customer churn.
supplier: Example ML team
license: apache-2.0
approach: supervised
task: classification
architectureFamily: gradient boosted trees
modelArchitecture: HistGradientBoostingClassifier
inputs: [tabular]
outputs: [label]
datasets:
  - name: train
    path: data/train.csv
    classification: confidential
    sensitiveData: [customer ids]
    use: training
  - name: holdout
    url: https://data.example.com/holdout.csv
    classification: internal
    use: testing
metrics:
  - type: accuracy
    value: 0.91
    slice: holdout
    confidenceInterval: {lowerBound: 0.89, upperBound: 0.93}
considerations:
  users: [retention analysts]
  useCases: [weekly churn ranking]
  technicalLimitations: [not calibrated for new markets]
  performanceTradeoffs: [recall over precision]
  ethicalConsiderations:
    - name: proxy discrimination by region
      mitigationStrategy: region removed from features
  fairnessAssessments:
    - groupAtRisk: older customers
      harms: fewer retention offers
"""


def _validator() -> Any:
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    return JsonStrictValidator(SchemaVersion.V1_6)


def _assert_schema_valid(result: BomResult) -> None:
    assert _validator().validate_str(result.to_json()) is None


def _component(bom: dict[str, Any], ref: str) -> dict[str, Any]:
    return next(c for c in bom["components"] if c["bom-ref"] == ref)


def _props(component: dict[str, Any], name: str) -> list[str]:
    return [p["value"] for p in component.get("properties", []) if p["name"] == name]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "train.csv").write_text("x,y\n1,0\n")
    (tmp_path / "model.pkl").write_bytes(pickle.dumps({"w": [0.5]}, protocol=4))
    (tmp_path / "card.yaml").write_text(FULL_CARD)
    return tmp_path


PACKAGES = [
    Package("numpy", "2.1.0", source="requirements.txt"),
    Package("scikit-learn", "1.5.2", ("numpy", "scipy"), source="requirements.txt"),
    Package(
        "scipy", "1.14.1", ("numpy",), hashes=("sha256:" + "cd" * 32,), source="requirements.txt"
    ),
]


def test_file_model_with_full_card(project: Path) -> None:
    card = load_card(project / "card.yaml")
    result = build_bom(project / "model.pkl", card, PACKAGES, card_path=project / "card.yaml")
    _assert_schema_valid(result)
    bom = result.bom
    assert bom["bomFormat"] == "CycloneDX" and bom["specVersion"] == "1.6"
    model = _component(bom, "model")
    assert model["type"] == "machine-learning-model"
    assert model["name"] == "churn-model" and model["version"] == "2.1.0"
    assert model["hashes"] == [
        {
            "alg": "SHA-256",
            "content": hashlib.sha256((project / "model.pkl").read_bytes()).hexdigest(),
        }
    ]
    assert _props(model, "secmlops:format") == ["pickle"]  # sniffed from the bytes
    assert model["licenses"] == [{"license": {"id": "Apache-2.0"}}]
    assert model["supplier"] == {"name": "Example ML team"}
    card_json = model["modelCard"]
    params = card_json["modelParameters"]
    assert params["approach"] == {"type": "supervised"}
    assert params["task"] == "classification"
    assert params["architectureFamily"] == "gradient boosted trees"
    assert params["modelArchitecture"] == "HistGradientBoostingClassifier"
    assert params["inputs"] == [{"format": "tabular"}] and params["outputs"] == [
        {"format": "label"}
    ]
    assert params["datasets"] == [{"ref": "dataset/train"}, {"ref": "dataset/holdout"}]
    assert card_json["quantitativeAnalysis"]["performanceMetrics"] == [
        {
            "type": "accuracy",
            "value": "0.91",
            "slice": "holdout",
            "confidenceInterval": {"lowerBound": "0.89", "upperBound": "0.93"},
        }
    ]
    cons = card_json["considerations"]
    assert cons["ethicalConsiderations"] == [
        {
            "name": "proxy discrimination by region",
            "mitigationStrategy": "region removed from features",
        }
    ]
    assert cons["fairnessAssessments"] == [
        {"groupAtRisk": "older customers", "harms": "fewer retention offers"}
    ]
    assert cons["useCases"] == ["weekly churn ranking"]
    train = _component(bom, "dataset/train")
    assert train["type"] == "data"
    assert train["hashes"] == [
        {"alg": "SHA-256", "content": hashlib.sha256(b"x,y\n1,0\n").hexdigest()}
    ]
    assert train["data"] == [
        {
            "type": "dataset",
            "name": "train",
            "classification": "confidential",
            "sensitiveData": ["customer ids"],
        }
    ]
    assert _props(train, "secmlops:use") == ["training"]
    holdout = _component(bom, "dataset/holdout")
    assert "hashes" not in holdout and holdout["data"][0]["contents"] == {
        "url": "https://data.example.com/holdout.csv"
    }
    # complete card: no BOM-INCOMPLETE, only the dataset without a digest
    assert result.completeness == 1.0 and result.missing == ()
    assert [f.rule_id for f in result.report.findings] == ["BOM-DATASET-NO-DIGEST"]
    assert _props(model["modelCard"], "secmlops:card:completeness") == ["1.0"]


def test_packages_purls_hashes_and_graph(project: Path) -> None:
    result = build_bom(project / "model.pkl", None, PACKAGES)
    _assert_schema_valid(result)
    bom = result.bom
    sklearn = _component(bom, "pkg:pypi/scikit-learn@1.5.2")
    assert sklearn["type"] == "library" and sklearn["purl"] == "pkg:pypi/scikit-learn@1.5.2"
    assert _component(bom, "pkg:pypi/scipy@1.14.1")["hashes"] == [
        {"alg": "SHA-256", "content": "cd" * 32}
    ]
    deps = {d["ref"]: d["dependsOn"] for d in bom["dependencies"]}
    # the model depends on the packages nothing else requires; the rest hang below them
    assert deps["model"] == ["pkg:pypi/scikit-learn@1.5.2"]
    assert deps["pkg:pypi/scikit-learn@1.5.2"] == ["pkg:pypi/numpy@2.1.0", "pkg:pypi/scipy@1.14.1"]
    assert deps["pkg:pypi/scipy@1.14.1"] == ["pkg:pypi/numpy@2.1.0"]
    assert deps["pkg:pypi/numpy@2.1.0"] == []


def test_folder_model_lists_each_file(project: Path) -> None:
    folder = project / "folder-model"
    (folder / "tokenizer").mkdir(parents=True)
    (folder / "model.pkl").write_bytes((project / "model.pkl").read_bytes())
    (folder / "tokenizer" / "vocab.txt").write_text("a\nb\n")
    result = build_bom(folder, None, [])
    _assert_schema_valid(result)
    model = _component(result.bom, "model")
    assert model["name"] == "folder-model" and "hashes" not in model
    files = {c["name"]: c for c in model["components"]}
    assert set(files) == {"model.pkl", "tokenizer/vocab.txt"}
    assert files["tokenizer/vocab.txt"]["type"] == "file"
    assert (
        files["tokenizer/vocab.txt"]["hashes"][0]["content"]
        == hashlib.sha256(b"a\nb\n").hexdigest()
    )
    assert _props(files["model.pkl"], "secmlops:format") == ["pickle"]
    assert _props(files["tokenizer/vocab.txt"], "secmlops:format") == []
    assert _props(model, "secmlops:files") == ["2"]


def test_safetensors_model_format_is_sniffed(tmp_path: Path) -> None:
    import numpy as np
    from safetensors.numpy import save_file

    path = tmp_path / "weights.bin"  # the name says nothing: the bytes decide
    save_file({"w": np.zeros((2, 2), dtype=np.float32)}, str(path))
    result = build_bom(path, None, [])
    assert _props(_component(result.bom, "model"), "secmlops:format") == ["safetensors"]


def test_no_card_invents_nothing(project: Path) -> None:
    result = build_bom(project / "model.pkl", None, [])
    _assert_schema_valid(result)
    model = _component(result.bom, "model")
    assert model["name"] == "model.pkl"
    for invented in ("version", "description", "supplier", "licenses"):
        assert invented not in model
    assert set(model["modelCard"]) == {"properties"}
    assert result.completeness == 0.0 and result.missing == RECOMMENDED_FIELDS
    assert _props(model["modelCard"], "secmlops:card:missing") == list(RECOMMENDED_FIELDS)
    (finding,) = result.report.findings
    assert finding.rule_id == "BOM-INCOMPLETE" and finding.severity == Severity.MEDIUM
    assert finding.evidence["missing"] == list(RECOMMENDED_FIELDS)


def test_partial_card_scores_and_names_missing_fields(project: Path) -> None:
    card_path = project / "partial.yaml"
    lines = [
        line
        for line in FULL_CARD.splitlines()
        if not line.startswith(("task:", "license:", "inputs:"))
    ]
    card_path.write_text("\n".join(lines))
    result = build_bom(project / "model.pkl", load_card(card_path), [], card_path=card_path)
    assert result.missing == ("license", "task", "inputs")
    assert result.completeness == round(1 - 3 / len(RECOMMENDED_FIELDS), 3)
    incomplete = next(f for f in result.report.findings if f.rule_id == "BOM-INCOMPLETE")
    assert incomplete.severity == Severity.LOW
    assert "missing: license, task, inputs" in incomplete.message
    assert incomplete.location.path == str(card_path)
    params = _component(result.bom, "model")["modelCard"]["modelParameters"]
    assert "task" not in params and "inputs" not in params


def test_dataset_without_classification_is_missing(project: Path) -> None:
    card_path = project / "c.yaml"
    card_path.write_text("datasets:\n  - path: data\n")
    result = build_bom(project / "model.pkl", load_card(card_path), [], card_path=card_path)
    assert "datasets[].classification" in result.missing and "datasets" not in result.missing
    data = _component(result.bom, "dataset/data")
    assert data["components"][0]["name"] == "train.csv"  # a folder dataset lists its files
    assert "classification" not in data["data"][0]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("task: [unclosed\n", "not valid YAML"),
        ("- a list\n- not a mapping\n", "must be a mapping"),
        ("task: classification\ntaks: typo\n", "taks: Extra inputs are not permitted"),
        ("version: 2.1\n", "version: Input should be a valid string"),
        ("inputs: tabular\n", "inputs: Input should be a valid list"),
        ("approach: guessing\n", "approach"),
        ("datasets:\n  - classification: public\n", "needs at least a path, a url or a name"),
        ("metrics:\n  - type: accuracy\n", "metrics.0.value: Field required"),
        ("task: '  '\n", "task: Value error, must not be empty"),
        ("considerations:\n  users: [a]\n  extra: 1\n", "considerations.extra"),
        ("a: &a [*a]\n", "model card"),
    ],
    ids=[
        "yaml",
        "list",
        "unknown-key",
        "float-version",
        "wrong-type",
        "enum",
        "dataset",
        "metric",
        "blank",
        "nested-unknown",
        "recursive-alias",
    ],
)
def test_bad_cards_get_clear_errors(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "card.yaml"
    path.write_text(text)
    with pytest.raises(EvidenceError, match=message.replace("[", r"\[").replace(".", r"\.")):
        load_card(path)


def test_unreadable_cards(tmp_path: Path) -> None:
    (tmp_path / "latin1.yaml").write_bytes(b"task: caf\xe9\n")
    with pytest.raises(EvidenceError, match="not UTF-8"):
        load_card(tmp_path / "latin1.yaml")
    with pytest.raises(EvidenceError, match="cannot read"):
        load_card(tmp_path / "absent.yaml")
    (tmp_path / "empty.yaml").write_text("")
    assert load_card(tmp_path / "empty.yaml").card.task is None


def test_dataset_path_must_exist(project: Path) -> None:
    card_path = project / "c.yaml"
    card_path.write_text("datasets:\n  - path: data/missing.csv\n")
    with pytest.raises(EvidenceError, match="does not exist"):
        build_bom(project / "model.pkl", load_card(card_path), [])


def test_bad_model_paths(tmp_path: Path) -> None:
    with pytest.raises(EvidenceError, match="no such file"):
        build_bom(tmp_path / "absent", None, [])
    (tmp_path / "empty").mkdir()
    with pytest.raises(EvidenceError, match="holds no files"):
        build_bom(tmp_path / "empty", None, [])


def test_validate_bom_rejects_invalid_documents(project: Path) -> None:
    bom = build_bom(project / "model.pkl", None, PACKAGES).bom
    broken = json.loads(json.dumps(bom))
    broken["components"][0]["modelCard"]["modelParameters"] = {"task": 3}
    with pytest.raises(EvidenceError, match=r"not valid CycloneDX 1\.6"):
        validate_bom(broken)
    dangling = json.loads(json.dumps(bom))
    dangling["dependencies"][0]["dependsOn"].append("pkg:pypi/ghost@1")
    with pytest.raises(EvidenceError, match="unknown ref"):
        validate_bom(dangling)


def test_purls_are_normalised() -> None:
    assert purl_for("Foo_Bar.Baz", "1.0") == "pkg:pypi/foo-bar-baz@1.0"
    assert purl_for("torch", "2.3.0+cpu") == "pkg:pypi/torch@2.3.0%2Bcpu"


def test_requirements_lockfile(tmp_path: Path) -> None:
    req = tmp_path / "requirements.txt"
    req.write_text(
        "# pinned\n--index-url https://pypi.org/simple\n"
        "Scikit_Learn==1.5.2 \\\n    --hash=sha256:"
        + "aa" * 32
        + " \\\n    --hash=sha256:"
        + "bb" * 32
        + "\n"
        "numpy==2.1.0 ; python_version >= '3.9'  # via scikit-learn\n"
    )
    packages = {p.name: p for p in lockfile_packages(req)}
    assert packages["scikit-learn"].purl == "pkg:pypi/scikit-learn@1.5.2"
    assert packages["scikit-learn"].hashes == ("sha256:" + "aa" * 32, "sha256:" + "bb" * 32)
    assert packages["numpy"].version == "2.1.0"
    (tmp_path / "loose.txt").write_text("numpy>=2\n")
    with pytest.raises(EvidenceError, match="numpy is not pinned"):
        lockfile_packages(tmp_path / "loose.txt")
    (tmp_path / "junk.txt").write_text("!!!\n")
    with pytest.raises(EvidenceError, match=r"junk\.txt:1: not a requirement"):
        lockfile_packages(tmp_path / "junk.txt")


def test_poetry_and_uv_lockfiles(tmp_path: Path) -> None:
    poetry = tmp_path / "poetry.lock"
    poetry.write_text(
        '[[package]]\nname = "Scikit-Learn"\nversion = "1.5.2"\n'
        '[package.dependencies]\nnumpy = ">=1.19"\njoblib = ">=1.2"\n'
        '[[package.files]]\nfile = "x.whl"\nhash = "sha256:' + "aa" * 32 + '"\n'
        '[[package]]\nname = "numpy"\nversion = "2.1.0"\n'
    )
    by_name = {p.name: p for p in lockfile_packages(poetry)}
    assert by_name["scikit-learn"].requires == ("numpy",)  # joblib is not in the lock
    assert by_name["scikit-learn"].hashes == ("sha256:" + "aa" * 32,)
    uv = tmp_path / "uv.lock"
    uv.write_text(
        'version = 1\n[[package]]\nname = "app"\nsource = { editable = "." }\n'
        'dependencies = [{ name = "numpy" }]\n'
        '[[package]]\nname = "numpy"\nversion = "2.1.0"\n'
        'sdist = { url = "https://x", hash = "sha256:' + "bb" * 32 + '" }\n'
    )
    (numpy,) = lockfile_packages(uv)
    assert (numpy.purl, numpy.hashes, numpy.source) == (
        "pkg:pypi/numpy@2.1.0",
        ("sha256:" + "bb" * 32,),
        "uv.lock",
    )
    (tmp_path / "broken.lock").write_text("[[package]\n")
    with pytest.raises(EvidenceError, match="not TOML"):
        lockfile_packages(tmp_path / "broken.lock")


def test_environment_packages_have_requirements() -> None:
    packages = {p.name: p for p in installed_packages()}
    assert "pydantic" in packages and "pydantic-core" in packages["pydantic"].requires
    assert all(r in packages for p in packages.values() for r in p.requires)


def test_bom_of_the_real_environment_is_valid(project: Path) -> None:
    _assert_schema_valid(build_bom(project / "model.pkl", None, installed_packages()))


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=200))
def test_card_loader_never_crashes(tmp_path_factory: pytest.TempPathFactory, text: str) -> None:
    path = tmp_path_factory.mktemp("card") / "card.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    with contextlib.suppress(Error):
        load_card(path)


_TOML_VALUES = st.sampled_from(
    ['"numpy"', '"1.0"', "1", "[]", '[{ name = "numpy" }]', "[{ name = 3 }]", '{ numpy = "*" }',
     '"a b"', "true", '[{ hash = 5 }]', '{ url = "x", hash = "sha256:00" }']
)  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(
    st.text(max_size=120),
    st.lists(
        st.tuples(
            st.sampled_from(["name", "version", "dependencies", "files", "wheels", "sdist"]),
            _TOML_VALUES,
        ),
        max_size=6,
    ),
)
def test_lockfile_parsers_never_crash(
    tmp_path_factory: pytest.TempPathFactory, text: str, fields: list[tuple[str, str]]
) -> None:
    folder = tmp_path_factory.mktemp("lock")
    (folder / "requirements.txt").write_text(text, encoding="utf-8", errors="surrogatepass")
    lock = "[[package]]\n" + "".join(f"{k} = {v}\n" for k, v in dict(fields).items())
    (folder / "uv.lock").write_text(lock)
    for name in ("requirements.txt", "uv.lock"):
        with contextlib.suppress(Error):
            lockfile_packages(folder / name)


def test_bom_progress_counts_model_files(project: Path) -> None:
    calls: list[tuple[int, int]] = []
    build_bom(
        project / "model.pkl",
        None,
        [],
        progress=lambda _p, done, total: calls.append((done, total)),
    )
    assert calls == [(1, 1)]
