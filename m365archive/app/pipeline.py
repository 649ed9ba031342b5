"""The one pipeline every command that changes the tenant goes through:

    load_saved_plan -> connect -> plan (or validate_saved) -> save -> confirm -> apply_lock -> apply -> result

What differs between commands is a `Procedure` (which steps plan, how a saved plan is re-planned,
which secrets its placeholders need, what to keep locally around apply). What the operator sees
and answers comes in through a `Frontend` (the CLI's; tests may pass their own). The pipeline never
chooses an exit code: it returns a `PipelineResult` whose `outcome` and apply result the CLI maps
(cli/exits.py), and raises `CommandError` with a reason for refusals.

Each stage is its own function so later work has one obvious place:
- `load_saved_plan`: reading `--plan FILE` (format checks);
- `validate_saved`: whether a saved plan may be applied here and now (kind, tenant, freshness;
  plan binding adds its digest and allow-list checks here);
- `apply_lock`: held around apply (the per-tenant apply lock goes here);
- `apply_plan`: the plan's Changes and nothing else, through one Runner over one Executor.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

from m365archive import __version__
from m365archive.app.context import Env, PrerequisiteFailed, connect
from m365archive.app.executor import ApplyExecutor
from m365archive.config import Config
from m365archive.engine.binding import Binding, PlanRefused, bind, check_digest, check_tenant
from m365archive.engine.checks import Check, blocking_failures
from m365archive.engine.journal import Journal, JournalError
from m365archive.engine.plan import SECRET, Plan, PlanFormatError, sha256_digest
from m365archive.engine.runner import ApplyResult, Runner, SecretResolver
from m365archive.errors import CommandError, Reason
from m365archive.files import write_error, write_private
from m365archive.report.ticket import TicketContext
from m365archive.tenant.session import TenantSession


class Outcome(StrEnum):
    """How a pipeline run ended (the CLI maps it, with the apply result, to an exit code)."""

    NO_CHANGES = "no-changes"  # the tenant is already as planned: nothing to confirm or send
    DRY_RUN = "dry-run"  # planned and reported, nothing sent
    DECLINED = "declined"  # the operator said no
    BLOCKED = "blocked"  # a blocking prerequisite check failed: reported and saved, nothing sent (exit 7)
    APPLIED = "applied"  # the plan was applied (see `applied` for how it went)


@dataclass
class PipelineOptions:
    """What every changing command takes: the flags of `setup` (see the README)."""

    dry_run: bool = False
    report: Path | None = None
    plan_out: Path | None = None
    plan_file: Path | None = None
    csv: Path | None = None
    ticket: TicketContext | None = None  # the change ticket's target, config digest and apply command
    expect_digest: str | None = None  # with plan_file: the digest the change ticket approved


@dataclass
class Frontend:
    """How the pipeline talks to whoever runs it. The CLI shows the plan, asks, shows progress and
    installs its Ctrl-C handling on the runner; the defaults show nothing and say yes."""

    show_plan: Callable[[Plan], None] = lambda plan: None
    say: Callable[[str], None] = lambda line: None  # a line before asking (a saved plan's digest, resuming)
    confirm: Callable[[Plan], bool] = lambda plan: True
    applying: Callable[[], AbstractContextManager[Any]] = nullcontext
    on_runner: Callable[[Runner], None] = lambda runner: None


@dataclass
class PipelineResult:
    command: str
    plan: Plan
    outcome: Outcome
    applied: ApplyResult | None = None
    report: Path | None = None
    plan_out: Path | None = None
    notes: list[str] = field(default_factory=list)  # the procedure's own lines for the operator
    errors: list[str] = field(default_factory=list)  # the procedure's own one-line failures
    data: dict[str, Any] = field(default_factory=dict)  # the procedure's own fields for the JSON envelope

    @property
    def pending(self) -> int:
        return len(self.plan.pending)


class Procedure:
    """What one changing command plans and keeps; the pipeline does the rest.

    Subclasses set `command`, `kind` and `noun` and implement `plan`; the other methods have
    defaults for procedures without secrets or local state."""

    command = ""  # "setup", "legacy cleanup", ...: named in hints
    kind = ""  # the Plan.kind it makes; a saved plan of another kind is refused
    noun = "change(s)"  # what a pending change is called in messages ("removal(s)")
    report_title = ""  # the Markdown report's title ("" = the renderer's default)
    max_concurrency = 8

    def check(self) -> None:
        """Before connecting: fail now (nothing read, nothing written) when something local is missing."""

    async def plan(self, session: TenantSession) -> Plan:
        raise NotImplementedError

    async def replan(self, session: TenantSession, saved: Plan) -> Plan:
        """The plan this command makes now, with the selection (steps, options) the saved plan was made with."""
        return await self.plan(session)

    def secrets(self, plan: Plan) -> SecretResolver:
        """The values the plan's ${secret:...} placeholders stand for, resolved before the first write."""
        names = secret_names(plan)
        if names:
            raise CommandError(f"the plan needs an unknown secret {sorted(names)[0]!r}", Reason.USAGE)
        return _no_secret

    def dry_run_checks(self, plan: Plan) -> list[Check]:
        """Advisory checks only a dry run adds (e.g. where a secret would be kept)."""
        return []

    async def access_checks(self, session: TenantSession, plan: Plan) -> list[Check]:
        """Checks of what the signed-in principal holds against what the plan's changes need (preflight's
        verdicts): blocking when something is missing or only eligible, advisory when it can't be told."""
        return []

    def before_apply(self, plan: Plan) -> None:
        """After confirmation, right before the first write."""

    async def after_apply(self, session: TenantSession, plan: Plan, result: ApplyResult, journal: Journal) -> None:
        """After the runner finished (also when it failed or was interrupted)."""

    def notes(self, result: PipelineResult) -> list[str]:
        """Lines for the operator about this run (the CLI prints them after the plan or result)."""
        return []


