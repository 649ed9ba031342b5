"""`m365archive partner-info`: Step 4, the handoff packet for the partner (the password only on request)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from m365archive.cli.common import CliState, Output, confirm_apply, fail, finish, run, state, write_text
from m365archive.errors import CommandError, Reason
from m365archive.result import ExitCode, Result

if TYPE_CHECKING:
    from m365archive.app.context import Env
    from m365archive.config import Config


def register(app: typer.Typer) -> None:
    @app.command("partner-info")
    def partner_info(
        ctx: typer.Context,
        include_secret: Annotated[
            bool,
            typer.Option("--include-secret", help="Add the catch-all password (needs --out; asks first)."),
        ] = False,
        out: Annotated[
            Path | None, typer.Option("--out", help="Write the packet here (mode 0600 when it holds the password).")
        ] = None,
        ingestion_endpoint: Annotated[
            str | None,
            typer.Option(
                "--ingestion-endpoint", metavar="URL", help="The endpoint for clouds the reference page names none for."
            ),
        ] = None,
        yes: Annotated[bool, typer.Option("--yes", "-y", help="Include the secret without asking.")] = False,
        password_file: Annotated[
            Path | None, typer.Option("--password-file", help="Read the catch-all password from this 0600 file.")
        ] = None,
    ) -> None:
        """The packet to hand the partner: ingestion endpoint, catch-all UPN, tenant, consent state,
        the message properties partners must populate, and what to log. Markdown, or JSON with the
        global -o json (before or after the command).

        EWS-based partner ingestion was retired on 2024-12-30; the packet says so.

        Examples:

        \b
          m365archive partner-info
          m365archive partner-info --output json
          m365archive partner-info --include-secret --out handoff.md
        """
        cli = state(ctx)
        if include_secret and out is None:
            fail(
                cli, "--include-secret needs --out FILE: the password is never printed to the terminal", ExitCode.USAGE
            )
        config = cli.load_config()
        env = cli.env(password_file=password_file)
        finish(cli, run(cli, lambda: _partner_info(cli, config, env, include_secret, out, ingestion_endpoint, yes)))


async def _partner_info(
    cli: CliState,
    config: Config,
    env: Env,
    include_secret: bool,
    out: Path | None,
    ingestion_endpoint: str | None,
    yes: bool,
) -> Result:
    from m365archive.app.consent import retirement_line
    from m365archive.app.context import connect
    from m365archive.app.credentials import PasswordStore
    from m365archive.app.handoff import handoff

    store = None
    if include_secret:
        store = PasswordStore.for_config(env, config)
        store.check()  # no keyring: say so before anything else
    async with connect(env, config) as session:
        packet = await handoff(config, session, ingestion_endpoint=ingestion_endpoint)
    as_json = cli.output is Output.json
    if store is not None:
        assert out is not None
        cli.err.print("warning: " + retirement_line(), markup=False, highlight=False)
        cli.err.print(
            f"The file will hold the password of {packet.catchall_upn}, an Exchange Administrator.",
            markup=False,
            highlight=False,
        )
        question = f"Write the catch-all password to {out}?"
        hint = "add --yes after reading the warning above"
        if not confirm_apply(cli, yes, question, action="write the password", hint=hint, json_output=as_json):
            return Result("partner-info", ExitCode.OK, messages=["Nothing written."])
        packet.password = store.current()
        if not packet.password:
            raise CommandError(
                f"no password is stored for {packet.catchall_upn} ({store.where})",
                Reason.NO_SECRET_STORE,
                "set one with `m365archive credentials rotate` (it resets the password in the tenant)",
            )
        text = (
            json.dumps(packet.to_dict(include_secret=True), indent=2)
            if as_json
            else packet.markdown(include_secret=True)
        )
        write_text(out, text + "\n")
        return Result(
            "partner-info",
            ExitCode.OK,
            data={**packet.to_dict(), "written": str(out), "mode": "0600", "includes_secret": True},
            messages=[f"Packet with the catch-all password written to {out} (mode 0600: only you can read it)."],
        )
    data = packet.to_dict()
    if out is not None:
        write_text(out, (json.dumps(data, indent=2) if as_json else packet.markdown()) + "\n")
        return Result("partner-info", ExitCode.OK, data=data, messages=[f"Packet written to {out} (no secret in it)."])
    if not as_json:  # printed here, unwrapped: a wrapped Markdown table is no table
        cli.print_markdown(packet.markdown())
    return Result("partner-info", ExitCode.OK, data=data)
