"""The Check model: what a plan file carries in checks[] and how it is read back."""

from __future__ import annotations

import pytest

from m365archive.engine.checks import Check, blocking_failures


def test_check_round_trips_through_a_plan_dict() -> None:
    check = Check("catchall-domain", "contoso.example is not verified", blocking=True, passed=False, remedy="verify it")
    assert Check.from_dict(check.to_dict()) == check
    assert check.to_dict() == {
        "id": "catchall-domain",
        "title": "contoso.example is not verified",
        "blocking": True,
        "passed": False,
        "remedy": "verify it",
    }


def test_remedy_is_optional_when_read() -> None:
    assert Check.from_dict({"id": "a", "title": "t", "blocking": False, "passed": True}).remedy == ""


@pytest.mark.parametrize(
    "data",
    [
        {"id": "a", "title": "t", "blocking": "yes", "passed": True},
        {"id": "a", "title": "t", "blocking": True, "passed": 1},
        {"id": "a", "blocking": True, "passed": True},
        ["a", "t", True, True],
    ],
)
def test_a_malformed_check_is_refused(data: object) -> None:
    with pytest.raises(ValueError):
        Check.from_dict(data)  # type: ignore[arg-type]


def test_only_failed_blocking_checks_stop_an_apply() -> None:
    checks = [
        Check("a", "fine", blocking=True, passed=True),
        Check("b", "advisory", blocking=False, passed=False),
        Check("c", "stops", blocking=True, passed=False),
    ]
    assert [c.id for c in blocking_failures(checks)] == ["c"]


def test_a_check_is_immutable() -> None:
    check = Check("a", "t", blocking=True, passed=True)
    with pytest.raises(AttributeError):
        check.passed = False  # type: ignore[misc]