def _no_secret(name: str) -> str:
    raise CommandError(f"the plan needs an unknown secret {name!r}", Reason.USAGE)


def secret_names(plan: Plan) -> set[str]:
    """The ${secret:…} names the plan's changes use, read one change at a time: the whole plan as one
    JSON text is hundreds of MB at 100,000 mailboxes, and every dry run asks."""
    names: set[str] = set()
    for change in plan.changes:
        names.update(SECRET.findall(json.dumps(change.to_dict(), default=str)))
    return names


# --- the stages ------------------------------------------------------------------------------------


def load_saved_plan(path: Path, expect_digest: str | None = None) -> Plan:
    """Read `--plan FILE` and refuse it before connecting: missing, unreadable, an older format or
    holding anything this tool never builds (tenant/plan_policy.py) is exit 4; edited after it was made
    (its digest does not match its contents) or not the digest the ticket approved is exit 12."""
    from m365archive.tenant.plan_policy import PlanPolicyError, validate

    try:
        saved = Plan.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise CommandError(f"{path}: no such plan file", Reason.USAGE) from None
    except (ValueError, PlanFormatError) as exc:
        raise CommandError(f"{path}: {exc}", Reason.USAGE) from None
    except OSError as exc:
        raise CommandError(f"{path}: can't read the plan file: {exc.strerror}", Reason.USAGE) from None
    try:
        validate(saved)
    except PlanPolicyError as exc:
        raise CommandError(f"{path}: refused, nothing was sent: {exc}", Reason.USAGE) from None
    try:
        check_digest(saved, expect_digest)
    except PlanRefused as exc:
        raise _refusal(exc) from None
    return saved


def _refusal(exc: PlanRefused) -> CommandError:
    return CommandError(exc.message, Reason.PLAN_MISMATCH if exc.reason == "mismatch" else Reason.STALE_PLAN)


def config_digest(config: Config) -> str:
    """The digest of the validated config (its meaning, not its comments or layout)."""
    return sha256_digest(config.model_dump(mode="json"))


