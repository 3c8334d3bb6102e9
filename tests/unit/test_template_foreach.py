"""template.yaml writes the five record downloads once, with Fn::ForEach; load_template expands
them back into exactly the functions the template wrote out one by one before."""

import copy
import subprocess
from pathlib import Path
from typing import Any

import pytest

from scripts.local_aws import ROOT, load_template

# The last commit whose template.yaml wrote the five record downloads out one by one.
WRITTEN_OUT = "136ca409e51355663919f6e4f90bb0f357cf6188"
RECORD_DOWNLOADS = {
    "DownloadAgreementsFunction": "functions/download_agreements/",
    "DownloadCompaniesFunction": "functions/download_companies/",
    "DownloadInvoicesFunction": "functions/download_invoices/",
    "DownloadOpportunitiesFunction": "functions/download_opportunities/",
    "DownloadPurchaseOrdersFunction": "functions/download_purchase_orders/",
}


@pytest.fixture(scope="module")
def written_out(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """That commit's template, read with the same loader."""
    shown = subprocess.run(
        ["git", "show", f"{WRITTEN_OUT}:template.yaml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if shown.returncode != 0:
        pytest.skip(f"commit {WRITTEN_OUT[:12]} is not in this checkout: {shown.stderr.strip()}")
    path = tmp_path_factory.mktemp("written_out") / "template.yaml"
    path.write_text(shown.stdout)
    return load_template(path)


def test_the_loop_gives_the_five_functions_as_they_were_written_out(written_out: dict[str, Any]) -> None:
    template = load_template()
    assert "Fn::ForEach::RecordDownloads" in (ROOT / "template.yaml").read_text()
    resources = template["Resources"]
    assert not [key for key in resources if key.startswith("Fn::ForEach::")]
    for logical_id, code_uri in RECORD_DOWNLOADS.items():
        # CodeUri, Handler and Timeout: as before. Since then the description has learnt that the
        # downloads also go through REST, their schedules come from the connection registry (no
        # Events), and their policies grant the secrets by prefix and a read of the registry.
        now, then = (copy.deepcopy(t[logical_id]) for t in (resources, written_out["Resources"]))
        described = now["Properties"].pop("Description")
        then["Properties"].pop("Description")
        assert "Events" not in now["Properties"] and then["Properties"].pop("Events")
        # Since issue 15 each logs to its own log group (Fn::ForEach::Operations makes it).
        stem = logical_id.removesuffix("Function")
        assert now["Properties"].pop("LoggingConfig") == {"LogGroup": {"Fn::Sub": "${" + stem + "LogGroup}"}}
        policies = now["Properties"].pop("Policies")
        then["Properties"].pop("Policies")
        granted = {a for s in policies[0]["Statement"] for a in s["Action"]}
        assert granted == {
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",  # the connection's budget of ConnectWise calls only (budget#*)
            "s3:PutObject",
            "events:PutEvents",
            "secretsmanager:GetSecretValue",
        }
        assert now == then, logical_id
        assert "REST" in described and logical_id.removeprefix("Download").removesuffix("Function")[
            :5
        ].lower() in (described.lower().replace(" ", "")), described
        assert resources[logical_id]["Properties"]["CodeUri"] == code_uri
        assert (ROOT / code_uri / "app.py").is_file(), code_uri


def test_expansion_substitutes_the_identifier_and_resolves_what_it_completes(tmp_path: Path) -> None:
    template = tmp_path / "template.yaml"
    template.write_text(
        """
Mappings:
  Folders:
    Agreements: {Path: agreements, Words: agreements}
    Purchase Orders: {Path: purchase_orders, Words: purchase orders}
Resources:
  First: {Type: AWS::SQS::Queue}
  Fn::ForEach::Downloads:
    - Name
    - [Agreements, Purchase Orders]
    - Download&{Name}Function:
        Type: AWS::Serverless::Function
        Properties:
          Name: !Ref Name
          CodeUri: !FindInMap [Folders, !Ref Name, Path]
          Description: !Sub
            - Downloads the ${Words} (${Name}).
            - Words: !FindInMap [Folders, !Ref Name, Words]
          Resource: !Sub "${OutputBucket.Arn}/${Name}/*"
      Fn::ForEach::Stages:
        - Stage
        - [Test, Live]
        - ${Stage}&{Name}Alias: {Type: AWS::Lambda::Alias, Properties: {Name: "${Stage}-${Name}"}}
  Last: {Type: AWS::SQS::Queue}
"""
    )
    resources = load_template(template)["Resources"]
    assert list(resources) == [
        "First",
        "DownloadAgreementsFunction",
        "TestAgreementsAlias",
        "LiveAgreementsAlias",
        "DownloadPurchaseOrdersFunction",
        "TestPurchaseOrdersAlias",
        "LivePurchaseOrdersAlias",
        "Last",
    ]
    assert resources["DownloadPurchaseOrdersFunction"]["Properties"] == {
        "Name": "Purchase Orders",
        "CodeUri": "purchase_orders",
        "Description": "Downloads the purchase orders (Purchase Orders).",
        "Resource": {"Fn::Sub": "${OutputBucket.Arn}/Purchase Orders/*"},
    }
    assert resources["LivePurchaseOrdersAlias"]["Properties"] == {"Name": "Live-Purchase Orders"}
