"""The handoff packet's password survives Markdown: 10,000 generated passwords rendered with
markdown-it-py come back exactly, and so does a user-supplied one full of Markdown syntax."""

from __future__ import annotations

from markdown_it import MarkdownIt

from m365archive import secrets
from m365archive.app.handoff import Handoff
from m365archive.report.markdown import secret_block
from m365archive.steps.connector_consent import ConsentState

MD = MarkdownIt("commonmark").enable("table")


def fenced_values(markdown: str) -> list[str]:
    return [t.content.removesuffix("\n") for t in MD.parse(markdown) if t.type == "fence" and t.info == "text"]


def packet(password: str) -> str:
    handoff = Handoff(
        tenant_id="00000000-0000-0000-0000-000000000001",
        domain="contoso.onmicrosoft.com",
        cloud="global",
        catchall_upn="thirdpartydata@contoso.onmicrosoft.com",
        ingestion_endpoint="https://example.invalid/ingest",
        endpoint_note="",
        consent=ConsentState(present=False),
        partner="Veritas",
        password=password,
    )
    return handoff.markdown(include_secret=True)


def test_ten_thousand_generated_passwords_survive_a_markdown_render() -> None:
    passwords = [secrets.generate_password() for _ in range(10_000)]
    # One document holding every block: the parser sees each in its real surroundings at a tenth of the cost.
    document = "\n".join(line for p in passwords for line in secret_block("Catch-all password", p))
    assert fenced_values(document) == passwords


def test_the_whole_packet_keeps_the_password_out_of_tables() -> None:
    for password in [secrets.generate_password() for _ in range(50)] + ["a|b`c``d```e_f*g*<br>h\\|i"]:
        text = packet(password)
        assert fenced_values(text) == [password]
        tables = [t.content for t in MD.parse(text) if t.type == "inline" and password in t.content]
        assert tables == []  # only inside the fence
