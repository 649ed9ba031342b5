"""docs/fidelity.md is the table of every behaviour the simulated tenant models: each row names a public
source, the simulator code, the knob that switches it and the tests that pin it. This test keeps the
table honest: every named test, knob and simulator symbol exists, and every knob has a row."""

from __future__ import annotations

import ast
import dataclasses
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from m365archive.sim.state import Knobs

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "fidelity.md"
HEADER = ["id", "behaviour", "source", "simulator", "knob", "test"]


@dataclass(frozen=True)
class Row:
    line: int
    id: str
    behaviour: str
    source: str
    simulator: str
    knob: str
    tests: tuple[str, ...]


def _cells(line: str) -> list[str]:
    """A table row's cells; `\\|` is a pipe inside a cell (GitHub's escape)."""
    inner = line.strip().removeprefix("|").removesuffix("|")
    return [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", inner)]


def parse_rows(text: str) -> list[Row]:
    """The rows of every table in `text` whose header is HEADER."""
    rows: list[Row] = []
    in_table = False
    for number, line in enumerate(text.splitlines(), 1):
        if not line.startswith("|"):
            in_table = False
            continue
        cells = _cells(line)
        if cells == HEADER:
            in_table = True
            continue
        if not in_table or all(set(c) <= {"-", ":"} for c in cells):
            continue
        assert len(cells) == len(HEADER), f"docs/fidelity.md:{number}: {len(cells)} cells, want {len(HEADER)}"
        ident, behaviour, source, simulator, knob, tests = cells
        rows.append(Row(number, ident, behaviour, source, simulator, knob, tuple(t.strip() for t in tests.split(", "))))
    return rows


@cache
def _test_names(path: Path) -> frozenset[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            names |= {
                f"{node.name}::{n.name}" for n in node.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
            }
    return frozenset(names)


def named_test_exists(ref: str) -> bool:
    path, _, name = ref.partition("::")
    file = ROOT / path
    return bool(name) and path.startswith("tests/") and file.is_file() and name in _test_names(file)


def _sim_sources(module: str) -> list[Path]:
    base = ROOT / module.removesuffix(".py")
    if base.is_dir():
        return sorted(base.rglob("*.py"))
    file = base.with_suffix(".py")
    return [file] if file.is_file() else []


def simulator_exists(ref: str) -> bool:
    module, _, symbol = ref.partition("::")
    if not module.startswith("m365archive/sim/") or not symbol:
        return False
    files = _sim_sources(module)
    return any(re.search(rf"\b{re.escape(symbol)}\b", f.read_text(encoding="utf-8")) for f in files)


SOURCE = re.compile(r"https://\S+|\b[\w.-]+/[\w.-]+ [\w./{}()-]+\.\w+")


def source_ok(source: str) -> bool:
    return source.startswith(("unverified:", "n/a:")) or bool(SOURCE.search(source))


KNOBS = {f.name for f in dataclasses.fields(Knobs)}
ROWS = parse_rows(DOC.read_text(encoding="utf-8"))


def test_the_table_parses_with_unique_ids() -> None:
    assert len(ROWS) >= len(KNOBS)
    ids = [r.id for r in ROWS]
    assert len(ids) == len(set(ids)), sorted({i for i in ids if ids.count(i) > 1})
    assert all(r.behaviour for r in ROWS)


def test_every_named_test_exists() -> None:
    missing = [f"line {r.line}: {t}" for r in ROWS for t in r.tests if not named_test_exists(t)]
    assert not missing, missing


def test_every_knob_and_simulator_symbol_exists() -> None:
    bad_knobs = [f"line {r.line}: {r.knob}" for r in ROWS if r.knob != "-" and r.knob not in KNOBS]
    assert not bad_knobs, bad_knobs
    bad_sim = [f"line {r.line}: {r.simulator}" for r in ROWS if not simulator_exists(r.simulator)]
    assert not bad_sim, bad_sim


def test_every_knob_has_a_row() -> None:
    assert KNOBS - {r.knob for r in ROWS} == set()


def test_every_row_names_a_source_or_says_unverified() -> None:
    bad = [f"line {r.line}: {r.source!r}" for r in ROWS if not source_ok(r.source)]
    assert not bad, bad


def test_the_checks_can_fail() -> None:
    text = "\n".join(
        [
            "| id | behaviour | source | simulator | knob | test |",
            "|---|---|---|---|---|---|",
            "| x | y | somewhere | m365archive/sim/app.py::no_such_sym | nope | tests/test_fidelity_doc.py::nope |",
        ]
    )
    [row] = parse_rows(text)
    assert row.tests == ("tests/test_fidelity_doc.py::nope",)
    assert not named_test_exists(row.tests[0])
    assert named_test_exists("tests/test_fidelity_doc.py::test_the_checks_can_fail")
    assert not simulator_exists(row.simulator)
    assert simulator_exists("m365archive/sim/app.py::RequestLog")
    assert not source_ok(row.source)
    assert source_ok("KelvinTegelaar/CIPP-API Modules/CIPPCore/Public/GraphHelper/New-ExoRequest.ps1")
    assert source_ok("unverified: nobody shows it")
    assert row.knob not in KNOBS
