from __future__ import annotations

import html
import re
from pathlib import Path

import pytest

from m365archive import partners
from m365archive.partners import (
    MESSAGE_PROPERTIES,
    PARTNERS,
    RETIREMENT,
    find_partner,
    retirement_notice,
    search,
)
from m365archive.wellknown import CONNECTOR_APP_ID

REFERENCE = Path(__file__).parents[2] / "shared" / "reference" / "work-with-partner-to-archive-third-party-data.md"


@pytest.fixture(scope="module")
def page() -> str:
    if not REFERENCE.is_file():
        pytest.skip(f"the reference page is not next to the repository ({REFERENCE.name} in ../shared/reference)")
    return REFERENCE.read_text(encoding="utf-8")


def _page_partners(page: str) -> dict[str, tuple[str, list[str]]]:
    """Step 1 of the page, read independently of the module: name -> (website, sources)."""
    step1 = page.split("## Step 1")[1].split("## Step 2")[0]
    found = {}
    for section in re.split(r"^### ", step1, flags=re.M)[1:]:
        link = re.search(r"\[([^\]]+)\]\((https?://[^)]+)\) supports", section)
        assert link, section[:80]
        sources = [
            html.unescape(line.strip()[2:].strip()) for line in section.splitlines() if line.strip().startswith("- ")
        ]
        found[link.group(1).strip()] = (link.group(2), sources)
    return found


def test_every_partner_of_the_page_with_exactly_its_sources(page: str) -> None:
    expected = _page_partners(page)
    assert [p.name for p in PARTNERS] == list(expected)
    for partner in PARTNERS:
        website, sources = expected[partner.name]
        assert partner.website == website
        assert len(partner.sources) == len(sources), partner.name
        assert list(partner.sources) == sources, partner.name


def test_source_counts() -> None:
    assert {p.name: len(p.sources) for p in PARTNERS} == {
        "17a-4 LLC": 19,
        "ArchiveSocial": 8,
        "Veritas": 38,
        "OpenText": 7,
        "Smarsh": 79,
        "Verba": 32,
    }


def test_connector_app_id_is_the_one_in_the_consent_link(page: str) -> None:
    assert f"client_id={CONNECTOR_APP_ID}&" in page


@pytest.mark.parametrize(
    ("query", "name"),
    [
        ("veritas", "Veritas"),
        ("VERITAS", "Veritas"),
        ("17a-4", "17a-4 LLC"),
        ("17a4", "17a-4 LLC"),
        ("17A-4 llc", "17a-4 LLC"),
        ("archive social", "ArchiveSocial"),
        (" smarsh ", "Smarsh"),
        ("open text", "OpenText"),
    ],
)
def test_find_partner_is_forgiving(query: str, name: str) -> None:
    found = find_partner(query)
    assert found is not None and found.name == name


@pytest.mark.parametrize("query", ["", "  ", "microsoft", "globanet"])
def test_find_partner_unknown(query: str) -> None:
    assert find_partner(query) is None


def test_search_bloomberg_finds_every_bloomberg_source() -> None:
    assert {p.name: sources for p, sources in search("bloomberg")} == {
        "17a-4 LLC": ["Bloomberg Data Streams"],
        "Veritas": ["Bloomberg Chat", "Bloomberg Mail"],
        "OpenText": ["Bloomberg"],
        "Smarsh": ["Bloomberg Mail", "Instant Bloomberg"],
    }


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("  Bloomberg   MAIL ", {"Veritas": ["Bloomberg Mail"], "Smarsh": ["Bloomberg Mail"]}),
        ("mail bloomberg", {"Veritas": ["Bloomberg Mail"], "Smarsh": ["Bloomberg Mail"]}),
        ("bloomberg-mail!", {"Veritas": ["Bloomberg Mail"], "Smarsh": ["Bloomberg Mail"]}),
        (
            "ice",
            {"Veritas": ["ICE Chat/YellowJacket"], "Smarsh": ["ICE/YellowJacket"]},
        ),
        (
            "yellow jacket",
            {"Veritas": ["ICE Chat/YellowJacket"], "Smarsh": ["ICE/YellowJacket"]},
        ),
        ("sip h.323 voice", {"Verba": ["Standard SIP/H.323 Voice"]}),
        ("citrix sharefile", {"Veritas": ["Citrix Workspace & ShareFile"]}),
        (
            "blackberry sms",
            {"Veritas": ["BlackBerry SMS (v5, v10, v12)"], "Smarsh": ["BlackBerry SMS (v5, v10, v12)"]},
        ),
        ("ocs", {"17a-4 LLC": ["Skype for Business (Lync/OCS)"]}),
        ("linked in", {"ArchiveSocial": ["LinkedIn"], "Smarsh": ["LinkedIn"]}),
        ("whatsapp", {}),
        ("", {}),
        ("!!!", {}),
    ],
)
def test_search_is_forgiving_but_matches_words(query: str, expected: dict[str, list[str]]) -> None:
    assert {p.name: sources for p, sources in search(query)} == expected


def test_search_results_keep_the_page_order() -> None:
    assert [p.name for p, _ in search("twitter")] == ["ArchiveSocial", "Veritas", "Smarsh"]


def test_message_properties_copy_the_table(page: str) -> None:
    table = page.split("|**Message property**|")[1].split("\n\n")[0]
    rows = re.findall(r"^\s*\|\*\*(\w+)\*\* <br/> \|(Yes|No)", table, flags=re.M)
    assert [(p.name, p.mandatory) for p in MESSAGE_PROPERTIES] == [(name, flag == "Yes") for name, flag in rows]
    mandatory = [p.name for p in MESSAGE_PROPERTIES if p.mandatory]
    assert mandatory == ["FROM", "TO", "DATE", "MESSAGECLASS"]
    message_class = next(p for p in MESSAGE_PROPERTIES if p.name == "MESSAGECLASS")
    assert "IPM.NOTE.Source.Event" in message_class.description
    assert message_class.example == "IPM.NOTE.Twitter.Tweet"
    for prop in MESSAGE_PROPERTIES:
        assert prop.example.split("\n")[0] in page, prop.name


def test_ingestion_advice_is_the_pages_text(page: str) -> None:
    assert "x-IngestionCorrelationID" in partners.INGESTION_ADVICE
    flattened = " ".join(page.replace("`", "").split())
    assert partners.INGESTION_ADVICE in flattened


def test_retirement_notice_states_every_date() -> None:
    notice = retirement_notice()
    for fact in ("2024-12-30", "2026-10-01", "2027-04-01", RETIREMENT["url"], "Purview data connector"):
        assert fact in notice
    assert "\n" not in notice


def test_purview_connectors_carry_the_design_facts() -> None:
    by_name = {c.name: c for c in partners.PURVIEW_CONNECTORS}
    assert {"Bloomberg Message", "Instant Bloomberg", "ICE Chat", "LinkedIn"} <= {
        c.name for c in partners.PURVIEW_CONNECTORS if c.provider == "Microsoft"
    }
    assert {c.provider for c in partners.PURVIEW_CONNECTORS if c.partner_app} == {
        "Veritas",
        "TeleMessage",
        "17a-4",
        "CellTrust",
    }
    assert "bloomberg-uuid" in by_name["Instant Bloomberg"].mapping
    assert by_name["Bloomberg Message"].litigation_hold_filter
    assert "phone" in by_name["TeleMessage WhatsApp"].mapping
    assert all("email" in c.mapping for c in partners.PURVIEW_CONNECTORS)
