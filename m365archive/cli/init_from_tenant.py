"""`m365archive init --from-tenant`: the config that reproduces the tenant, and its scope file."""

from __future__ import annotations

from pathlib import Path
from typing import NoReturn

from m365archive.cli.common import CliState, call, finish, run, write_text
from m365archive.result import ExitCode, Result


def scope_path_for(config: Path) -> Path:
    """Where the users already configured go: beside the config, named after it."""
    return config.with_name(config.stem + ".users.txt")


def write_from_tenant(cli: CliState, target: Path, tenant: str | None, domain: str | None) -> NoReturn:
    """Read the tenant, then write the scope file (when users are configured) and the config."""
    from m365archive.app.from_tenant import config_from_tenant

    env = cli.env()
    scope = scope_path_for(target)
    made = run(cli, lambda: config_from_tenant(env, tenant, domain, scope))
    written = [str(target)]
    if made.scope_file is not None:
        call(cli, lambda: write_text(scope, made.scope_file or ""))
        written.append(str(scope))
    call(cli, lambda: write_text(target, made.config))
    messages = [
        *made.messages,
        f"wrote {', '.join(written)}: `m365archive setup --dry-run` with it plans nothing the tenant doesn't have",
    ]
    finish(cli, Result("init", ExitCode.OK, data={"written": written, **made.data}, messages=messages))
