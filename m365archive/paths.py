"""Where m365archive keeps its state: M365ARCHIVE_HOME, else the platform's user data folder."""

from __future__ import annotations

import os
from pathlib import Path


def data_dir() -> Path:
    home = os.environ.get("M365ARCHIVE_HOME")
    if home:
        path = Path(home)
    else:
        import platformdirs

        path = Path(platformdirs.user_data_dir("m365archive", appauthor=False))
    from m365archive.files import private_dir

    return private_dir(path)


def journal_path() -> Path:
    """The journal, created owner-only first: SQLite gives its -wal and -shm files the same mode."""
    from m365archive.files import create_private

    path = data_dir() / "journal.sqlite3"
    create_private(path)
    return path
