"""Issue 15: a config corpus generated from the config schema.

Every field of every table gets values of the wrong type (and, where the field has limits, empty,
out-of-range and over-long ones): each is one line naming the field, exit 4, and no request.
Valid but unusual values are accepted, planned and rendered literally.
"""

from __future__ import annotations

import json
import tomllib
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from m365archive.config import Config, ConfigError, parse_config
from m365archive.result import ExitCode
from m365archive.sim.server import SimulatedTenant
from tests.clihelp import EXAMPLE, m365

GUID = "0b7a6c5d-4e3f-4a2b-9c1d-8e7f6a5b4c3d"


def base() -> dict[str, Any]:
    data = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    data["onprem"] = {"server": "exch01.contoso.local"}  # so the [onprem] fields are in the corpus too
    # likewise [[accepted_risks]]: an array of tables, so set_path edits its first item
    data.setdefault("accepted_risks", [{"id": "an-accepted-finding", "reason": "accepted by the CAB"}])
    return data


def _model_of(annotation: Any) -> type[BaseModel] | None:
    for candidate in (annotation, *typing.get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def _leaves(model: type[BaseModel], prefix: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    for name, info in model.model_fields.items():
        nested = _model_of(info.annotation)
        if nested is not None:
            yield from _leaves(nested, (*prefix, name))
        else:
            yield (*prefix, name), info.annotation


def _kinds(annotation: Any) -> set[str]:
    """The plain kinds a field accepts: bool, int, float, str, list, literal."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return set().union(*(_kinds(a) for a in typing.get_args(annotation) if a is not type(None)))
    if origin is typing.Annotated:
        return _kinds(typing.get_args(annotation)[0])
    if origin is typing.Literal:
        return {"literal"}
    if origin is list:
        return {"list"}
    return {getattr(annotation, "__name__", str(annotation))}


def wrong_values(annotation: Any) -> list[Any]:
    kinds = _kinds(annotation)
    values: list[Any] = []
    if "bool" in kinds:
        values += ["yes", 1]
    if "int" in kinds:
        values += [True, "8", 2.5]
    if "float" in kinds:
        values += [True, "1800"]
    if "str" in kinds or "literal" in kinds:
        values += [False, ""] if "int" in kinds else [5, False, ""]
    if "literal" in kinds and "str" not in kinds:
        values += ["no-such-choice"]
    if "list" in kinds:
        values += ["one", [7]]
    return [v for v in values if not (v == "" and "list" in kinds)]


def corpus() -> list[tuple[str, Any]]:
    cases = [(".".join(path), value) for path, annotation in _leaves(Config) for value in wrong_values(annotation)]
    cases += [
        ("hold.duration_days", 0),
        ("hold.duration_days", 36_501),
        ("hold.duration_days", 10**18),
        ("hold.duration_days", "forever"),
        ("catchall.display_name", "   "),
        ("catchall.display_name", "x" * 257),
        ("catchall.display_name", "two\nlines"),
        ("catchall.usage_location", "XX"),
        ("catchall.usage_location", "USA"),
        ("catchall.upn", "a" * 65 + "@contoso.onmicrosoft.com"),
        ("catchall.upn", "third party@contoso.onmicrosoft.com"),
        ("catchall.upn", "données@contoso.onmicrosoft.com"),
        ("catchall.upn", ".data@contoso.onmicrosoft.com"),
        ("catchall.upn", "data.@contoso.onmicrosoft.com"),
        ("catchall.upn", "data@" + "d" * 45 + ".com"),
        ("users.groups", ["not-a-guid"]),
        ("users.groups", ["../../users/x"]),
        ("users.exclude", ["nobody"]),
        ("users.max_concurrency", 0),
        ("users.max_concurrency", 65),
        ("connector.partner_app_id", "app"),
        ("auth.client_id", "my-app"),
        ("mailbox_wait_timeout", 0),
    ]
    return cases


# arrays of tables the example config does not have: one valid item to change a field of
LIST_ITEMS = {"accepted_risks": {"id": "catchall-password-handover", "reason": "approved in CHG-1"}}


def set_path(data: dict[str, Any], dotted: str, value: Any) -> None:
    *tables, key = dotted.split(".")
    for table in tables:
        data = data.setdefault(table, [dict(LIST_ITEMS[table])] if table in LIST_ITEMS else {})
        if isinstance(data, list):  # an array of tables (full_access): change its first item
            data = data[0]
    data[key] = value


CASES = corpus()


def test_the_corpus_covers_every_field() -> None:
    fields = {".".join(path) for path, _ in _leaves(Config)}
    assert fields <= {field for field, _ in CASES}
    assert len(CASES) > 120


@pytest.mark.parametrize(("field", "value"), CASES, ids=[f"{f}={v!r}"[:60] for f, v in CASES])
def test_an_invalid_value_is_one_line_naming_the_field(field: str, value: Any) -> None:
    data = base()
    set_path(data, field, value)
    with pytest.raises(ConfigError) as err:
        parse_config(data, "m365archive.toml")
    assert len(err.value.lines) == 1, err.value.lines
    line = err.value.lines[0]
    named = field.replace("full_access", "full_access[1]") if field.endswith("full_access.user") else field
    assert line.startswith(f"m365archive.toml: {named.split('.')[0]}"), line
    assert field.split(".")[-1] in line, line
    for internal in ("pydantic", "Input should", "type=", "literal[", "function-", "errors.pydantic.dev"):
        assert internal not in line, line


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return "{ " + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + " }"


def dump_toml(data: dict[str, Any]) -> str:
    top = [f"{k} = {toml_value(v)}" for k, v in data.items() if not isinstance(v, dict)]
    tables = [
        f"[{name}]\n" + "\n".join(f"{k} = {toml_value(v)}" for k, v in table.items())
        for name, table in data.items()
        if isinstance(table, dict)
    ]
    return "\n".join(top) + "\n\n" + "\n\n".join(tables) + "\n"


def test_the_command_line_refuses_every_invalid_value_with_exit_4_and_no_request(
    sim: SimulatedTenant, tmp_path: Path
) -> None:
    config = tmp_path / "m365archive.toml"
    # the command line reads the config through the same parse_config; a sample of each kind is enough
    for field, value in CASES[::12]:
        data = base()
        set_path(data, field, value)
        config.write_text(dump_toml(data), encoding="utf-8")
        run = m365(sim.url, "setup", "--dry-run", config=config)
        assert run.code == ExitCode.USAGE, (field, value, run.stdout, run.stderr)
        lines = run.stderr.strip().splitlines()
        assert len(lines) == 1 and field.split(".")[-1] in lines[0], (field, value, run.stderr)
        assert "Traceback" not in run.stderr and "unexpected" not in run.stderr
    assert sim.requests == []


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("hold.duration_days", "Unlimited", "unlimited"),
        ("hold.duration_days", "UNLIMITED", "unlimited"),
        ("hold.duration_days", 1, 1),
        ("hold.duration_days", 36_500, 36_500),
        ("catchall.usage_location", "gb", "GB"),
        ("catchall.display_name", "x" * 256, "x" * 256),
        (
            "catchall.upn",
            "o'brien.archive_2#~^!@contoso.onmicrosoft.com",
            "o'brien.archive_2#~^!@contoso.onmicrosoft.com",
        ),
        ("catchall.upn", "a" * 64 + "@contoso.onmicrosoft.com", "a" * 64 + "@contoso.onmicrosoft.com"),
    ],
)
def test_valid_edge_values_are_accepted(field: str, value: Any, expected: Any) -> None:
    data = base()
    set_path(data, field, value)
    config = parse_config(data)
    obj: Any = config
    for part in field.split("."):
        obj = getattr(obj, part)
    assert obj == expected


@settings(max_examples=60, deadline=None)
@given(
    st.text(
        alphabet=st.characters(blacklist_categories=("Cc", "Cs")),
        min_size=1,
        max_size=256,
    ).filter(lambda s: s.strip())
)
def test_any_one_line_display_name_up_to_256_characters_is_kept_literally(name: str) -> None:
    data = base()
    data["catchall"]["display_name"] = name
    assert parse_config(data).catchall.display_name == name  # type: ignore[union-attr]


UNUSUAL = "Données [tierces] – O'Brien's <archive> & co 📦 [bold]x[/bold]"


def test_an_unusual_display_name_is_planned_and_rendered_literally(sim: SimulatedTenant, tmp_path: Path) -> None:
    data = base()
    data.pop("onprem")
    data["catchall"]["display_name"] = UNUSUAL
    config = tmp_path / "m365archive.toml"
    config.write_text(dump_toml(data), encoding="utf-8")
    report, plan = tmp_path / "r.md", tmp_path / "plan.json"
    run = m365(sim.url, "setup", "--dry-run", "--report", str(report), "--plan-out", str(plan), config=config)
    assert run.code == ExitCode.OK, run.stderr
    assert sim.writes() == []
    assert UNUSUAL in run.stdout
    assert UNUSUAL in report.read_text(encoding="utf-8")
    saved = json.loads(plan.read_text(encoding="utf-8"))
    bodies = [c["operation"]["request"].get("body") or {} for c in saved["changes"] if c.get("operation")]
    assert any(body.get("displayName") == UNUSUAL for body in bodies)

    applied = m365(sim.url, "setup", "--yes", "--password-file", str(tmp_path / "pw"), config=config)
    assert applied.code == ExitCode.OK, applied.stderr
    user = sim.state.user_by_upn("thirdpartydata@contoso.onmicrosoft.com")
    assert user is not None and user.display_name == UNUSUAL


def test_a_bom_is_accepted_and_non_utf8_is_one_line(sim: SimulatedTenant, tmp_path: Path) -> None:
    config = tmp_path / "m365archive.toml"
    config.write_bytes(b"\xef\xbb\xbf" + EXAMPLE.read_bytes())
    assert m365(sim.url, "setup", "--dry-run", config=config).code == ExitCode.OK

    sim.log.clear()
    text = EXAMPLE.read_text(encoding="utf-8").replace('"Third-party data"', '"Données tierces"')
    config.write_bytes(text.encode("latin-1"))
    run = m365(sim.url, "setup", "--dry-run", config=config)
    assert run.code == ExitCode.USAGE
    assert run.stderr.strip().splitlines() == [
        f"error: {config}: not UTF-8 text (byte 0xe9 on line {text[: text.index('é')].count(chr(10)) + 1}); "
        "save the file as UTF-8"
    ]
    assert sim.requests == []
