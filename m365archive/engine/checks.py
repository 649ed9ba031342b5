"""Check: a prerequisite read before any write, with what to do when it fails.

A blocking check that failed makes the plan not appliable (exit 7, PREREQUISITE); an advisory
one is shown with its remedy and nothing more. Checks travel in the plan file's `checks[]`,
so the report, preflight and apply all read the same verdicts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Check:
    id: str  # stable, machine-readable: "catchall-domain", "reviewers", "scope-file", ...
    title: str  # one line a person reads: what was checked and what was found
    blocking: bool  # a failure stops the apply (exit 7) before any write
    passed: bool
    remedy: str = ""  # what to do when it did not pass

    @property
    def failed_blocking(self) -> bool:
        return self.blocking and not self.passed

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "blocking": self.blocking,
            "passed": self.passed,
            "remedy": self.remedy,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Check:
        """Read a check from a plan file; a wrong type is a ValueError (the plan is refused)."""
        if not isinstance(data, dict):
            raise ValueError(f"a check must be an object, not {type(data).__name__}")
        values: dict[str, Any] = {}
        for name, kind in (("id", str), ("title", str), ("blocking", bool), ("passed", bool), ("remedy", str)):
            if name not in data:
                if name == "remedy":
                    continue
                raise ValueError(f"check is missing {name!r}")
            if not isinstance(data[name], kind):
                raise ValueError(f"check {name!r} must be a {kind.__name__}")
            values[name] = data[name]
        return cls(**values)


def blocking_failures(checks: list[Check]) -> list[Check]:
    """The checks that stop an apply, in the order they were made."""
    return [c for c in checks if c.failed_blocking]
