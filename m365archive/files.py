"""Every file the tool writes is its owner's alone (0600 files, 0700 directories).

Plans, reports, CSVs, password files and the journal describe the tenant's privileged setup, so
they are written here and nowhere else: to a temporary file created with O_EXCL|O_NOFOLLOW and
mode 0600 in the target's directory, then renamed over the target. A target that is a symbolic
link is refused (writing through it would put the content wherever the link points), and a reader
never sees a half-written file.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import IO

FILE_MODE = 0o600
DIR_MODE = 0o700


class UnsafeTarget(OSError):
    """The path can't be written safely (a symbolic link, or not a regular file)."""


def private_dir(path: Path) -> Path:
    """Create `path` (and parents) as owner-only directories; tighten it if we created it earlier."""
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    if os.name != "nt":
        info = path.stat()
        if info.st_uid == os.getuid() and stat.S_IMODE(info.st_mode) & 0o077:
            with contextlib.suppress(OSError):
                path.chmod(DIR_MODE)
    return path


def _refuse_unsafe(path: Path) -> None:
    try:
        info = path.lstat()
    except FileNotFoundError:
        return
    if stat.S_ISLNK(info.st_mode):
        raise UnsafeTarget(f"{path} is a symbolic link: refusing to write through it (remove it or pick another path)")
    if not stat.S_ISREG(info.st_mode):
        raise UnsafeTarget(f"{path} is not a regular file: refusing to write to it")


@contextlib.contextmanager
def open_private(path: str | os.PathLike[str], *, newline: str | None = None) -> Iterator[IO[str]]:
    """A text handle whose content replaces `path` (mode 0600) when the block ends without error."""
    target = Path(path)
    _refuse_unsafe(target)
    directory = target.parent if str(target.parent) else Path(".")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    while True:
        temp = directory / f".{target.name}.{secrets.token_hex(6)}.tmp"
        try:
            fd = os.open(temp, flags, FILE_MODE)
            break
        except FileExistsError:  # pragma: no cover - 48 random bits collided
            continue
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline=newline) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        _refuse_unsafe(target)  # a link planted while we wrote is refused too
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise


def write_private(path: str | os.PathLike[str], text: str) -> None:
    """Write `text` to `path`, owner-only, atomically; a symbolic link target is refused."""
    with open_private(path) as handle:
        handle.write(text)


def write_private_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write `data` (a PNG, say) to `path` as write_private does text: 0600, atomically, never through a link."""
    with open_private(path, newline="") as handle:
        handle.flush()
        handle.buffer.write(data)  # type: ignore[attr-defined]  # the text handle's binary buffer


def create_private(path: str | os.PathLike[str]) -> None:
    """Make sure `path` exists as an owner-only file (for files another library then opens, e.g. SQLite)."""
    target = Path(path)
    _refuse_unsafe(target)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), FILE_MODE)
    os.close(fd)
    if os.name != "nt" and stat.S_IMODE(target.stat().st_mode) != FILE_MODE:
        with contextlib.suppress(OSError):
            target.chmod(FILE_MODE)


def write_error(path: str | os.PathLike[str], exc: OSError) -> str:
    """One line saying why an output file could not be written."""
    if isinstance(exc, UnsafeTarget):
        return str(exc)
    return f"can't write {path}: {exc.strerror or exc}"
