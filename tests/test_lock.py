"""The per-tenant apply lock: one applying run per tenant on a machine, released even after SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from m365archive.engine.lock import LockHeld, TenantLock, lock_path, read_holder

TENANT = "6f1c2a4e-3b5d-4c7e-9f10-2a3b4c5d6e7f"


def test_a_second_run_is_refused_and_told_who_holds_the_lock(tmp_path: Path) -> None:
    with TenantLock(tmp_path, TENANT, holder="admin@contoso.onmicrosoft.com", command="setup"):
        with pytest.raises(LockHeld) as err:
            TenantLock(tmp_path, TENANT.upper(), holder="other").acquire()
        held = err.value.holder
        assert held is not None and held.pid == os.getpid() and held.holder == "admin@contoso.onmicrosoft.com"
        assert held.command == "setup" and held.host and held.started
        assert f"pid {os.getpid()}" in str(err.value) and "admin@contoso.onmicrosoft.com" in str(err.value)
        assert "lock is released when the process exits" in err.value.remedy
        assert str(lock_path(tmp_path, TENANT)) in err.value.remedy
    with TenantLock(tmp_path, TENANT):  # released on exit: the next run gets it
        pass
    assert not lock_path(tmp_path, TENANT).exists()


def test_other_tenants_are_not_locked(tmp_path: Path) -> None:
    with TenantLock(tmp_path, TENANT), TenantLock(tmp_path, "fabrikam.onmicrosoft.com"):
        pass


def test_the_lock_file_is_owner_only_and_names_the_holder(tmp_path: Path) -> None:
    with TenantLock(tmp_path, TENANT, holder="me"):
        path = lock_path(tmp_path, TENANT)
        assert oct(path.stat().st_mode & 0o777) == oct(0o600)
        assert oct(path.parent.stat().st_mode & 0o777) == oct(0o700)
        holder = read_holder(path)
        assert holder is not None and holder.holder == "me"


def test_a_tenant_name_cannot_escape_the_lock_directory(tmp_path: Path) -> None:
    path = lock_path(tmp_path, "../../etc/passwd")
    assert path.parent == tmp_path / "locks"


def test_a_lock_refuses_to_follow_a_symlink(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.write_text("keep", encoding="utf-8")
    path = lock_path(tmp_path, TENANT)
    path.parent.mkdir(parents=True)
    path.symlink_to(target)
    with pytest.raises(OSError):
        TenantLock(tmp_path, TENANT).acquire()
    assert target.read_text(encoding="utf-8") == "keep"


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_a_killed_holder_leaves_no_lock_behind(tmp_path: Path) -> None:
    code = textwrap.dedent(
        f"""
        import sys, time
        from pathlib import Path
        from m365archive.engine.lock import TenantLock
        lock = TenantLock(Path({str(tmp_path)!r}), {TENANT!r}, holder="killed")
        lock.acquire()
        print("locked", flush=True)
        time.sleep(60)
        """
    )
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "locked"
        with pytest.raises(LockHeld) as err:
            TenantLock(tmp_path, TENANT).acquire()
        assert err.value.holder is not None and err.value.holder.pid == child.pid
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    with TenantLock(tmp_path, TENANT, holder="next"):  # the kernel released it with the process
        pass


def test_deleting_the_lock_file_on_purpose_breaks_it(tmp_path: Path) -> None:
    first = TenantLock(tmp_path, TENANT)
    first.acquire()
    lock_path(tmp_path, TENANT).unlink()
    second = TenantLock(tmp_path, TENANT)
    second.acquire()  # what the remedy warns about: two runs at once
    first.release()  # must not delete the second run's file
    assert read_holder(lock_path(tmp_path, TENANT)) is not None
    second.release()
