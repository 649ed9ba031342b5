"""`m365archive sim serve`: run a simulated tenant on 127.0.0.1 until Ctrl-C."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Annotated

import typer

from m365archive.cli.common import Output, fail, state
from m365archive.result import ExitCode

# The `m365archive[sim]` extra (pyproject.toml): the web server stack a tenant machine doesn't need.
SIM_EXTRA = ("starlette", "uvicorn", "psrpcore")

app = typer.Typer(
    help="The simulated Microsoft 365 tenant (for trying m365archive without a tenant).",
    no_args_is_help=True,
    rich_markup_mode=None,
)


@app.command("serve")
def serve(
    ctx: typer.Context,
    scenario: Annotated[
        str,
        typer.Option(
            help="A scenario file (.toml/.json, or .jsonl from `m365archive capture`) or a built-in name: "
            "fresh, half-configured, hybrid, no-seats, legacy-leftovers."
        ),
    ] = "fresh",
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1 (0 picks a free one).")] = 0,
    request_log: Annotated[Path | None, typer.Option("--request-log", help="Append one JSON line per request.")] = None,
    generate_users: Annotated[int, typer.Option("--generate-users", help="Add N generated users with mailboxes.")] = 0,
    seed: Annotated[int, typer.Option(help="Seed for generated users, latency and faults.")] = 0,
    time_scale: Annotated[
        float | None,
        typer.Option("--time-scale", help="Simulated delays x this (0.001 turns minutes into milliseconds)."),
    ] = None,
) -> None:
    """Serve a simulated tenant. Point m365archive at it with --sim URL (or M365ARCHIVE_SIM=URL).

    Example:

    \b
      m365archive sim serve --scenario fresh --port 8765
      m365archive --sim http://127.0.0.1:8765 setup --dry-run
    """
    cli = state(ctx)
    if cli.output is Output.markdown:
        fail(cli, "sim serve has no Markdown output (it serves until Ctrl-C)", ExitCode.USAGE, "drop -o markdown")
    missing = [name for name in SIM_EXTRA if importlib.util.find_spec(name) is None]
    if missing:
        fail(
            cli,
            f"the simulated tenant is an optional extra and {', '.join(missing)} is not installed",
            ExitCode.PREREQUISITE,
            "pipx install --force 'm365archive[sim]'  (or: pip install 'm365archive[sim]')",
        )
    from m365archive.sim.scenario import generate_users as generate
    from m365archive.sim.scenario import load_scenario
    from m365archive.sim.server import SimulatedTenant

    try:
        tenant = load_scenario(scenario)
    except (ValueError, OSError) as exc:
        fail(cli, str(exc), ExitCode.USAGE)
    if time_scale is not None:
        tenant.knobs.time_scale = time_scale
        tenant.clock.time_scale = time_scale
    if seed:
        tenant.knobs.seed = seed
    if generate_users:
        generate(tenant, generate_users, seed=seed)
    sim = SimulatedTenant(tenant, port=port, request_log=request_log)

    def ready(running: SimulatedTenant) -> None:
        cli.out.print(
            f"Simulated tenant {tenant.domain} ({tenant.tenant_id}) with {len(tenant.users)} users",
            markup=False,
        )
        cli.out.print(f"URL: {running.url}", markup=False)
        for account, password in tenant.onprem_users.items():
            if password:
                cli.out.print(
                    f"on-premises account {account}: password in M365ARCHIVE_ONPREM_PASSWORD (shown once): " + password,
                    markup=False,
                )
        cli.out.print(
            f"Try: m365archive --sim {running.url} setup --dry-run    (Ctrl-C stops the simulator)",
            markup=False,
        )

    try:
        sim.serve_forever(on_ready=ready)
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        fail(
            cli,
            f"cannot serve on 127.0.0.1:{port}: {exc.strerror or exc}",
            ExitCode.USAGE,
            "--port 0 picks a free port",
        )
