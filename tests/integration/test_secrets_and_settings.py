"""Connection secrets from Secrets Manager (moto) and settings from the environment."""

import json

import pytest
from aws_lambda_powertools.utilities import parameters

from connectwise.accounting_interface.client import AccountingClient
from connectwise.rest.api import RestConnection
from connectwise.rest.client import RestClient
from scripts.harness import SANDBOX_LOGINS, LocalEnvironment
from scripts.local_aws import load_template
from tasks.platform.clients import accounting_clients
from tasks.platform.errors import ConfigurationError
from tasks.platform.secrets import load_connection
from tasks.platform.settings import Settings


def settings_for(env: LocalEnvironment) -> Settings:
    return Settings(
        table_name="t",
        bucket_name="b",
        event_bus_name="e",
        connection_secrets=json.loads(
            env.stack.function_env("DownloadGLBatchFunction")["CONNECTION_SECRETS"]
        ),
    )


def put_secret(env: LocalEnvironment, value: str) -> None:
    env.stack.client("secretsmanager").put_secret_value(SecretId="connectwise/main", SecretString=value)
    parameters.clear_caches()


def test_the_secret_becomes_a_connection(env: LocalEnvironment) -> None:
    connection = load_connection("main", settings_for(env))
    assert connection.company == "sandbox" and connection.directory == "v4_6_release"
    assert connection.password.get_secret_value() == "sandbox-password"
    assert "sandbox-password" not in repr(connection) and "sandbox-password" not in str(
        connection.model_dump()
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("not json", "is not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        (json.dumps({"company": "c", "username": "u", "site": "h"}), "password: Field required"),
        (
            json.dumps(
                {"company": "c", "username": "u", "password": "Hunter2-secret", "site": "h", "pwd": "x"}
            ),
            "pwd: Extra inputs are not permitted",
        ),
    ],
)
def test_invalid_secrets_are_clear_and_never_echo_values(
    env: LocalEnvironment, value: str, message: str
) -> None:
    put_secret(env, value)
    with pytest.raises(ConfigurationError, match=message) as caught:
        load_connection("main", settings_for(env))
    assert "secret of connection 'main'" in caught.value.message
    assert "Hunter2-secret" not in caught.value.message


REST = {"backend": "rest", "site": "h", "company": "c", "public_key": "pub", "private_key": "Priv-K3y"}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (REST, "client_id: Field required"),
        (REST | {"client_id": "g", "password": "p"}, "password: Extra inputs are not permitted"),
        (REST | {"backend": "soap"}, "'soap' found using .* does not match any of the expected tags"),
    ],
)
def test_the_secret_chooses_the_backend_and_its_fields(
    env: LocalEnvironment, value: dict[str, str], message: str
) -> None:
    put_secret(env, json.dumps(value))
    with pytest.raises(ConfigurationError, match=message) as caught:
        load_connection("main", settings_for(env))
    assert "secret of connection 'main'" in caught.value.message and "Priv-K3y" not in caught.value.message


def test_a_rest_secret_gets_a_rest_client(env: LocalEnvironment) -> None:
    put_secret(env, json.dumps(REST | {"client_id": "guid-1"}))
    connection = load_connection("main", settings_for(env))
    assert isinstance(connection, RestConnection) and connection.private_key.get_secret_value() == "Priv-K3y"
    assert "Priv-K3y" not in repr(connection) and "guid-1" not in repr(connection)
    client = accounting_clients(settings_for(env))("main")
    assert isinstance(client, RestClient) and client.label == "connection 'main'"
    legacy = {k: v for k, v in SANDBOX_LOGINS["accounting_interface"].items() if k != "integrator"}
    put_secret(env, json.dumps(legacy | {"site": "h"}))  # no backend: the Accounting Interface
    assert isinstance(accounting_clients(settings_for(env))("main"), AccountingClient)


def test_missing_secret_is_clear(env: LocalEnvironment) -> None:
    settings = settings_for(env)
    settings.connection_secrets["main"] = "connectwise/does-not-exist"
    with pytest.raises(
        ConfigurationError, match=r"cannot read the secret of connection 'main'.*ResourceNotFound"
    ):
        load_connection("main", settings)


def test_settings_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEDGER_TABLE", "t")
    monkeypatch.setenv("OUTPUT_BUCKET", "b")
    monkeypatch.setenv("CONNECTION_SECRETS", '{"main": "arn:x"}')
    settings = Settings.from_env()
    assert settings.connection_secrets == {"main": "arn:x"}
    template_env = load_template()["Globals"]["Function"]["Environment"]["Variables"]
    assert settings.stale_after_seconds == int(template_env["STALE_AFTER_SECONDS"])  # one default
    monkeypatch.setenv("CONNECTION_SECRETS", '["arn:x"]')
    with pytest.raises(ConfigurationError, match="CONNECTION_SECRETS must map"):
        Settings.from_env()
    monkeypatch.setenv("CONNECTION_SECRETS", "{}")
    monkeypatch.delenv("LEDGER_TABLE")
    with pytest.raises(ConfigurationError, match="LEDGER_TABLE is not set"):
        Settings.from_env()


def test_a_connection_keeps_its_client_until_its_secret_changes(env: LocalEnvironment) -> None:
    clients = accounting_clients(settings_for(env))
    first = clients("main")
    assert clients("main") is first  # its ConnectWise connections are reused
    secret = json.loads(
        env.stack.client("secretsmanager").get_secret_value(SecretId="connectwise/main")["SecretString"]
    )
    put_secret(env, json.dumps(secret | {"password": "rotated-password"}))
    rotated = clients("main")
    assert rotated is not first and rotated.connection.password.get_secret_value() == "rotated-password"
