"""Keyring backends for tests: keyring is a third-party boundary, so its backend is faked in memory
(or keyring's own fail backend stands for a machine without a secret store)."""

from __future__ import annotations

from keyring.backend import KeyringBackend
from keyring.errors import PasswordDeleteError

from m365archive import secrets
from m365archive.app.credentials import PENDING_SUFFIX

TENANT = "6f1c2a4e-3b5d-4c7e-9f10-2a3b4c5d6e7f"  # the built-in scenarios' tenant
CATCHALL = "thirdpartydata@contoso.onmicrosoft.com"


class MemoryKeyring(KeyringBackend):
    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.items: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.items.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.items[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        if self.items.pop((service, username), None) is None:
            raise PasswordDeleteError("not found")

    @property
    def current(self) -> str | None:
        """The catch-all password of the built-in scenarios' tenant."""
        return self.items.get((secrets.SERVICE, secrets.catchall_username(TENANT, CATCHALL)))

    @property
    def pending(self) -> str | None:
        """A rotation's new password before it is promoted."""
        return self.items.get((secrets.SERVICE, secrets.catchall_username(TENANT, CATCHALL) + PENDING_SUFFIX))