def stamp(plan: Plan, config: Config, procedure: Procedure) -> Plan:
    """What binds a plan to what produced it: the config's digest and the selection (see engine/plan.py)."""
    plan.config_digest = config_digest(config)
    if not plan.selection:
        plan.selection = {"steps": [procedure.kind]}
    return plan


async def validate_saved(
    procedure: Procedure, env: Env, config: Config, session: TenantSession, saved: Plan
) -> Binding:
    """Refuse a saved plan that is not this command's (4), not this tenant's (6) or not this config's (12);
    re-plan now with its selection replayed and bind it (engine/binding.py): changes that differ are 12,
    a tenant changed since is 6, an interrupted apply of it resumes. Returns what to apply."""
    if saved.kind != procedure.kind:
        raise CommandError(
            f"this is a {saved.kind} plan, not a {procedure.command} plan ({procedure.kind})", Reason.USAGE
        )
    hint = f"Make a new plan with `m365archive {procedure.command} --dry-run --plan-out FILE`."
    try:
        check_tenant(saved, session.endpoints.tenant_id)
    except PlanRefused as exc:
        raise _refusal(exc) from None
    if saved.config_digest != config_digest(config):
        raise CommandError(
            f"the plan was made from another config than this one (its config digest differs), so nothing was "
            f"sent. {hint}",
            Reason.PLAN_MISMATCH,
        )
    current = stamp(await procedure.replan(session, saved), config, procedure)
    journal = env.journal()
    try:
        done, in_doubt = journal.completed(saved.plan_id), journal.in_doubt(saved.plan_id)
    finally:
        journal.close()
    try:
        return bind(saved, current, done, in_doubt, replan_hint=hint)
    except PlanRefused as exc:
        raise _refusal(exc) from None


def save(procedure: Procedure, plan: Plan, options: PipelineOptions, result: ApplyResult | None = None) -> None:
    """Write the report, the plan file and the CSV the operator asked for (owner-only files); before apply
    all three, after apply the CSV again with outcomes. An unwritable path is a usage error."""
    from m365archive.report import csvout, markdown

    if result is None and options.report:
        title = procedure.report_title
        text = (
            markdown.render_plan(plan, title=title, ticket=options.ticket)
            if title
            else markdown.render_plan(plan, ticket=options.ticket)
        )
        _write(options.report, lambda path: write_private(path, text))
    if result is None and options.plan_out:
        _write(options.plan_out, lambda path: write_private(path, plan.to_json()))
    if options.csv:
        _write(options.csv, lambda path: csvout.write_changes(path, plan, result))


def _write(path: Path, write: Callable[[Path], None]) -> None:
    try:
        write(path)
    except OSError as exc:
        raise CommandError(write_error(path, exc), Reason.USAGE) from None


@contextmanager
def apply_lock(env: Env, plan: Plan, operator: str = "") -> Iterator[None]:
    """One applying run per tenant on this machine, held from before the first write (secrets included)
    to the end of apply; a second run is refused with exit 11 and told who holds it and how to break it."""
    from m365archive.engine.lock import LockHeld, TenantLock
    from m365archive.paths import data_dir

    lock = TenantLock(data_dir(), plan.tenant.get("id", "") or "unknown", holder=operator, command=plan.kind)
    try:
        lock.acquire()
    except LockHeld as exc:
        raise CommandError(f"{exc}; nothing was sent", Reason.LOCKED, exc.remedy) from None
    try:
        yield
    finally:
        lock.release()


