"""Issue 20, part 2: examples/ci/ (GitHub Actions and Azure DevOps watches). The workflows validate against their
schemas (check-jsonschema's vendored copies, no network), the m365archive commands in them run against the
simulator with the example configs, and each federated credential is built without network."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from m365archive.config import ConfigError, load_config, parse_config
from m365archive.result import ExitCode
from m365archive.sim.server import simulated_tenant
from m365archive.sim.state import DAY
from m365archive.tenant.auth import AuthError, AuthMethod, SignIn, make_credential
from m365archive.tenant.clouds import get_cloud
from tests.clihelp import m365

CI = Path(__file__).parents[1] / "examples" / "ci"
WORKFLOWS = {
    "github-actions.yml": ("vendor.github-workflows", CI / "m365archive-github.toml"),
    "azure-pipelines.yml": ("vendor.azure-pipelines", CI / "m365archive-azure-devops.toml"),
}
TENANT = "6f1c2a4e-3b5d-4c7e-9f10-2a3b4c5d6e7f"
APP = "11111111-2222-3333-4444-555555555555"
CONNECTION = "66666666-7777-8888-9999-000000000000"


def _validate(schema: str, path: Path) -> subprocess.CompletedProcess[str]:
    # The Azure Pipelines schema's patterns use escapes the default (ECMA) regex engine rejects.
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", schema, "--regex-variant", "python", str(path)],
        capture_output=True,
        text=True,
    )


def test_workflows_validate_against_their_schemas(tmp_path: Path) -> None:
    for name, (schema, _config) in WORKFLOWS.items():
        good = _validate(schema, CI / name)
        assert good.returncode == 0, good.stdout + good.stderr
    broken = tmp_path / "github-actions.yml"  # the same check refuses a workflow with a misspelt key
    broken.write_text((CI / "github-actions.yml").read_text().replace("steps:", "stepz:", 1))
    assert _validate("vendor.github-workflows", broken).returncode != 0


def _commands(name: str) -> list[list[str]]:
    """The m365archive command lines of a workflow's run/script steps, as argument lists (no redirections)."""
    doc = YAML(typ="safe").load((CI / name).read_text())
    steps = doc["jobs"]["watch"]["steps"] if "jobs" in doc else doc["steps"]
    out = []
    for step in steps:
        for line in str(step.get("run") or step.get("script") or "").splitlines():
            match = re.match(r"\s*m365archive (.*?)(?:\s*>|\s*\|\||$)", line)
            if match and not line.strip().startswith("echo"):
                out.append(shlex.split(match.group(1)))
    return out


def _normalized(name: str) -> list[list[str]]:
    """A workflow's commands with its report directory written the same way for both CI systems."""
    return [[re.sub(r"^.*/(arrivals\.(csv|png))$", r"\1", a) for a in args] for args in _commands(name)]


def test_the_workflow_commands_run_against_the_simulator(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    commands = _normalized("github-actions.yml")
    assert [c[c.index("markdown") + 1] for c in commands] == ["status", "verify", "verify"]
    # Both CI systems run the same commands (their configs differ only in [auth], which --sim replaces).
    assert _normalized("azure-pipelines.yml") == commands
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("M365ARCHIVE_HOME", str(tmp_path / "state"))
    codes = []
    with simulated_tenant("arrivals", time_scale=1.0) as sim:
        sim.state.clock.advance(7 * DAY)  # ICE Chat went silent on day 4
        for args in commands:
            run = m365(sim.url, *args, config=WORKFLOWS["azure-pipelines.yml"][1])
            codes.append(run.code)
            assert run.stdout.lstrip().startswith("#"), run.stderr  # a Markdown report to publish
        assert sim.writes() == []
    assert codes[0] in (ExitCode.OK, ExitCode.CHANGES) and codes[1:] == [ExitCode.FINDINGS, ExitCode.OK]
    assert (tmp_path / "arrivals.csv").is_file()
    assert (tmp_path / "arrivals.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_ci_configs_are_valid_and_federated() -> None:
    github = load_config(WORKFLOWS["github-actions.yml"][1])
    devops = load_config(WORKFLOWS["azure-pipelines.yml"][1])
    assert github.auth.method == "azure-cli"
    assert devops.auth.method == "azure-pipelines" and devops.auth.service_connection_id == CONNECTION


@pytest.mark.parametrize(
    ("auth", "line"),
    [
        (
            {"method": "azure-pipelines", "client_id": APP},
            'config: auth: method = "azure-pipelines" needs service_connection_id = "<the service connection\'s id>"',
        ),
        (
            {"method": "github-oidc"},
            'config: auth: method = "github-oidc" needs client_id = "<your app registration\'s client id>"',
        ),
        (
            {"method": "azure-pipelines", "client_id": APP, "service_connection_id": "prod"},
            "config: auth.service_connection_id: 'prod' is not a service connection id (a GUID such as "
            "00000000-0000-0000-0000-000000000000)",
        ),
    ],
)
def test_federated_sign_in_config_names_its_ids(auth: dict[str, str], line: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"tenant": {"id": TENANT}, "procedure": "purview-connector", "auth": auth})
    assert caught.value.lines == [line]


# -- the credentials, built without network -----------------------------------------------------------


def test_azure_pipelines_credential_is_built_from_the_job_token(monkeypatch: pytest.MonkeyPatch) -> None:
    from azure.identity.aio import AzurePipelinesCredential

    monkeypatch.setenv("SYSTEM_ACCESSTOKEN", "job-token")
    sign_in = SignIn(AuthMethod.AZURE_PIPELINES, TENANT, client_id=APP, service_connection_id=CONNECTION)
    assert isinstance(make_credential(sign_in, get_cloud("global")), AzurePipelinesCredential)
    monkeypatch.delenv("SYSTEM_ACCESSTOKEN")
    with pytest.raises(AuthError, match=r"SYSTEM_ACCESSTOKEN: \$\(System.AccessToken\)"):
        make_credential(sign_in, get_cloud("global"))


def test_github_oidc_credential_is_a_client_assertion(monkeypatch: pytest.MonkeyPatch) -> None:
    from azure.identity.aio import ClientAssertionCredential

    monkeypatch.setenv("ACTIONS_ID_TOKEN_REQUEST_URL", "https://token.actions.example/req?api-version=2.0")
    monkeypatch.setenv("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "request-token")
    sign_in = SignIn(AuthMethod.GITHUB_OIDC, TENANT, client_id=APP)
    assert isinstance(make_credential(sign_in, get_cloud("gcc-high")), ClientAssertionCredential)
    monkeypatch.delenv("ACTIONS_ID_TOKEN_REQUEST_TOKEN")
    with pytest.raises(AuthError, match="id-token: write"):
        make_credential(sign_in, get_cloud("global"))


def test_azure_cli_credential_is_built_for_the_azure_login_session() -> None:
    from azure.identity.aio import AzureCliCredential

    credential = make_credential(SignIn(AuthMethod.AZURE_CLI, TENANT), get_cloud("global"))
    assert isinstance(credential, AzureCliCredential)
