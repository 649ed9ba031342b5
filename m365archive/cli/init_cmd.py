"""`m365archive init`: write a commented desired-state file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from m365archive.cli.common import fail, finish, output_error, state
from m365archive.files import write_private
from m365archive.result import ExitCode, Result


def register(app: typer.Typer) -> None:
    @app.command("init")
    def init(
        ctx: typer.Context,
        path: Annotated[Path | None, typer.Argument(help="Where to write (default: the --config path).")] = None,
        tenant: Annotated[str, typer.Option(help="Tenant id or initial domain.")] = "contoso.onmicrosoft.com",
        domain: Annotated[str | None, typer.Option(help="The domain for UPNs (default: --tenant if a domain).")] = None,
        force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
    ) -> None:
        """Write a commented m365archive.toml to edit, then preview with `setup --dry-run`."""
        from m365archive.config_template import render

        cli = state(ctx)
        target = path or cli.config_path
        if target.exists() and not force:
            fail(cli, f"{target} exists; use --force to overwrite", ExitCode.USAGE)
        dom = domain or (tenant if "." in tenant else "contoso.onmicrosoft.com")
        try:
            write_private(target, render(tenant_id=tenant, domain=dom))
        except OSError as exc:
            fail(cli, output_error(target, exc), ExitCode.USAGE)
        message = f"wrote {target}: edit it, then run `m365archive setup --dry-run --report plan.md`"
        finish(cli, Result("init", ExitCode.OK, data={"written": str(target)}, messages=[message]))
