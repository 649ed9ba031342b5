"""Run m365archive's CLI and write this process's own peak RSS (KiB) to $BENCH_RSS_FILE."""

from __future__ import annotations

import os
import resource
import sys


def main() -> None:
    from m365archive.cli.main import app

    try:
        app(args=sys.argv[1:], prog_name="m365archive")
    finally:
        path = os.environ.get("BENCH_RSS_FILE")
        if path:
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(str(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))


if __name__ == "__main__":
    main()
