"""Issue 7: `m365archive mapping check|export`: user mapping files checked against the tenant in bulk reads."""

from __future__ import annotations

import asyncio
import csv
import json
import random
import tracemalloc
from pathlib import Path

import pytest

from m365archive.app.context import Env, connect
from m365archive.app.mapping import ORDER, RowStatus, check_mapping
from m365archive.config import parse_config
from m365archive.result import ExitCode
from m365archive.sim.scenario import generate_users, load_scenario
from m365archive.sim.server import SimulatedTenant, simulated_tenant
from tests.clihelp import m365

TENANT = "6f1c2a4e-3b5d-4c7e-9f10-2a3b4c5d6e7f"
DOMAIN = "contoso.onmicrosoft.com"


def config_file(tmp_path: Path, scope: str = "all") -> Path:
    path = tmp_path / "m365archive.toml"
    path.write_text(
        f'procedure = "purview-connector"\n\n[tenant]\nid = "{TENANT}"\n\n[users]\nscope = "{scope}"\n',
        encoding="utf-8",
    )
    return path


def write_csv(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(rows)
    return path


def test_every_kind_of_row_and_problems_first(sim: SimulatedTenant, tmp_path: Path) -> None:
    mapping = write_csv(
        tmp_path / "bloomberg.csv",
        [
            ["BloombergUUID", "MailboxAddress"],
            ["1001", f"adele.vance@{DOMAIN}"],  # line 2: mapped
            ["1002", f"ghost@{DOMAIN}"],  # 3: unknown mailbox
            ["1003", f"diego.siciliani@{DOMAIN}"],  # 4: duplicate identity (with line 5)
            ["1003", f"lee.gu@{DOMAIN}"],  # 5
            ["1004", f"records.manager@{DOMAIN}"],  # 6: duplicate mailbox (with line 7)
            ["1005", f"RECORDS.MANAGER@{DOMAIN}"],  # 7
            ["12ab", f"compliance.officer@{DOMAIN}"],  # 8: malformed identity
            ["1006", "not-an-address"],  # 9: malformed mailbox
            ["1007", f"reception@{DOMAIN}"],  # 10: a shared mailbox is not a user mailbox
            ["1008", f"compliance.officer@{DOMAIN}", "extra"],  # 11: three columns
        ],
    )
    out = tmp_path / "checked.csv"
    run = m365(
        sim.url, "--output", "json", "mapping", "check", str(mapping), "--source", "bloomberg", "--out", str(out),
        config=config_file(tmp_path),
    )  # fmt: skip
    assert run.code == ExitCode.CHANGES, run.stdout + run.stderr
    data = json.loads(run.stdout)["data"]
    assert data["rows"] == 10
    assert data["counts"] == {
        "malformed": 3,
        "unknown mailbox": 2,
        "duplicate identity": 2,
        "duplicate mailbox": 2,
        "mapped": 1,
    }
    assert data["not_imported"] == 7
    assert [p["line"] for p in data["problems"]] == [8, 9, 11, 3, 10, 4, 5, 6, 7]
    with out.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["line", "status", "BloombergUUID", "MailboxAddress", "reason"]
    assert [int(r[0]) for r in rows[1:]] == [8, 9, 11, 3, 10, 4, 5, 6, 7, 2]
    assert sim.writes() == []

    human = m365(sim.url, "mapping", "check", str(mapping), "--source", "bloomberg", config=config_file(tmp_path))
    assert human.code == ExitCode.CHANGES
    first = human.stdout.splitlines()[1]
    assert first.startswith("  line 8: malformed (NOT IMPORTED)")
    assert "7 row(s) would not be imported." in human.stdout


def test_phone_numbers_must_be_e164(sim: SimulatedTenant, tmp_path: Path) -> None:
    mapping = write_csv(
        tmp_path / "whatsapp.csv",
        [
            ["+14255550100", f"adele.vance@{DOMAIN}"],
            ["+1 425 555 0101", f"diego.siciliani@{DOMAIN}"],
            ["4255550102", f"lee.gu@{DOMAIN}"],
            ["+0425555010", f"records.manager@{DOMAIN}"],
        ],
    )
    run = m365(
        sim.url, "--output", "json", "mapping", "check", str(mapping), "--source", "whatsapp",
        config=config_file(tmp_path),
    )  # fmt: skip
    data = json.loads(run.stdout)["data"]
    assert data["rows"] == 4 and data["counts"]["mapped"] == 1 and data["counts"]["malformed"] == 3
    assert all("E.164" in p["reason"] for p in data["problems"])


def test_export_then_check_maps_every_row(sim: SimulatedTenant, tmp_path: Path) -> None:
    out = tmp_path / "export.csv"
    config = config_file(tmp_path)
    run = m365(sim.url, "mapping", "export", "--source", "bloomberg", "--out", str(out), config=config)
    assert run.code == ExitCode.OK, run.stdout + run.stderr
    with out.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["BloombergUUID", "MailboxAddress"]
    addresses = sorted(r[1] for r in rows[1:])
    # Licensed user mailboxes in scope; the shared mailbox and the unlicensed operator are not.
    assert addresses == sorted(
        f"{u}@{DOMAIN}" for u in ("compliance.officer", "records.manager", "adele.vance", "diego.siciliani", "lee.gu")
    )
    assert all(r[0] == "" for r in rows[1:])
    filled = write_csv(tmp_path / "filled.csv", [rows[0], *[[str(5000 + i), r[1]] for i, r in enumerate(rows[1:])]])
    check = m365(sim.url, "mapping", "check", str(filled), "--source", "bloomberg", config=config)
    assert check.code == ExitCode.OK, check.stdout
    assert "Every row maps to a user mailbox." in check.stdout

    email = tmp_path / "email.csv"
    assert m365(sim.url, "mapping", "export", "--source", "email", "--out", str(email), config=config).code == 0
    assert m365(sim.url, "mapping", "check", str(email), "--source", "email", config=config).code == ExitCode.OK


def test_unreadable_file_is_a_usage_error(sim: SimulatedTenant, tmp_path: Path) -> None:
    run = m365(
        sim.url, "mapping", "check", str(tmp_path / "nope.csv"), "--source", "email", config=config_file(tmp_path)
    )
    assert run.code == ExitCode.USAGE
    assert "no such file" in run.stderr


ROWS = 100_000


def _generated_rows(user_mailboxes: list[str], shared: list[str]) -> tuple[list[list[str]], list[RowStatus]]:
    """100,000 rows with known answers, shuffled."""
    rows: list[tuple[list[str], RowStatus]] = []
    uid = iter(range(10_000_000, 99_999_999))
    for address in user_mailboxes[:12_000]:
        rows.append(([str(next(uid)), address], RowStatus.MAPPED))
    for address in user_mailboxes[12_000:15_000]:
        rows.append(([str(next(uid)), address], RowStatus.DUPLICATE_MAILBOX))
        rows.append(([str(next(uid)), address.upper()], RowStatus.DUPLICATE_MAILBOX))
    pair = user_mailboxes[15_000:17_000]
    for i in range(0, len(pair), 2):
        shared_id = str(next(uid))
        rows.append(([shared_id, pair[i]], RowStatus.DUPLICATE_IDENTITY))
        rows.append(([shared_id, pair[i + 1]], RowStatus.DUPLICATE_IDENTITY))
    for i in range(1_000):
        rows.append(([f"{i}ab", user_mailboxes[17_000 + i % 500]], RowStatus.MALFORMED))
        rows.append(([str(next(uid)), f"no-at-sign-{i}"], RowStatus.MALFORMED))
        rows.append(([str(next(uid)), f"x{i}@{DOMAIN}", "third column"], RowStatus.MALFORMED))
        rows.append((["", f"y{i}@{DOMAIN}"], RowStatus.MALFORMED))
    for address in shared[:500]:
        rows.append(([str(next(uid)), address], RowStatus.UNKNOWN_MAILBOX))
    i = 0
    while len(rows) < ROWS:
        rows.append(([str(next(uid)), f"ghost.{i}@{DOMAIN}"], RowStatus.UNKNOWN_MAILBOX))
        i += 1
    random.Random(7).shuffle(rows)
    return [r for r, _ in rows], [s for _, s in rows]


@pytest.mark.slow
def test_100000_rows_are_classified_in_bulk_reads_with_bounded_memory(tmp_path: Path) -> None:
    state = load_scenario("fresh")
    generate_users(state, 20_000, seed=3)
    user_mailboxes = sorted(
        m.primary_smtp.lower() for m in state.mailboxes.values() if m.recipient_type_details == "UserMailbox"
    )
    shared = sorted(
        m.primary_smtp.lower() for m in state.mailboxes.values() if m.recipient_type_details != "UserMailbox"
    )
    assert len(user_mailboxes) > 17_500 and len(shared) >= 300
    rows, expected = _generated_rows(user_mailboxes, shared)
    mapping = write_csv(tmp_path / "big.csv", [["BloombergUUID", "MailboxAddress"], *rows])
    del rows
    out = tmp_path / "checked.csv"
    config = parse_config({"procedure": "purview-connector", "tenant": {"id": TENANT}})
    with simulated_tenant(state, time_scale=0.001) as sim:

        async def check() -> object:
            async with connect(Env(sim_url=sim.url), config) as session:
                sim.log.clear()
                tracemalloc.start()
                try:
                    return await check_mapping(session, mapping, "bloomberg", out=out)
                finally:
                    _, peak = tracemalloc.get_traced_memory()
                    tracemalloc.stop()
                    check.peak = peak  # type: ignore[attr-defined]

        report = asyncio.run(check())
        requests = [r for r in sim.requests if r.get("service") in ("graph", "exchange", "compliance")]
    peak_mb = check.peak / 2**20  # type: ignore[attr-defined]
    assert peak_mb < 150, f"peak {peak_mb:.0f} MB"
    # Bulk reads: one Get-Recipient page per 1,000 user mailboxes, nothing per row, no Graph.
    pages = -(-len(user_mailboxes) // 1000)
    assert len(requests) <= pages + 1, len(requests)
    assert all(r.get("service") == "exchange" for r in requests)
    want: dict[str, int] = {s.value: 0 for s in ORDER}
    for status in expected:
        want[status.value] += 1
    assert report.rows == ROWS  # type: ignore[attr-defined]
    assert report.counts == want  # type: ignore[attr-defined]
    # Every row, by line number (the header is line 1), and not-imported rows first.
    with out.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        next(reader)
        seen = 0
        last_rank = 0
        rank = {s.value: i for i, s in enumerate(ORDER)}
        for line, status, *_ in reader:
            assert expected[int(line) - 2].value == status, line
            assert rank[status] >= last_rank
            last_rank = rank[status]
            seen += 1
    assert seen == ROWS
