"""``relay route``: a dry run of per-record routing on sample files, before anything is deployed."""

from __future__ import annotations

import pytest
import yaml

from relay_cli.exit_codes import Exit
from relay_cli.main import main
from tests.conftest import EVENTS, ROOT

pytestmark = pytest.mark.e2e


def test_shipped_routes_send_each_diagnostic_record_where_the_example_says(relay_env, capsys):
    # GIVEN Key Vault audit records and an Activity Log export
    samples = [str(EVENTS / "diag_keyvault_auditevent.json"), str(EVENTS / "activitylog_administrative.json")]
    # WHEN routed as records of the relay's hub
    code = main(["route", *samples, "--source", "eventhub", "--match", "relay-events"])
    # THEN every record is archived, audits go to their table, the rest to the resource logs, nothing unrouted
    out = capsys.readouterr().out
    assert code == Exit.OK
    assert "eventhub-archive, eventhub-keyvault-audit, eventhub-diagnostics" in out
    counts = {line.split()[0]: int(line.split()[1]) for line in out.splitlines()
              if line.strip().startswith("eventhub-") and len(line.split()) == 2}
    assert counts["eventhub-keyvault-audit"] == 3
    assert counts["eventhub-archive"] == counts["eventhub-keyvault-audit"] + counts["eventhub-diagnostics"]
    assert "record 1  eventhub-archive, eventhub-keyvault-audit" in out


def test_records_no_route_takes_are_listed_and_the_exit_code_says_rejected(relay_env, tmp_path, capsys):
    # GIVEN a routes file that only takes audit records, and a sample with one of something else
    document = yaml.safe_load((ROOT / "relay.yaml").read_text(encoding="utf-8"))
    document["defaults"]["schema"] = str(ROOT / document["defaults"]["schema"])
    document["routes"] = [r for r in document["routes"] if r["name"] == "eventhub-keyvault-audit"]
    config = tmp_path / "relay.yaml"
    config.write_text(yaml.safe_dump(document))
    sample = tmp_path / "mixed.ndjson"
    sample.write_text('{"category": "AuditEvent", "resourceId": "/SUBSCRIPTIONS/X"}\n{"category": "Metrics"}\n')
    # WHEN routed
    code = main(["route", str(sample), "--source", "eventhub", "--match", "hub", "--config", str(config)])
    # THEN the unrouted record is named with its line and counted
    captured = capsys.readouterr()
    assert code == Exit.REJECTED
    assert "line 2" in captured.out and "no route takes this record" in captured.out
    assert "1 record(s) no route takes" in captured.err


def test_a_name_no_route_matches_is_a_usage_error(relay_env, capsys):
    code = main(["route", str(EVENTS / "github_push.json"), "--source", "http", "--match", "nope"])
    assert code == Exit.USAGE and "no http route's match holds for 'nope'" in capsys.readouterr().err
