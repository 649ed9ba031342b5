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
        tenant: Annotated[
            str | None, typer.Option(help="Tenant id (GUID) or initial domain (default: --domain).")
        ] = None,
        domain: Annotated[
            str | None,
            typer.Option(help="The domain of the UPNs written (default: --tenant when it is a domain)."),
        ] = None,
        procedure: Annotated[
            str,
            typer.Option(
                help="purview-connector (today's route: Purview data connectors) or partner-ews (the "
                "documented procedure of the route Microsoft retired on 2024-12-30).",
            ),
        ] = "purview-connector",
        force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
        from_tenant: Annotated[
            bool,
            typer.Option("--from-tenant", help="Read the tenant (reads only) and write a config that reproduces it."),
        ] = False,
    ) -> None:
        """Write a commented m365archive.toml to edit, then preview with `setup --dry-run`.

        Names (catch-all, reviewers, connector admin) are made from --domain; nothing is left as a
        placeholder tenant. With a tenant id (GUID), give --domain too.

        Examples:

        \b
          m365archive init --domain fabrikam.onmicrosoft.com
          m365archive init --tenant 72f988bf-86f1-41af-91ab-2d7cd011db47 --domain fabrikam.com
          m365archive init --domain fabrikam.onmicrosoft.com --procedure partner-ews
        """
        from m365archive.config_template import RETIRED_NOTE, TemplateError, names, render

        cli = state(ctx)
        target = path or cli.config_path
        if from_tenant:
            from m365archive.cli.init_from_tenant import write_from_tenant

            if target.exists() and not force:
                fail(cli, f"{target} exists; use --force to overwrite", ExitCode.USAGE)
            write_from_tenant(cli, target, tenant, domain)
        try:
            tenant_id, dom = names(tenant, domain)
            text = render(tenant_id=tenant_id, domain=dom, procedure=procedure)
        except TemplateError as exc:
            fail(cli, str(exc), ExitCode.USAGE)
        if target.exists() and not force:
            fail(cli, f"{target} exists; use --force to overwrite", ExitCode.USAGE)
        try:
            write_private(target, text)
        except OSError as exc:
            fail(cli, output_error(target, exc), ExitCode.USAGE)
        messages = [f"wrote {target} ({procedure}, tenant {tenant_id}, names @{dom})"]
        if procedure == "partner-ews":
            messages.append(f"note: {RETIRED_NOTE}")
        messages.append("edit it, then run `m365archive setup --dry-run --report plan.md`")
        data = {"written": str(target), "procedure": procedure, "tenant": tenant_id, "domain": dom}
        finish(cli, Result("init", ExitCode.OK, data=data, messages=messages))
