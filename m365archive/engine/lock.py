"""One applying run per tenant on a machine: a lock file in the state directory.

The lock is an OS file lock (flock on POSIX, msvcrt on Windows) on `<state>/locks/<tenant>.lock`,
so the kernel releases it when the holder exits, even after SIGKILL: a crashed run never leaves a
lock behind on this machine. The file names the holder (operator, pid, host, start time, command)
so a refused run can say who holds it. Across machines a lock file can't help; the runner's
"already exists" handling covers that.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import sys
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import IO, Any


@dataclass(frozen=True, slots=True)
class LockHolder:
    holder: str  # who: the signed-in operator
    pid: int
    host: str
    started: str  # ISO 8601, UTC
    command: str = ""

    def describe(self) -> str:
        who = f"{self.holder} " if self.holder else ""
        what = f" ({self.command})" if self.command else ""
        return f"{who}pid {self.pid} on {self.host}, since {self.started}{what}"


class LockHeld(Exception):
    """Another applying run holds the tenant's lock."""

    def __init__(self, tenant: str, path: Path, holder: LockHolder | None) -> None:
        self.tenant = tenant
        self.path = path
        self.holder = holder
        who = holder.describe() if holder else "a run that has not yet written its name"
        super().__init__(f"another applying run holds tenant {tenant}: {who}")

    @property
    def remedy(self) -> str:
        stop = f"stop process {self.holder.pid} on {self.holder.host}" if self.holder else "stop that process"
        return (
            f"wait for it to finish; if it is stuck, {stop}: the lock is released when the process exits. "
            f"Deleting {self.path} breaks the lock and lets two runs send at once."
        )


def lock_path(state_dir: Path, tenant: str) -> Path:
    safe = re.sub(r"[^a-z0-9.-]", "_", tenant.lower()) or "_"
    return state_dir / "locks" / f"{safe}.lock"


class TenantLock:
    """`with TenantLock(state_dir, tenant, holder=...):` — raises LockHeld when another run holds it."""

    def __init__(self, state_dir: Path, tenant: str, *, holder: str = "", command: str = "") -> None:
        self.tenant = tenant
        self.path = lock_path(state_dir, tenant)
        self.holder = holder
        self.command = command
        self._file: IO[str] | None = None

    def acquire(self) -> LockHolder:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        for _ in range(10):
            handle = _open(self.path)
            if not _try_lock(handle):
                held = read_holder(self.path)
                handle.close()
                raise LockHeld(self.tenant, self.path, held)
            if _same_file(handle, self.path):
                break
            # the holder before us deleted the file as it released: lock the file that is there now
            handle.close()
        else:  # pragma: no cover - ten releases in a row between open and lock
            raise LockHeld(self.tenant, self.path, read_holder(self.path))
        me = LockHolder(
            holder=self.holder,
            pid=os.getpid(),
            host=socket.gethostname(),
            started=datetime.now(UTC).isoformat(timespec="seconds"),
            command=self.command,
        )
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps(asdict(me)))
        handle.flush()
        os.fsync(handle.fileno())
        self._file = handle
        return me

    def release(self) -> None:
        if self._file is None:
            return
        handle, self._file = self._file, None
        try:
            handle.seek(0)
            handle.truncate()
            if _same_file(handle, self.path):
                with contextlib.suppress(OSError):  # Windows can't delete an open file; the next run reuses it
                    self.path.unlink()
        finally:
            handle.close()  # closing releases the OS lock

    def __enter__(self) -> TenantLock:
        self.acquire()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.release()


def read_holder(path: Path) -> LockHolder | None:
    try:
        data: Any = json.loads(path.read_text(encoding="utf-8"))
        return LockHolder(**data)
    except (OSError, ValueError, TypeError):
        return None


def _open(path: Path) -> IO[str]:
    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags, 0o600)
    return os.fdopen(fd, "r+", encoding="utf-8")


def _same_file(handle: IO[str], path: Path) -> bool:
    try:
        mine, there = os.fstat(handle.fileno()), os.stat(path)
    except FileNotFoundError:
        return False
    return (mine.st_dev, mine.st_ino) == (there.st_dev, there.st_ino)


def _try_lock(handle: IO[str]) -> bool:
    if sys.platform == "win32":
        import msvcrt

        try:
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    import fcntl

    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True
