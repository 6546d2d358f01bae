"""The Bicep as a whole: it parses, it is https-only and cloud-neutral, its roles are where the
relay needs them, and azd's files agree with it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from infra_checks import (
    INFRA,
    MAIN_BICEP,
    ROOT,
    check_cloud_neutral,
    check_required_roles,
    parse_bicep,
    role_assignments,
)

from shared.settings import CLOUD_SCOPES

BICEP_FILES = sorted(INFRA.rglob("*.bicep"))
RBAC = INFRA / "app" / "rbac.bicep"


@pytest.mark.parametrize("path", BICEP_FILES, ids=[str(path.relative_to(INFRA)) for path in BICEP_FILES])
def test_bicep_parses(path: Path) -> None:
    assert parse_bicep(path)


@pytest.mark.parametrize("path", BICEP_FILES, ids=[str(path.relative_to(INFRA)) for path in BICEP_FILES])
def test_bicep_is_https_only_and_cloud_neutral(path: Path) -> None:
    assert check_cloud_neutral(path.read_text(encoding="utf-8"), path.name) == []


def test_cloud_neutral_check_names_the_problem() -> None:
    source = (
        "// comments may say monitor.azure.com or http://example\n"
        "var a = 'https://${name}.servicebus.windows.net'\n"
        "var b = 'http://${host}/x' // plain http\n"
        "var c = split(endpoint, '//')[1]\n"
    )
    assert check_cloud_neutral(source, "x.bicep") == [
        "x.bicep:2: hard-codes 'servicebus.windows.net'; use environment().suffixes or the resource's own "
        "endpoint property so sovereign clouds work",
        "x.bicep:3: uses http://; everything is https only",
    ]


def test_relay_cloud_follows_the_deployment_cloud() -> None:
    parameter = parse_bicep(MAIN_BICEP)["parameters"]["relayCloud"]
    allowed = next(d["argument"] for d in parameter["decorators"] if d["type"] == "allowed")
    assert sorted(allowed) == sorted(CLOUD_SCOPES), "relayCloud must allow exactly the clouds the code knows"
    default = json.dumps(parameter["default"])
    for cloud_name in ("AzureChinaCloud", "AzureUSGovernment"):
        assert cloud_name in default
    assert '"type": "environment"' in default


def test_secrets_are_secure_parameters_and_never_outputs() -> None:
    for path in BICEP_FILES:
        tree = parse_bicep(path)
        for name, parameter in tree.get("parameters", {}).items():
            if re.search(r"secret|password|key$", name, re.IGNORECASE) and not name.endswith("Name"):
                assert any(d["type"] == "secure" for d in parameter["decorators"]), (
                    f"{path.name}: {name} not @secure()"
                )
        for name in tree.get("outputs", {}):
            if re.search(r"(name|id|uri)$", name, re.IGNORECASE):  # AZURE_KEY_VAULT_NAME names, holds nothing
                continue
            assert not re.search(r"secret|password|key|connectionstring", name, re.IGNORECASE), (
                f"{path.name}: {name}"
            )


def test_role_assignments_are_well_formed() -> None:
    for path in BICEP_FILES:
        assert role_assignments(path)[1] == [], path.name


def test_relay_identity_holds_the_roles_it_needs() -> None:
    assignments, _ = role_assignments(RBAC)
    assert check_required_roles(assignments, "appPrincipalId") == []


def test_missing_dcr_role_is_named(tmp_path: Path) -> None:
    # Monitoring Metrics Publisher granted on the resource group instead of the DCR.
    text = RBAC.read_text(encoding="utf-8").replace(
        "  scope: dataCollectionRule\n  properties: {\n    roleDefinitionId: subscriptionResourceId("
        "'Microsoft.Authorization/roleDefinitions', monitoringMetricsPublisherRoleId)\n    principalId: appPrincipalId",
        "  properties: {\n    roleDefinitionId: subscriptionResourceId("
        "'Microsoft.Authorization/roleDefinitions', monitoringMetricsPublisherRoleId)\n    principalId: appPrincipalId",
    )
    assert text != RBAC.read_text(encoding="utf-8")
    (tmp_path / "rbac.bicep").write_text(text, encoding="utf-8")
    assignments, _ = role_assignments(tmp_path / "rbac.bicep")
    assert check_required_roles(assignments, "appPrincipalId") == [
        "the relay's identity (appPrincipalId) lacks Monitoring Metrics Publisher on the DCR "
        "(role 3913510d-42f4-4e42-8a64-420c390055eb at a Microsoft.Insights/dataCollectionRules scope)"
    ]


def test_literal_role_guid_and_bad_name_are_named(tmp_path: Path) -> None:
    path = tmp_path / "roles.bicep"
    path.write_text(
        "param principalId string\n"
        "var readerRoleId = 'acdd72a7-3385-48ef-bd42-f606fba81ae7'\n"
        "resource literal 'Microsoft.Authorization/roleAssignments@2022-04-01' = {\n"
        "  name: guid(resourceGroup().id, principalId, 'acdd72a7-3385-48ef-bd42-f606fba81ae7')\n"
        "  properties: {\n"
        "    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', "
        "'acdd72a7-3385-48ef-bd42-f606fba81ae7')\n"
        "    principalId: principalId\n"
        "  }\n"
        "}\n"
        "resource unnamed 'Microsoft.Authorization/roleAssignments@2022-04-01' = {\n"
        "  name: guid(resourceGroup().id, readerRoleId)\n"
        "  properties: {\n"
        "    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', readerRoleId)\n"
        "    principalId: principalId\n"
        "  }\n"
        "}\n",
        encoding="utf-8",
    )
    assert role_assignments(path)[1] == [
        "roles.bicep: literal: roleDefinitionId must use a named variable holding the role's GUID",
        "roles.bicep: unnamed: name must be guid(scope, principal, role)",
    ]


def test_dcr_is_deployed_from_the_file_the_relay_validates_against() -> None:
    text = MAIN_BICEP.read_text(encoding="utf-8")
    assert "loadJsonContent('dcr/relay.json')" in text
    ingestion = (INFRA / "app" / "ingestion.bicep").read_text(encoding="utf-8")
    assert "kind: 'Direct'" in ingestion
    assert "properties.endpoints.logsIngestion" in ingestion
    assert "properties.immutableId" in ingestion


def test_azure_yaml_deploys_this_folder_as_a_python_function() -> None:
    config = yaml.safe_load((ROOT / "azure.yaml").read_text(encoding="utf-8"))
    assert config["infra"]["path"] == "infra"
    assert config["services"]["api"] == {"project": ".", "host": "function", "language": "python"}
    for shell in config["hooks"]["postdeploy"].values():
        assert (ROOT / shell["run"]).is_file(), shell["run"]


def test_parameters_file_matches_main_bicep() -> None:
    declared = parse_bicep(MAIN_BICEP)["parameters"]
    given = json.loads((INFRA / "main.parameters.json").read_text(encoding="utf-8"))["parameters"]
    assert set(given) <= set(declared), f"unknown parameters: {set(given) - set(declared)}"
    required = {
        name
        for name, parameter in declared.items()
        if "default" not in parameter or parameter["default"] is None
    }
    assert required <= set(given), f"parameters azd must pass: {required - set(given)}"


def test_every_resource_name_can_be_overridden() -> None:
    declared = parse_bicep(MAIN_BICEP)["parameters"]
    for name in (
        "resourceGroupName",
        "identityName",
        "storageAccountName",
        "appServicePlanName",
        "functionAppName",
        "eventHubNamespaceName",
        "logAnalyticsName",
        "applicationInsightsName",
        "dataCollectionRuleName",
        "dataCollectionEndpointName",
        "keyVaultName",
        "blobEventsSystemTopicName",
    ):
        assert declared[name]["default"] == "", name
