"""Terraform rules: catching, benign look-alike, broken input."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from secmlops.findings import Report, Severity
from secmlops.scan.infra import scan_infra
from tests.scan.infra.scanning import hits

PRIVATE_BUCKET = """\
resource "aws_s3_bucket" "data" {
  bucket = "acme-training-data"
}
resource "aws_s3_bucket_public_access_block" "data" {
  bucket                  = aws_s3_bucket.data.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}
resource "aws_s3_bucket_server_side_encryption_configuration" "data" {
  bucket = aws_s3_bucket.data.id
  rule {
    apply_server_side_encryption_by_default { sse_algorithm = "aws:kms" }
  }
}
"""


def scan(tmp_path: Path, *files: str) -> Report:
    for n, text in enumerate(files):
        (tmp_path / f"f{n}.tf").write_text(textwrap.dedent(text))
    return scan_infra([tmp_path])


def test_private_encrypted_bucket_across_files_is_clean(tmp_path: Path) -> None:
    head, rest = PRIVATE_BUCKET.split("}\n", 1)
    report = scan(tmp_path, head + "}\n", rest)  # the block and the bucket in different files
    assert report.findings == [] and report.files_scanned == 2


@pytest.mark.parametrize(
    ("change", "severity"),
    [
        ('bucket = "acme-training-data"\n  acl = "public-read"', Severity.HIGH),
        ("restrict_public_buckets = true", None),
    ],
)
def test_s3_public(tmp_path: Path, change: str, severity: Severity | None) -> None:
    if severity is None:  # a public access block that leaves a flag off
        text = PRIVATE_BUCKET.replace(change, "restrict_public_buckets = false")
        expected = [Severity.MEDIUM]
    else:
        text = PRIVATE_BUCKET.replace('bucket = "acme-training-data"', change)
        expected = [severity]
    assert [f.severity for f in hits(scan(tmp_path, text), "INFRA-TF-BUCKET-PUBLIC")] == expected


def test_s3_bucket_acl_resource_and_public_policy(tmp_path: Path) -> None:
    extra = """\
    resource "aws_s3_bucket_acl" "data" {
      bucket = aws_s3_bucket.data.id
      acl    = "public-read-write"
    }
    resource "aws_s3_bucket_policy" "p" {
      bucket = aws_s3_bucket.data.id
      policy = jsonencode({
        Statement = [{ Effect = "Allow", Principal = "*", Action = "s3:GetObject", Resource = "*" }]
      })
    }
    """
    found = hits(scan(tmp_path, PRIVATE_BUCKET, extra), "INFRA-TF-BUCKET-PUBLIC")
    assert len(found) == 2


def test_s3_missing_block_and_encryption_are_low(tmp_path: Path) -> None:
    report = scan(tmp_path, 'resource "aws_s3_bucket" "b" {\n  bucket = "x"\n}\n')
    assert [f.severity for f in hits(report, "INFRA-TF-BUCKET-PUBLIC")] == [Severity.LOW]
    assert [f.severity for f in hits(report, "INFRA-TF-BUCKET-UNENCRYPTED")] == [Severity.LOW]


def test_account_level_public_access_block_covers_buckets(tmp_path: Path) -> None:
    text = 'resource "aws_s3_account_public_access_block" "a" {\n  block_public_acls = true\n}\n'
    report = scan(tmp_path, 'resource "aws_s3_bucket" "b" {\n  bucket = "x"\n}\n', text)
    assert not hits(report, "INFRA-TF-BUCKET-PUBLIC")


def test_gcs_and_azure(tmp_path: Path) -> None:
    text = """\
    resource "google_storage_bucket" "open" {
      name = "models"
      location = "EU"
    }
    resource "google_storage_bucket" "closed" {
      name = "models2"
      location = "EU"
      uniform_bucket_level_access = true
    }
    resource "google_storage_bucket_iam_member" "pub" {
      bucket = google_storage_bucket.open.name
      role   = "roles/storage.objectViewer"
      member = "allUsers"
    }
    resource "google_storage_bucket_iam_member" "team" {
      bucket = google_storage_bucket.open.name
      role   = "roles/storage.objectViewer"
      member = "group:ml@acme.example"
    }
    resource "azurerm_storage_account" "old" {
      name = "a"
      allow_blob_public_access = true
    }
    resource "azurerm_storage_account" "unset" {
      name = "b"
    }
    resource "azurerm_storage_account" "good" {
      name = "c"
      allow_nested_items_to_be_public = false
    }
    resource "azurerm_storage_container" "c" {
      name = "weights"
      container_access_type = "blob"
    }
    """
    report = scan(tmp_path, text)
    public = sorted(
        (f.location.line, f.severity.label) for f in hits(report, "INFRA-TF-BUCKET-PUBLIC")
    )
    assert public == [(10, "high"), (20, "high"), (24, "medium"), (31, "high")]
    assert [f.location.line for f in hits(report, "INFRA-TF-BUCKET-NO-UNIFORM-ACCESS")] == [1]


def test_notebooks(tmp_path: Path) -> None:
    text = """\
    resource "aws_sagemaker_notebook_instance" "default" {
      name = "a"
      instance_type = "ml.t3.medium"
      role_arn = "arn:aws:iam::1:role/x"
    }
    resource "aws_sagemaker_notebook_instance" "locked" {
      name = "b"
      instance_type = "ml.t3.medium"
      role_arn = "arn:aws:iam::1:role/x"
      direct_internet_access = "Disabled"
      root_access = "Disabled"
      subnet_id = "subnet-1"
    }
    resource "google_notebooks_instance" "nb" {
      name = "n"
      no_public_ip = false
    }
    resource "google_workbench_instance" "ok" {
      name = "w"
      gce_setup {
        disable_public_ip = true
      }
    }
    resource "google_workbench_instance" "open" {
      name = "w2"
    }
    """
    report = scan(tmp_path, text)
    assert sorted(f.location.line for f in hits(report, "INFRA-TF-NOTEBOOK-INTERNET")) == [
        1,
        14,
        24,
    ]
    assert [f.location.line for f in hits(report, "INFRA-TF-NOTEBOOK-ROOT")] == [1]


TRAINING = """\
resource "aws_s3_bucket" "registry" {
  bucket = "acme-model-registry"
  tags   = { env = "production" }
}
resource "aws_s3_bucket" "staging" {
  bucket = "acme-ml-staging"
}
resource "aws_iam_role" "job" {
  name = "ml-job"
  assume_role_policy = data.aws_iam_policy_document.trust.json
}
data "aws_iam_policy_document" "trust" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["sagemaker.amazonaws.com"]
    }
  }
}
data "aws_iam_policy_document" "write" {
  statement {
    actions   = ["s3:GetObject", "s3:PutObject"]
    resources = ["${aws_s3_bucket.TARGET.arn}/*"]
  }
}
resource "aws_iam_policy" "write" {
  policy = data.aws_iam_policy_document.write.json
}
resource "aws_iam_role_policy_attachment" "write" {
  role       = aws_iam_role.job.name
  policy_arn = aws_iam_policy.write.arn
}
"""


def test_training_role_writing_production_bucket(tmp_path: Path) -> None:
    report = scan(tmp_path, TRAINING.replace("TARGET", "registry"))
    found = hits(report, "INFRA-TF-TRAINING-PROD-WRITE")
    assert len(found) == 1
    assert found[0].location.line == 22
    assert found[0].evidence["target"] == "acme-model-registry"
    assert found[0].evidence["role"] == "aws_iam_role.job"


def test_training_role_writing_staging_bucket_is_fine(tmp_path: Path) -> None:
    report = scan(tmp_path, TRAINING.replace("TARGET", "staging"))
    assert not hits(report, "INFRA-TF-TRAINING-PROD-WRITE")


def test_non_training_role_writing_production_is_not_this_rule(tmp_path: Path) -> None:
    text = TRAINING.replace("TARGET", "registry").replace(
        "sagemaker.amazonaws.com", "ec2.amazonaws.com"
    )
    assert not hits(scan(tmp_path, text), "INFRA-TF-TRAINING-PROD-WRITE")


def test_read_only_training_role_is_fine(tmp_path: Path) -> None:
    text = TRAINING.replace("TARGET", "registry").replace(
        '"s3:GetObject", "s3:PutObject"', '"s3:GetObject"'
    )
    assert not hits(scan(tmp_path, text), "INFRA-TF-TRAINING-PROD-WRITE")


@pytest.mark.parametrize(
    "policy",
    [
        # heredoc JSON on an inline role policy with a literal production ARN
        '<<EOF\n{"Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::acme-prod-models/*"}]}\nEOF',
        # jsonencode with a reference inside (not JSON: read by the text fallback)
        'jsonencode({ Statement = [{ Effect = "Allow", Action = ["s3:PutObject"], Resource = "${aws_s3_bucket.registry.arn}/*" }] })',
    ],
)
def test_inline_and_encoded_policies(tmp_path: Path, policy: str) -> None:
    text = f"""\
