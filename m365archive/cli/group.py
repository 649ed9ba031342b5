"""The root command group: global options before or after the command, usage errors as exit 4.

click reads a group's options only before the subcommand's name; admins write
`m365archive status --output markdown` as they write `az ... --output table`. `main()` moves the
global options it finds after the command to the front (unless that command defines an option of
the same name), then runs the command line without click's standalone handling, so that a usage
error exits 4 (USAGE) with one line and a "did you mean", or the JSON envelope under `-o json`.
"""

from __future__ import annotations

import difflib
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

import typer
from typer._click import exceptions as click_exceptions  # typer vendors click (typer >= 0.29)
from typer.core import TyperGroup

from m365archive.result import ExitCode

# Root options that may follow the command (by parameter name); completion options stay in front.
GLOBAL_OPTIONS = frozenset({"output", "config", "sim", "debug", "verbose", "quiet", "no_color", "query"})


class RootGroup(TyperGroup):
    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        argv = lift_global_options(self, list(sys.argv[1:] if args is None else args))
        add_global_epilog(self)
        if not standalone_mode:
            return super().main(argv, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            rv = super().main(argv, prog_name, complete_var, standalone_mode=False, **extra)
        except click_exceptions.NoArgsIsHelpError as exc:
            exc.show()  # the help text: nothing was asked for
            sys.exit(ExitCode.USAGE)
        except click_exceptions.UsageError as exc:
            usage_error(self, exc, argv)
        except click_exceptions.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except typer.Abort:
            typer.echo("Aborted.", err=True)
            sys.exit(ExitCode.INTERRUPTED)
        sys.exit(rv if isinstance(rv, int) else 0)


def _option_table(group: Any) -> dict[str, bool]:
    """Option string -> takes a value, for the root's global options."""
    table: dict[str, bool] = {}
    for param in group.params:
        if param.name in GLOBAL_OPTIONS and param.param_type_name == "option":
            for opt in (*param.opts, *param.secondary_opts):
                table[opt] = not (param.is_flag or param.count)
    return table


GLOBAL_EPILOG_MARK = "Global options"


def global_epilog(group: Any) -> str:
    """The paragraph every subcommand's --help ends with: the root's global options, which may come
    before or after the command. Made from the root's own parameters, so it can't drift from them."""
    names = []
    for param in group.params:
        if param.name in GLOBAL_OPTIONS and param.param_type_name == "option":
            names.append("/".join(sorted((*param.opts, *param.secondary_opts), key=len)))
    return f"{GLOBAL_EPILOG_MARK} (before or after the command; see `m365archive --help`): {', '.join(names)}."


def add_global_epilog(group: Any, root: Any = None) -> None:
    """Append the global options paragraph to the help of every command under `group` (once)."""
    root = root or group
    text = global_epilog(root)
    for command in getattr(group, "commands", {}).values():
        epilog = command.epilog or ""
        if GLOBAL_EPILOG_MARK not in epilog:
            command.epilog = f"{epilog}\n\n{text}".strip()
        add_global_epilog(command, root)


def _own_options(command: Any) -> set[str]:
    """Every option string a command (and, for a group, its subcommands) defines itself."""
    names: set[str] = set()
    for param in getattr(command, "params", []):
        names.update(getattr(param, "opts", []))
        names.update(getattr(param, "secondary_opts", []))
    for sub in getattr(command, "commands", {}).values():
        names |= _own_options(sub)
    return names


def _global_tokens(token: str, table: dict[str, bool], shadowed: set[str]) -> int:
    """How many tokens a global option starting at `token` spans (0: not a global option)."""
    if token.startswith("--"):
        name = token.split("=", 1)[0]
        if name not in table or name in shadowed:
            return 0
        return 2 if table[name] and "=" not in token else 1
    if len(token) < 2 or token[0] != "-" or token[1] == "-":
        return 0
    first = token[:2]
    if first in table and first not in shadowed and table[first]:
        return 1 if len(token) > 2 else 2  # -ojson or -o json
    flags = [f"-{char}" for char in token[1:]]
    if all(flag in table and flag not in shadowed and not table[flag] for flag in flags):
        return 1  # -v, -vv, -qv
    return 0


def lift_global_options(group: Any, args: list[str]) -> list[str]:
    table = _option_table(group)
    i = 0
    while i < len(args) and args[i].startswith("-") and args[i] != "--":
        i += max(_global_tokens(args[i], table, set()), 1)
    if i >= len(args) or args[i] == "--":
        return args
    head, rest = args[:i], args[i:]
    shadowed = _own_options(group.commands.get(rest[0]))
    lifted: list[str] = []
    kept: list[str] = []
    j = 0
    while j < len(rest):
        if rest[j] == "--":
            kept.extend(rest[j:])
            break
        span = _global_tokens(rest[j], table, shadowed)
        if span:
            lifted.extend(rest[j : j + span])
            j += span
        else:
            kept.append(rest[j])
            j += 1
    return [*head, *lifted, *kept]


def _wants_json(args: list[str]) -> bool:
    for k, token in enumerate(args):
        if token == "--":
            break
        if token in ("-o", "--output") and k + 1 < len(args):
            return args[k + 1] == "json"
        if token in ("--output=json", "-ojson"):
            return True
    return False


def usage_error(group: Any, exc: click_exceptions.UsageError, args: list[str]) -> NoReturn:
    from m365archive.cli.common import CliState, Output, fail

    message = exc.format_message()
    ctx = exc.ctx
    if isinstance(exc, click_exceptions.NoSuchOption) and not exc.possibilities:
        known = set(_option_table(group)) | (_own_options(ctx.command) if ctx else set())
        close = difflib.get_close_matches(exc.option_name, sorted(known), n=1, cutoff=0.75)
        if close:
            message = f"{message}. Did you mean {close[0]}?"
    command = " ".join(ctx.command_path.split()[1:]) if ctx else ""
    cli = CliState(output=Output.json if _wants_json(args) else Output.human, command=command)
    hint = f"see `{ctx.command_path} --help`" if ctx else "see `m365archive --help`"
    try:
        fail(cli, message, ExitCode.USAGE, hint)
    except typer.Exit as done:
        sys.exit(done.exit_code)
