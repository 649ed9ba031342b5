"""The journal: every change sent, its request-id and outcome, in SQLite.

It is the audit trail ("what did the tool do to this tenant, when, as whom") and what lets an
interrupted run continue: a change recorded as done for the same plan is not sent again.
Rows hold the operation's display line, never a resolved secret.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

SCHEMA = """
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


class Journal:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)
        self._lock = threading.Lock()

    def start_run(self, run_id: str, plan_id: str, kind: str, tenant: str, operator: str, version: str) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO runs VALUES (?,?,?,?,?,?,?,?,?)",
                (run_id, plan_id, kind, tenant, operator, time.time(), None, "running", version),
            )

    def finish_run(self, run_id: str, status: str) -> None:
        with self._lock:
            self._db.execute("UPDATE runs SET finished=?, status=? WHERE run_id=?", (time.time(), status, run_id))

    def record(self, rows: list[dict[str, Any]]) -> None:
        """Record outcomes; one transaction for many rows (a batch of mailboxes)."""
        with self._lock:
            self._db.execute("BEGIN")
            self._db.executemany(
                "INSERT INTO changes (run_id, plan_id, change_id, tenant, target, setting, action, operation,"
                " outcome, request_id, detail, outputs, at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                [
                    (
                        r["run_id"],
                        r["plan_id"],
                        r["change_id"],
                        r["tenant"],
                        r["target"],
                        r["setting"],
                        r["action"],
                        r["operation"],
                        r["outcome"],
                        r.get("request_id"),
                        r.get("detail"),
                        json.dumps(r.get("outputs") or {}),
                        time.time(),
                    )
                    for r in rows
                ],
            )
            self._db.execute("COMMIT")

    def completed(self, plan_id: str) -> dict[str, dict[str, Any]]:
        """Changes of this plan already done: change id -> their outputs."""
        with self._lock:
            cur = self._db.execute(
                "SELECT change_id, outputs FROM changes WHERE plan_id=? AND outcome='ok'", (plan_id,)
            )
            return {cid: json.loads(out or "{}") for cid, out in cur.fetchall()}

    def event(self, tenant: str, kind: str, detail: str) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO events (tenant, kind, detail, at) VALUES (?,?,?,?)",
                (tenant, kind, detail, time.time()),
            )

    def rows(self, table: str = "changes") -> list[dict[str, Any]]:
        if table not in ("changes", "runs", "events"):
            raise ValueError(table)
        with self._lock:
            cur = self._db.execute(f"SELECT * FROM {table}")
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def close(self) -> None:
        self._db.close()
