"""The journal: every change sent, its request-id and outcome, in SQLite.

It is the audit trail ("what did the tool do to this tenant, when, as whom") and what lets an
interrupted run continue: a change recorded as done for the same plan is not sent again.
Rows hold the operation's display line, never a resolved secret.

It tells the truth: a change is recorded as `sending` before it is sent and settled after; a run
is `running` until it ends as success, partial, error, interrupted or crashed; a run whose process
is gone (SIGKILL, power loss) is marked `interrupted` when the journal is next opened. The schema
is versioned with `PRAGMA user_version`; an older journal is migrated, never treated as corrupt.
A file that is not a readable journal is moved aside (never deleted) and the command says so.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Version 0 is the schema before versioning (tool versions up to the first plan format 2).
BASE_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, plan_id TEXT, kind TEXT, tenant TEXT, operator TEXT,
    started REAL, finished REAL, status TEXT, tool_version TEXT
);
CREATE TABLE IF NOT EXISTS changes (
    id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT, plan_id TEXT, change_id TEXT,
    tenant TEXT, target TEXT, setting TEXT, action TEXT, operation TEXT,
    outcome TEXT, request_id TEXT, detail TEXT, outputs TEXT, at REAL
);
CREATE INDEX IF NOT EXISTS changes_plan ON changes(plan_id, change_id, outcome);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT, tenant TEXT, kind TEXT, detail TEXT, at REAL
);
"""

# MIGRATIONS[n] takes a journal from version n-1 to n. Later work appends; never edit a released one.
MIGRATIONS: dict[int, list[str]] = {
    1: [
        # what ran, with which approved plan, in which process (to tell a dead run from a live one)
        "ALTER TABLE runs ADD COLUMN command TEXT",
        "ALTER TABLE runs ADD COLUMN plan_digest TEXT",
        "ALTER TABLE runs ADD COLUMN pid INTEGER",
        "ALTER TABLE runs ADD COLUMN host TEXT",
        "ALTER TABLE runs ADD COLUMN detail TEXT",
        "CREATE INDEX IF NOT EXISTS runs_digest ON runs(plan_digest)",
    ],
}
SCHEMA_VERSION = max(MIGRATIONS)
RUN_STATUSES = ("running", "success", "partial", "error", "interrupted", "crashed")


class JournalError(Exception):
    """The journal can't be used or written; the message is one line naming the file and what to do."""


