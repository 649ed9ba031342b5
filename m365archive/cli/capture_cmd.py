"""`m365archive capture`: a pseudonymised twin of the tenant for the simulator (reads only)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from m365archive.cli.common import fail, finish, run, state
from m365archive.result import ExitCode, Result


def register(app: typer.Typer) -> None:
    @app.command("capture")
    def capture(
        ctx: typer.Context,
        out: Annotated[Path, typer.Option("--out", help="The scenario file to write (JSON lines).")] = Path(
            "twin.jsonl"
        ),
        keep_names: Annotated[
            bool, typer.Option("--keep-names", help="Keep names, UPNs and ids (default: pseudonymised).")
        ] = False,
        force: Annotated[bool, typer.Option("--force", help="Overwrite existing files.")] = False,
    ) -> None:
        """Read the tenant (reads only) into a scenario the simulator serves, with the matching config copy.

        Names, UPNs, domains and object ids are pseudonymised with a key made for this capture and never
        written (relationships hold); no password or secret is ever read or written.

        Examples:

        \b
          m365archive capture --out twin.jsonl
          m365archive sim serve --scenario twin.jsonl --port 8765
          m365archive --sim http://127.0.0.1:8765 --config twin.toml setup --dry-run
        """
        from m365archive.app.capture import capture as capture_tenant
        from m365archive.app.capture import twin_paths
        from m365archive.config import decode_text

        cli = state(ctx)
        config = cli.load_config()
        existing = [p for p in (out, *twin_paths(out)) if p.exists()]
        if existing and not force:
            fail(cli, f"{existing[0]} exists; use --force to overwrite", ExitCode.USAGE)
        if out.resolve() == cli.config_path.resolve() or twin_paths(out)[0].resolve() == cli.config_path.resolve():
            fail(
                cli, f"--out {out} would overwrite the config {cli.config_path}", ExitCode.USAGE, "choose another --out"
            )
        text = decode_text(cli.config_path.read_bytes())
        env = cli.env()
        made = run(cli, lambda: capture_tenant(env, config, text, out, keep_names=keep_names))
        users, mailboxes = made.counts.get("user", 0), made.counts.get("mailbox", 0)
        kind = "pseudonymised" if made.pseudonymised else "with real names (--keep-names)"
        messages = [
            f"captured {users:,} users and {mailboxes:,} mailboxes in {made.seconds:.1f} s to {made.scenario} ({kind})",
            f"config for the twin: {made.config}" + (f" (scope file {made.scope_file})" if made.scope_file else ""),
            f"rehearse: m365archive sim serve --scenario {made.scenario}, then "
            f"m365archive --sim <URL> --config {made.config} setup --dry-run",
        ]
        data = {
            "scenario": str(made.scenario),
            "config": str(made.config),
            "scope_file": str(made.scope_file) if made.scope_file else None,
            "pseudonymised": made.pseudonymised,
            "counts": made.counts,
            "seconds": round(made.seconds, 3),
        }
        finish(cli, Result("capture", ExitCode.OK, data=data, messages=messages))
