"""`m365archive doctor [--profile FILE]`: do the services answer as the tool assumes? Reads only."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from m365archive.cli.common import CliState, Output, finish, run, state
from m365archive.result import ExitCode, Result

if TYPE_CHECKING:
    from m365archive.app.context import Env
    from m365archive.config import Config

VERDICT = {"holds": "HOLDS", "differs": "DIFFERS", "can't tell": "CAN'T TELL"}


def register(app: typer.Typer) -> None:
    @app.command("doctor")
    def doctor(
        ctx: typer.Context,
        profile: Annotated[
            Path | None,
            typer.Option(
                "--profile",
                metavar="FILE",
                help="Write a redacted service profile (JSON, one entry per probe; no names, ids or tenant data).",
            ),
        ] = None,
    ) -> None:
        """Probe, with reads only, every behaviour of the services the tool relies on (docs/fidelity.md) and say
        per assumption whether it holds, differs or can't be told. Exit 0, or 13 when one differs.

        Example:

        \b
          m365archive doctor
          m365archive doctor --profile service-profile.json
        """
        cli = state(ctx)
        config = cli.load_config()
        env = cli.env()
        finish(cli, run(cli, lambda: _doctor(cli, config, env, profile)))


async def _doctor(cli: CliState, config: Config, env: Env, profile_file: Path | None) -> Result:
    from m365archive.app.doctor import DIFFERS, doctor, profile
    from m365archive.errors import CommandError, Reason
    from m365archive.files import write_error, write_private

    results, cloud = await doctor(env, config)
    if profile_file is not None:
        try:
            write_private(profile_file, json.dumps(profile(results, cloud), indent=2, sort_keys=True) + "\n")
        except OSError as exc:
            raise CommandError(write_error(profile_file, exc), Reason.USAGE) from None
    lines = [f"{VERDICT[r.verdict]:<10}  {r.id}: {r.assumption} ({r.detail})" for r in results]
    differs = [r for r in results if r.verdict == DIFFERS]
    summary = f"{len(results)} probe(s): {len(results) - len(differs)} hold or can't tell, {len(differs)} differ"
    if profile_file is not None:
        summary += f"; service profile written to {profile_file}"
    if cli.output is Output.human:
        for line in [*lines, summary]:
            cli.out.print(line, markup=False, highlight=False, soft_wrap=True)
    return Result(
        "doctor",
        ExitCode.FINDINGS if differs else ExitCode.OK,
        data={"probes": [r.to_dict() for r in results], "profile": str(profile_file) if profile_file else None},
        messages=[*lines, summary] if cli.output is Output.markdown else [],
        errors=[f"{r.id}: {r.detail}" for r in differs],
    )
