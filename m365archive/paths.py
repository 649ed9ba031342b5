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
    path.mkdir(parents=True, exist_ok=True)
    return path


def journal_path() -> Path:
    return data_dir() / "journal.sqlite3"
