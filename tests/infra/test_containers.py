"""Containers and queues the code writes to exist in the deployed storage account."""

from __future__ import annotations

from pathlib import Path

from shared.blob_ingest import CHECKPOINT_CONTAINER
from shared.settings import Settings

MAIN = (Path(__file__).resolve().parents[2] / "infra" / "main.bicep").read_text()


def test_blob_checkpoint_container_is_deployed():
    # GIVEN the container the blob trigger keeps its progress in
    # THEN the Bicep deploys a container of that name (the identity could create it, but a
    # lifecycle rule or a locked-down account needs it declared)
    assert f"'{CHECKPOINT_CONTAINER}'" in MAIN


def test_default_poison_names_are_the_bicep_defaults():
    defaults = Settings.from_env({}, Path("."))
    for name in (defaults.poison_queue, defaults.poison_container, defaults.deadletter_container,
                 defaults.blob_container):
        assert f"'{name}'" in MAIN, name
