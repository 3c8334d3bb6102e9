"""Connection secrets from Secrets Manager (moto), for connections the registry serves, and
settings from the environment."""

import json
from typing import Any

import pytest
from aws_lambda_powertools.utilities import parameters

from connectwise.accounting_interface.client import AccountingClient
from connectwise.rest.api import RestConnection
from connectwise.rest.client import RestClient
from scripts.harness import SANDBOX_LOGINS, LocalEnvironment, admin_for
from scripts.local_aws import load_template
from tasks.admin.commands import set_enabled, update
from tasks.platform.clients import accounting_clients
from tasks.platform.errors import ConfigurationError
from tasks.platform.registry import Registry
from tasks.platform.secrets import load_connection
from tasks.platform.settings import Settings


def settings_for(env: LocalEnvironment) -> Settings:
    function_env = env.stack.function_env("DownloadGLBatchFunction")
    return Settings(
        table_name="t",
        bucket_name="b",
        event_bus_name="e",
        registry_table=function_env["REGISTRY_TABLE"],
        secret_prefix=function_env["SECRET_PREFIX"],
    )


def registry_for(env: LocalEnvironment) -> Registry:
    return Registry(env.stack.client("dynamodb"), env.stack.physical["ConnectionsTable"])


def load(env: LocalEnvironment, name: str = "main") -> Any:
    return load_connection(name, settings_for(env), registry_for(env))


def put_secret(env: LocalEnvironment, value: str) -> None:
    env.stack.client("secretsmanager").put_secret_value(SecretId="connectwise/main", SecretString=value)
    parameters.clear_caches()


def test_the_secret_becomes_a_connection(env: LocalEnvironment) -> None:
    connection = load(env)
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
        load(env)
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
        load(env)
    assert "secret of connection 'main'" in caught.value.message and "Priv-K3y" not in caught.value.message


def test_a_rest_secret_gets_a_rest_client(env: LocalEnvironment) -> None:
    admin = admin_for(env.stack)
    with pytest.raises(ConfigurationError, match="a login for another company"):
        update(admin, {"name": "main", "jobs": []}, REST | {"client_id": "guid-1"}, check=False)
    update(
        admin, {"name": "main", "jobs": []}, REST | {"client_id": "guid-1", "company": "Sandbox"}, check=False
    )
    connection = load(env)
    assert isinstance(connection, RestConnection) and connection.private_key.get_secret_value() == "Priv-K3y"
    assert "Priv-K3y" not in repr(connection) and "guid-1" not in repr(connection)
    client = accounting_clients(settings_for(env), registry_for(env))("main")
    assert isinstance(client, RestClient) and client.label == "connection 'main'"
    legacy = {k: v for k, v in SANDBOX_LOGINS["accounting_interface"].items() if k != "integrator"}
    update(admin, {"name": "main", "jobs": []}, legacy | {"site": "h2"}, check=False)  # no backend: legacy
    parameters.clear_caches()
    assert isinstance(accounting_clients(settings_for(env), registry_for(env))("main"), AccountingClient)


def test_a_secret_of_another_backend_than_the_registry_says_is_refused(env: LocalEnvironment) -> None:
    put_secret(env, json.dumps(REST | {"client_id": "guid-1"}))  # changed behind the admin's back
    with pytest.raises(
        ConfigurationError, match="holds a rest login, but the registry says accounting_interface"
    ):
        load(env)


def test_missing_secret_is_clear(env: LocalEnvironment) -> None:
    env.stack.client("secretsmanager").delete_secret(
        SecretId="connectwise/main", ForceDeleteWithoutRecovery=True
    )
    parameters.clear_caches()
    with pytest.raises(
        ConfigurationError, match=r"cannot read the secret of connection 'main'.*ResourceNotFound"
    ):
        load(env)


def test_unknown_and_disabled_connections_are_refused_before_their_secret_is_read(
    env: LocalEnvironment,
) -> None:
    with pytest.raises(
        ConfigurationError, match="unknown connection 'other': it is not in the connection registry"
    ):
        load(env, "other")
    env.stack.client("secretsmanager").create_secret(Name="connectwise/other", SecretString="{}")
    with pytest.raises(ConfigurationError, match="unknown connection 'other'"):
        load(env, "other")  # a secret under the prefix is not a connection: the registry says what is
    set_enabled(admin_for(env.stack), "main", False)
    with pytest.raises(ConfigurationError, match="connection 'main' is disabled"):
        load(env)


def test_the_registry_time_zone_is_the_connections(env: LocalEnvironment) -> None:
    secret = json.loads(
        env.stack.client("secretsmanager").get_secret_value(SecretId="connectwise/main")["SecretString"]
    )
    put_secret(env, json.dumps(secret | {"time_zone": "Asia/Tokyo"}))  # an old secret's own zone
    update(admin_for(env.stack), {"name": "main", "time_zone": "America/Chicago", "jobs": []})
    assert load(env).time_zone == "America/Chicago"


def test_settings_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEDGER_TABLE", "t")
    monkeypatch.setenv("OUTPUT_BUCKET", "b")
    monkeypatch.setenv("REGISTRY_TABLE", "r")
    monkeypatch.delenv("SECRET_PREFIX", raising=False)
    settings = Settings.from_env()
    template = load_template()
    template_env = template["Globals"]["Function"]["Environment"]["Variables"]
    assert settings.stale_after_seconds == int(template_env["STALE_AFTER_SECONDS"])  # one default
    assert settings.secret_prefix == template["Parameters"]["SecretPrefix"]["Default"]
    monkeypatch.setenv("SECRET_PREFIX", "connectwise/*")
    with pytest.raises(ConfigurationError, match="secret_prefix"):
        Settings.from_env()
    monkeypatch.delenv("SECRET_PREFIX")
    monkeypatch.delenv("REGISTRY_TABLE")
    with pytest.raises(ConfigurationError, match="REGISTRY_TABLE is not set"):
        Settings.from_env()
    monkeypatch.setenv("REGISTRY_TABLE", "r")
    monkeypatch.delenv("LEDGER_TABLE")
    with pytest.raises(ConfigurationError, match="LEDGER_TABLE is not set"):
        Settings.from_env()


def test_a_connection_keeps_its_client_until_its_secret_changes(env: LocalEnvironment) -> None:
    clients = accounting_clients(settings_for(env), registry_for(env))
    first = clients("main")
    assert clients("main") is first  # its ConnectWise connections are reused
    secret = json.loads(
        env.stack.client("secretsmanager").get_secret_value(SecretId="connectwise/main")["SecretString"]
    )
    put_secret(env, json.dumps(secret | {"password": "rotated-password"}))
    rotated = clients("main")
    assert rotated is not first and rotated.connection.password.get_secret_value() == "rotated-password"