class Journal:
    def __init__(self, path: Path, *, on_notice: Callable[[str], None] | None = None) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self.notices: list[str] = []
        try:
            self._db = self._open()
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, sqlite3.OperationalError) and not _corrupt(exc):
                raise JournalError(f"journal {path} can't be opened: {exc}") from None
            aside = self._set_aside()
            raise JournalError(
                f"journal {path} was not readable ({exc}); moved it aside to {aside.name} (kept, not deleted) "
                "and nothing was sent; run the command again to start a new journal"
            ) from None
        if on_notice is not None:
            for notice in self.notices:
                on_notice(notice)

    def _open(self) -> sqlite3.Connection:
        db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            version = int(db.execute("PRAGMA user_version").fetchone()[0])
            if version > SCHEMA_VERSION:
                db.close()
                raise JournalError(
                    f"journal {self.path} was written by a newer m365archive (schema {version}; this one reads up "
                    f"to {SCHEMA_VERSION}): upgrade m365archive"
                )
            if version < SCHEMA_VERSION:
                had_tables = db.execute("SELECT count(*) FROM sqlite_master WHERE name='runs'").fetchone()[0]
                self._migrate(db, version)
                if had_tables:
                    self.notices.append(f"journal {self.path}: migrated from schema {version} to {SCHEMA_VERSION}")
            self._reap(db)
        except BaseException:
            db.close()
            raise
        return db

    @staticmethod
    def _migrate(db: sqlite3.Connection, version: int) -> None:
        db.execute("BEGIN IMMEDIATE")
        try:
            if version == 0:
                for statement in BASE_SCHEMA.split(";"):
                    if statement.strip():
                        db.execute(statement)
            for target in range(version + 1, SCHEMA_VERSION + 1):
                for statement in MIGRATIONS[target]:
                    db.execute(statement)
            db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def _reap(self, db: sqlite3.Connection) -> None:
        """Runs left `running` by a process that is gone were interrupted (SIGKILL, power loss), or
        crashed when they left a marker saying the journal could not be written (see mark_crashed)."""
        for marker in self.path.parent.glob(f"{self.path.name}.crashed-*"):
            run_id = marker.name.rsplit(".crashed-", 1)[1]
            db.execute(
                "UPDATE runs SET status='crashed', detail=? WHERE run_id=? AND status='running'",
                ("the journal could not be written (a full disk?): the run stopped", run_id),
            )
            marker.unlink(missing_ok=True)
        host = socket.gethostname()
        rows = db.execute("SELECT run_id, pid, host FROM runs WHERE status='running'").fetchall()
        dead = [run_id for run_id, pid, on in rows if pid is None or (on == host and not _alive(int(pid)))]
        for run_id in dead:
            db.execute(
                "UPDATE runs SET status='interrupted', detail=coalesce(detail, ?) WHERE run_id=? AND status='running'",
                ("the process ended without finishing the run (killed or lost)", run_id),
            )

    def _set_aside(self) -> Path:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        aside = self.path.with_name(f"{self.path.name}.unreadable-{stamp}")
        n = 1
        while aside.exists():
            n += 1
            aside = self.path.with_name(f"{self.path.name}.unreadable-{stamp}-{n}")
        os.replace(self.path, aside)
        for suffix in ("-wal", "-shm"):
            side = self.path.with_name(self.path.name + suffix)
            if side.exists():
                os.replace(side, aside.with_name(aside.name + suffix))
        return aside

    def _write(self, fn: Callable[[sqlite3.Connection], Any]) -> Any:
        """One transaction; a failure to write (full disk, I/O error) is a JournalError naming the file."""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    value = fn(self._db)
                    self._db.execute("COMMIT")
                except BaseException:
                    if self._db.in_transaction:
                        self._db.execute("ROLLBACK")
                    raise
            except (sqlite3.Error, OSError) as exc:
                raise JournalError(f"journal {self.path} could not be written ({exc})") from None
            return value

    def start_run(
        self,
        run_id: str,
        plan_id: str,
        kind: str,
        tenant: str,
        operator: str,
        version: str,
        *,
        command: str = "",
        plan_digest: str = "",
    ) -> None:
        self._write(
            lambda db: db.execute(
                "INSERT INTO runs (run_id, plan_id, kind, tenant, operator, started, finished, status, tool_version,"
                " command, plan_digest, pid, host) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    run_id,
                    plan_id,
                    kind,
                    tenant,
                    operator,
                    time.time(),
                    None,
                    "running",
                    version,
                    command or kind,
                    plan_digest,
                    os.getpid(),
                    socket.gethostname(),
                ),
            )
        )

    def finish_run(self, run_id: str, status: str, detail: str = "") -> None:
        if status not in RUN_STATUSES:
            raise ValueError(status)
        self._write(
            lambda db: db.execute(
                "UPDATE runs SET finished=?, status=?, detail=? WHERE run_id=?",
                (time.time(), status, detail or None, run_id),
            )
        )

    def mark_crashed(self, run_id: str) -> None:
        """When the journal itself can't be written: an empty file beside it (a name needs no data
        blocks) says the run crashed; the next open records it."""
        # If even that fails, the next open finds the run's process gone and records it as interrupted.
        with contextlib.suppress(OSError):
            self.path.with_name(f"{self.path.name}.crashed-{run_id}").touch()

    def sending(self, rows: list[dict[str, Any]]) -> list[int]:
        """Record changes as being sent, before they are sent; returns their row ids for settle()."""

        def insert(db: sqlite3.Connection) -> list[int]:
            ids = []
            now = time.time()
            for r in rows:
                cur = db.execute(
                    "INSERT INTO changes (run_id, plan_id, change_id, tenant, target, setting, action, operation,"
                    " outcome, at) VALUES (?,?,?,?,?,?,?,?,?,?)",
                    (
                        r["run_id"],
                        r["plan_id"],
                        r["change_id"],
                        r["tenant"],
                        r["target"],
                        r["setting"],
                        r["action"],
                        r["operation"],
                        "sending",
                        now,
                    ),
                )
                ids.append(int(cur.lastrowid or 0))
            return ids

        result: list[int] = self._write(insert)
        return result

    def settle(self, ids: list[int], rows: list[dict[str, Any]]) -> None:
        """Record the outcomes of changes recorded as sending (one transaction for a batch)."""
        now = time.time()
        self._write(
            lambda db: db.executemany(
                "UPDATE changes SET outcome=?, request_id=?, detail=?, outputs=?, at=? WHERE id=?",
                [
                    (r["outcome"], r.get("request_id"), r.get("detail"), json.dumps(r.get("outputs") or {}), now, i)
                    for i, r in zip(ids, rows, strict=True)
                ],
            )
        )

    def record(self, rows: list[dict[str, Any]]) -> None:
        """Record outcomes of changes not sent through sending() (e.g. done on this machine)."""
        self.settle(self.sending(rows), rows)

    def completed(self, plan_id: str) -> dict[str, dict[str, Any]]:
        """Changes of this plan already done: change id -> their outputs."""
        with self._lock:
            cur = self._db.execute(
                "SELECT change_id, outputs FROM changes WHERE plan_id=? AND outcome='ok'", (plan_id,)
            )
            return {cid: json.loads(out or "{}") for cid, out in cur.fetchall()}

    def in_doubt(self, plan_id: str) -> set[str]:
        """Changes of this plan that were being sent when their run ended, with no outcome recorded."""
        with self._lock:
            cur = self._db.execute(
                "SELECT DISTINCT change_id FROM changes WHERE plan_id=? AND outcome='sending'", (plan_id,)
            )
            sending = {str(row[0]) for row in cur.fetchall()}
        return sending - set(self.completed(plan_id))

    def event(self, tenant: str, kind: str, detail: str) -> None:
        self._write(
            lambda db: db.execute(
                "INSERT INTO events (tenant, kind, detail, at) VALUES (?,?,?,?)", (tenant, kind, detail, time.time())
            )
        )

    def rows(self, table: str = "changes") -> list[dict[str, Any]]:
        if table not in ("changes", "runs", "events"):
            raise ValueError(table)
        with self._lock:
            cur = self._db.execute(f"SELECT * FROM {table}")
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def runs(self, limit: int | None = None) -> list[dict[str, Any]]:
        """Runs, newest first, each with `counts`: its changes by outcome (ok, failed, sending, ...)."""
        with self._lock:
            cur = self._db.execute(
                "SELECT * FROM runs ORDER BY started DESC, rowid DESC LIMIT ?", (-1 if limit is None else limit,)
            )
            names = [d[0] for d in cur.description]
            runs = [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
            counts: dict[str, dict[str, int]] = {}
            for run_id, outcome, n in self._db.execute(
                "SELECT run_id, outcome, count(*) FROM changes GROUP BY run_id, outcome"
            ).fetchall():
                counts.setdefault(run_id, {})[outcome] = n
        for run in runs:
            run["counts"] = counts.get(run["run_id"], {})
        return runs

    def run_changes(self, run_id: str) -> list[dict[str, Any]]:
        """One run's changes in the order they were journaled."""
        with self._lock:
            cur = self._db.execute("SELECT * FROM changes WHERE run_id=? ORDER BY id", (run_id,))
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def close(self) -> None:
        self._db.close()


def _corrupt(exc: sqlite3.DatabaseError) -> bool:
    text = str(exc).lower()
    return "not a database" in text or "malformed" in text or "corrupt" in text


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
