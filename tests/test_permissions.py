"""The permissions table (m365archive/permissions.py): the README section is generated from it, the
requested scopes follow it, and the known corrections stay in it."""

from __future__ import annotations

from pathlib import Path

from m365archive import permissions
from m365archive.tenant import auth

README = Path(__file__).resolve().parent.parent / "README.md"
START, END = "<!-- permissions:start -->\n", "<!-- permissions:end -->"


def readme_section(text: str) -> str:
    return text.split(START, 1)[1].split(END, 1)[0]


def test_the_readme_permissions_section_is_generated_from_the_table() -> None:
    # To refresh it: replace the text between the markers with permissions.render_markdown().
    assert readme_section(README.read_text(encoding="utf-8")) == permissions.render_markdown()


def test_the_readme_check_fails_when_they_differ() -> None:
    edited = README.read_text(encoding="utf-8").replace("User-PasswordProfile.ReadWrite.All", "User.ReadWrite.All")
    assert readme_section(edited) != permissions.render_markdown()


def test_requested_delegated_scopes_follow_the_table() -> None:
    assert permissions.delegated_scopes() == auth.GRAPH_DELEGATED_SCOPES
    wanted = {a[0] for row in permissions.TABLE for a in row.graph_delegated}
    assert set(auth.GRAPH_DELEGATED_SCOPES) == wanted


def test_a_password_reset_needs_the_password_profile_scope_and_privileged_authentication_administrator() -> None:
    [rotate] = permissions.for_command("credentials rotate")
    assert rotate.graph_delegated == (("User-PasswordProfile.ReadWrite.All", "Directory.AccessAsUser.All"),)
    assert ("Privileged Authentication Administrator",) in rotate.entra_roles
    assert "User-PasswordProfile.ReadWrite.All" in auth.GRAPH_DELEGATED_SCOPES


def test_exchange_steps_need_the_exchange_app_role_and_an_entra_role() -> None:
    exchange_rows = [r for r in permissions.TABLE if r.exchange]
    assert exchange_rows
    for row in exchange_rows:
        assert row.exchange_app_role == "Exchange.ManageAsApp"
        assert row.entra_roles or row.command.startswith("partner-info"), row
    assert all(r.exchange_app_role is None for r in permissions.TABLE if not r.exchange)


def test_lookups_by_command() -> None:
    setup = permissions.for_command("setup")
    assert {r.step for r in setup} >= {"catchall_account", "catchall_mailbox", "retention", "connector_readiness"}
    assert permissions.for_command("status") == permissions.for_command("setup --dry-run")
    assert permissions.for_command("no such command") == []