resource "aws_s3_bucket" "registry" {{
  bucket = "acme-model-registry"
}}
resource "aws_iam_role" "training" {{
  name = "trainer"
  assume_role_policy = "{{}}"
}}
resource "aws_iam_role_policy" "p" {{
  role   = aws_iam_role.training.id
  policy = {policy}
}}
"""
    assert hits(scan(tmp_path, text), "INFRA-TF-TRAINING-PROD-WRITE")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('resource "aws_s3_bucket" "b" {\n  bucket = \n', "malformed HCL"),
        ("\x00\x01\x02", "binary"),
        ('resource "x" "y" {' * 2000, "HCL"),
    ],
)
def test_broken_terraform_fails_with_path(tmp_path: Path, content: str, message: str) -> None:
    (tmp_path / "main.tf").write_text(content)
    report = scan_infra([tmp_path])
    assert len(report.errors) == 1
    assert report.errors[0].location.path == str(tmp_path / "main.tf")
    assert message in report.errors[0].message


def test_empty_terraform_file_is_clean(tmp_path: Path) -> None:
    (tmp_path / "empty.tf").write_text("")
    report = scan_infra([tmp_path])
    assert report.errors == [] and report.findings == [] and report.files_scanned == 1


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.text(alphabet='resouc"aws_3bkt{}[]=\n #/*$<>EOF.0123456789eE-+:?()', max_size=200))
def test_arbitrary_hcl_never_crashes(tmp_path: Path, text: str) -> None:
    (tmp_path / "main.tf").write_text(text)
    report = scan_infra([tmp_path / "main.tf"])
    assert report.files_scanned + len(report.errors) == 1