async def apply_plan(
    env: Env,
    session: TenantSession,
    plan: Plan,
    secrets: SecretResolver,
    *,
    procedure: Procedure | None = None,
    on_runner: Callable[[Runner], None] | None = None,
) -> ApplyResult:
    """The plan's Changes and nothing else: checked against what this tool builds, then one Runner, one
    Executor (the tenant, and this machine for "local" changes), every outcome journaled, then the
    procedure's after_apply. A journal that can't be written stops the run (one line, exit 1)."""
    from m365archive.tenant.plan_policy import PlanPolicyError, validate

    try:
        validate(plan)
    except PlanPolicyError as exc:
        raise CommandError(f"refused, nothing was sent: {exc}", Reason.USAGE) from None
    journal = env.journal()
    try:
        runner = Runner(
            ApplyExecutor(session),
            journal,
            secrets=secrets,
            on_event=env.on_event,
            tool_version=__version__,
            command=procedure.command if procedure is not None else "",
        )
        if on_runner:
            on_runner(runner)
        try:
            result = await runner.apply(plan)
        except JournalError as exc:
            raise CommandError(
                f"{exc}; the run stopped and sent nothing more (`status` shows what is in place)", Reason.ERROR
            ) from None
        if procedure is not None:
            await procedure.after_apply(session, plan, result, journal)
        return result
    finally:
        journal.close()


async def run(
    env: Env,
    config: Config,
    procedure: Procedure,
    options: PipelineOptions,
    frontend: Frontend | None = None,
) -> PipelineResult:
    """Plan (or load and validate a saved plan), save, show, confirm, apply, and say how it went."""
    ui = frontend or Frontend()
    if options.expect_digest is not None and options.plan_file is None:
        raise CommandError("--expect-digest goes with --plan FILE", Reason.USAGE)
    saved = load_saved_plan(options.plan_file, options.expect_digest) if options.plan_file is not None else None
    procedure.check()
    async with connect(env, config, max_concurrency=procedure.max_concurrency) as session:
        if saved is not None:
            binding = await validate_saved(procedure, env, config, session, saved)
            plan = binding.plan
            plan.checks += await procedure.access_checks(session, plan)
            ui.say(f"Plan digest: {saved.digest}")
            if binding.message:
                ui.say(binding.message)
        else:
            try:
                plan = stamp(await procedure.plan(session), config, procedure)
            except PrerequisiteFailed as exc:
                if exc.plan is not None:  # the report still says what failed, and that nothing is sent
                    save(procedure, stamp(exc.plan, config, procedure), replace(options, plan_out=None, csv=None))
                raise
            plan.checks += await procedure.access_checks(session, plan)
            if options.dry_run:  # after stamp: reading the plan's secrets seals its digest
                plan.checks += procedure.dry_run_checks(plan)
        save(procedure, plan, options)
        result = PipelineResult(procedure.command, plan, Outcome.DRY_RUN, report=options.report)
        result.plan_out = options.plan_out
        if not plan.pending:
            result.outcome = Outcome.NO_CHANGES
        ui.show_plan(plan)
        blocked = blocking_failures(plan.checks)
        plan.appliable = plan.appliable and not blocked
        if blocked:  # reported and saved for the ticket (marked not appliable); nothing is sent
            result.outcome = Outcome.BLOCKED
            result.errors = [c.title for c in blocked]
            result.notes = procedure.notes(result)
            return result
        if options.dry_run or not plan.pending:
            result.notes = procedure.notes(result)
            return result
        if not ui.confirm(plan):
            result.outcome = Outcome.DECLINED
            result.notes = procedure.notes(result)
            return result
        with apply_lock(env, plan, session.operator):
            secrets = procedure.secrets(plan)
            with ui.applying():
                procedure.before_apply(plan)
                result.applied = await apply_plan(
                    env, session, plan, secrets, procedure=procedure, on_runner=ui.on_runner
                )
        result.outcome = Outcome.APPLIED
        save(procedure, plan, options, result.applied)
        result.notes = procedure.notes(result)
        return result


__all__ = [
    "Frontend",
    "Outcome",
    "PipelineOptions",
    "PipelineResult",
    "Procedure",
    "apply_lock",
    "apply_plan",
    "config_digest",
    "load_saved_plan",
    "run",
    "save",
    "secret_names",
    "stamp",
    "validate_saved",
]
