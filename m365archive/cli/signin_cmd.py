"""`m365archive login`, `logout`, `whoami`: sign in once, see who is signed in, forget it."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import typer

from m365archive.cli.common import CliState, call, finish, run, state
from m365archive.result import ExitCode, Result

if TYPE_CHECKING:
    from m365archive.app.signin import SignInStatus


def _lines(status: SignInStatus) -> list[str]:
    where = "the simulated tenant" if status.simulator else f"Microsoft 365 ({status.cloud} cloud)"
    lines = [f"Tenant {status.tenant}, {where}, sign-in: {status.method}"]
    for t in status.tokens:
        if not t.signed_in:
            lines.append(f"  {t.resource}: {t.problem}")
            continue
        minutes = t.expires_in_s // 60
        lines.append(f"  {t.resource}: {t.principal} ({t.kind}) in tenant {t.tenant or '?'}")
        lines.append(f"    token for {t.audience}, expires {t.expires} (in {minutes} min)")
        granted = t.scopes or t.roles
        if granted:
            label = "delegated permissions" if t.scopes else "application permissions"
            lines.append(f"    {label}: {', '.join(granted)}")
    lines.extend(f"  saved the signed-in account to {path}" for path in status.records)
    return lines


def _status_result(cli: CliState, status: SignInStatus) -> Result:
    code = ExitCode.OK if status.signed_in else ExitCode.AUTH
    return Result(cli.command, code, data=status.to_dict(), messages=_lines(status))


def _device_code_prompt(cli: CliState) -> Any:
    def prompt(verification_uri: str, user_code: str, expires_on: datetime) -> None:
        # On stderr: stdout may be JSON another program reads.
        cli.err.print(
            f"To sign in, open {verification_uri} and enter the code {user_code} (valid until {expires_on:%H:%M} UTC).",
            markup=False,
            highlight=False,
        )

    return prompt


def register(app: typer.Typer) -> None:
    @app.command("login")
    def login(ctx: typer.Context) -> None:
        """Sign in now with the [auth] method of the config, so later commands don't prompt.

        Browser and device-code sign-in save the signed-in account (azure-identity's
        AuthenticationRecord, no secret) in the state directory, owner-only; the tokens stay in
        azure-identity's encrypted cache. Without an app registration of your own, Microsoft's public
        clients are used, one for Microsoft Graph and one for Exchange Online: you sign in twice, once.
        App-only methods (certificate, secret, managed identity, Azure CLI) just prove a token can be had.
        Exit 0 when signed in for both services, 5 AUTH otherwise.

        Examples:

        \b
          m365archive login
          m365archive whoami
          m365archive --sim http://127.0.0.1:8765 login
        """
        from m365archive.app import signin

        cli = state(ctx)
        config = cli.load_config()
        env = cli.env()
        status = run(cli, lambda: signin.login(env, config, _device_code_prompt(cli)))
        finish(cli, _status_result(cli, status))

    @app.command("whoami")
    def whoami(ctx: typer.Context) -> None:
        """Who is signed in: tenant, cloud, principal, kind of sign-in, permissions and token expiry,
        per service, read from the tokens' own claims. Never prompts: when a sign-in is needed it says
        so (run `m365archive login`). Exit 0 when signed in for both services, 5 AUTH otherwise.

        Examples:

        \b
          m365archive whoami
          m365archive whoami -o json --query 'data.tokens[].expires'
        """
        from m365archive.app import signin

        cli = state(ctx)
        config = cli.load_config()
        env = cli.env()
        status = run(cli, lambda: signin.whoami(env, config))
        finish(cli, _status_result(cli, status))

    @app.command("logout")
    def logout(ctx: typer.Context) -> None:
        """Forget the sign-in: delete this tenant's saved accounts and empty the token cache (every
        tenant's tokens in m365archive's cache, as `az logout` does). The next command signs in again.

        Examples:

        \b
          m365archive logout
        """
        from m365archive.app import signin

        cli = state(ctx)
        config = cli.load_config()
        env = cli.env()
        outcome = call(cli, lambda: signin.logout(env, config))
        messages = [f"removed the saved account {p}" for p in outcome["records_removed"]]
        messages += [f"emptied the token cache {p}" for p in outcome["caches_cleared"]]
        if not messages:
            messages.append("nothing to forget: no saved account and no token cache")
        if outcome["note"]:
            messages.append(f"note: {outcome['note']}")
        finish(cli, Result(cli.command, ExitCode.OK, data=outcome, messages=messages))
