"""`m365archive init`: write a commented desired-state file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from m365archive.cli.common import output_error, state
from m365archive.files import write_private
from m365archive.result import ExitCode


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
            cli.err.print(f"error: {target} exists; use --force to overwrite", markup=False)
            raise typer.Exit(ExitCode.USAGE)
        dom = domain or (tenant if "." in tenant else "contoso.onmicrosoft.com")
        try:
            write_private(target, render(tenant_id=tenant, domain=dom))
        except OSError as exc:
            cli.err.print(f"error: {output_error(target, exc)}", markup=False)
            raise typer.Exit(ExitCode.USAGE) from None
        cli.out.print(f"wrote {target}: edit it, then run `m365archive setup --dry-run --report plan.md`", markup=False)
