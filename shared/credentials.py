"""The credential the sink authenticates with, chosen by ``RELAY_CREDENTIAL``."""

from __future__ import annotations

import time
from typing import Any

from azure.core.credentials import AccessToken, TokenCredential

from .config import RelayConfig, is_loopback_url
from .settings import Settings, SettingsError


class StaticTokenCredential:
    """A fixed bearer token: only for the local emulator, never for a real endpoint."""

    def __init__(self, token: str):
        self._token = token

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken(self._token, int(time.time()) + 3600)

    def close(self) -> None:
        pass

    def __repr__(self) -> str:  # never show the token
        return "StaticTokenCredential(<redacted>)"


def check_credential_fits(settings: Settings, config: RelayConfig) -> None:
    """A static token must never leave the machine: every endpoint must be loopback."""
    if settings.credential != "static":
        return
    remote = sorted(e for e in config.endpoints if not is_loopback_url(e))
    if remote:
        raise SettingsError(
            "setting RELAY_CREDENTIAL: 'static' is allowed only when every endpoint is on a loopback "
            f"address; these are not: {', '.join(remote)}"
        )


def build_credential(settings: Settings) -> TokenCredential:
    if settings.credential == "static":
        return StaticTokenCredential(settings.static_token or "")
    if settings.credential == "default":
        from azure.identity import DefaultAzureCredential

        return DefaultAzureCredential(managed_identity_client_id=settings.client_id)
    from azure.identity import ManagedIdentityCredential

    if settings.client_id:
        return ManagedIdentityCredential(client_id=settings.client_id)
    return ManagedIdentityCredential()
