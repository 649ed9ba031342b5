"""The desired state: what validates, and one clear line per bad field (no request sent)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from m365archive.config import ConfigError, load_config, parse_config
from m365archive.config_template import render

EXAMPLE = Path(__file__).parents[1] / "examples" / "m365archive.toml"


def base() -> dict:
    return tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))


def test_example_config_validates() -> None:
    cfg = load_config(EXAMPLE)
    assert cfg.procedure == "partner-ews"
    assert cfg.catchall is not None and cfg.catchall.upn == "thirdpartydata@contoso.onmicrosoft.com"
    assert cfg.hold.exchange_duration == "Unlimited"


@pytest.mark.parametrize("procedure", ["purview-connector", "partner-ews"])
def test_init_template_validates(procedure: str) -> None:
    text = render(tenant_id="fabrikam.onmicrosoft.com", domain="fabrikam.onmicrosoft.com", procedure=procedure)
    cfg = parse_config(tomllib.loads(text))
    assert cfg.tenant.cloud == "global" and cfg.procedure == procedure
    assert "contoso" not in text.replace("contoso.onmicrosoft.com)", "")  # only the example in a comment


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda d: d["catchall"].update(upn="not-an-upn"), "catchall.upn: 'not-an-upn' is not a user principal name"),
        (lambda d: d["tenant"].update(cloud="mars"), "tenant.cloud: must be one of"),
        (lambda d: d["hold"].update(duration_days=-5), "hold.duration_days"),
        (lambda d: d.update(colour="blue"), "colour: unknown key"),
        (
            lambda d: d["catchall"].update(usage_location="usa"),
            "catchall.usage_location: 'usa' is not an ISO 3166-1 two-letter",
        ),
        (lambda d: d["audit"].update(owner=["Nope"]), "owner: unknown audit action(s) Nope"),
        (lambda d: d["hold"].update(kind="retention-policy"), "needs retention_policy"),
    ],
)
def test_bad_field_gives_one_clear_line(mutate, expected) -> None:  # type: ignore[no-untyped-def]
    data = base()
    mutate(data)
    with pytest.raises(ConfigError) as err:
        parse_config(data, "m365archive.toml")
    assert len(err.value.lines) == 1, err.value.lines
    assert expected in err.value.lines[0]
    assert err.value.lines[0].startswith("m365archive.toml: ")


def test_several_bad_fields_give_one_line_each() -> None:
    data = base()
    data["catchall"]["upn"] = "x"
    data["tenant"]["cloud"] = "mars"
    with pytest.raises(ConfigError) as err:
        parse_config(data)
    assert len(err.value.lines) == 2


def test_missing_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "absent.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("procedure = \n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)
