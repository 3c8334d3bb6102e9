"""ConnectWise clients per connection, built from the connection's secret and kept while it is
unchanged."""

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

from connectwise.backends import AnyConnection, GLBackend, client_for
from connectwise.records import RecordsBackend
from connectwise.rest.api import RestApi, RestConnection
from connectwise.rest.records import RestRecords
from connectwise.transport import UNPACED, Pacer
from tasks.platform.errors import ConfigurationError
from tasks.platform.registry import Registry
from tasks.platform.secrets import load_connection
from tasks.platform.settings import Settings

L = TypeVar("L")  # a login read from a connection's secret
C = TypeVar("C")  # the client built from it


class ClientsByConnection(Generic[L, C]):
    """One client per connection, shared by the invocation's threads and kept while the login read
    from its secret is unchanged: its connections to ConnectWise are reused instead of a new TLS
    session per call, and a rotated secret gets a new client."""

    def __init__(self, load: Callable[[str, bool], L], build: Callable[[L, str], C]) -> None:
        self._load, self._build = load, build
        self._clients: dict[str, tuple[L, C]] = {}
        self._stale: set[str] = set()
        self._lock = threading.Lock()

    def refresh(self, name: str) -> None:
        """Read the connection's secret afresh next time (ConnectWise refused what it held)."""
        with self._lock:
            self._stale.add(name)

    def __call__(self, name: str) -> C:
        with self._lock:  # one secret fetch per expiry of its cache, not one per thread
            login = self._load(name, name in self._stale)
            self._stale.discard(name)
            held = self._clients.get(name)
            if held is None or held[0] != login:
                held = self._clients[name] = (login, self._build(login, name))
            return held[1]


def accounting_clients(
    settings: Settings, registry: Registry, budgets: Callable[[str], Pacer] = lambda name: UNPACED
) -> ClientsByConnection[AnyConnection, GLBackend]:
    """The client of each connection's backend (Accounting Interface or REST), per its secret,
    paced by the connection's budget."""
    return ClientsByConnection(
        lambda name, fresh: load_connection(name, settings, registry, fresh),
        lambda login, name: client_for(login, name, budgets(name)),
    )


def records_clients(
    settings: Settings, registry: Registry, budgets: Callable[[str], Pacer] = lambda name: UNPACED
) -> "ClientsByConnection[AnyConnection, RecordsBackend]":
    """The reports and records client of each connection: SOAP when its secret holds an
    `integrator` login (sites that still have the SOAP APIs, or a connection that asks for them),
    else REST (a REST connection's API keys). zeep is imported when the first SOAP client is built:
    the GL and payment functions never build one, so their cold start never loads it."""
    return ClientsByConnection(
        lambda name, fresh: load_connection(name, settings, registry, fresh),
        lambda login, name: records_client(login, name, budgets(name)),
    )


def records_client(connection: AnyConnection, name: str, pacer: Pacer = UNPACED) -> RecordsBackend:
    if connection.integrator is not None:
        from connectwise.soap.client import IntegratorLogin, SoapClient
        from connectwise.soap.records import SoapRecords

        login = IntegratorLogin(
            company=connection.company,
            integrator_login_id=connection.integrator.login_id,
            integrator_password=connection.integrator.password,
            site=connection.site,
            directory=connection.directory,
            use_ssl=connection.use_ssl,
            time_zone=connection.time_zone,  # a SOAP time without an offset is the site's
        )
        return SoapRecords(SoapClient(login, pacer=pacer))
    if isinstance(connection, RestConnection):
        return RestRecords(RestApi(connection, name=name, pacer=pacer))
    raise ConfigurationError(
        f"connection {name!r} cannot run reports or download records: its secret needs REST API keys "
        '("backend": "rest") or an integrator login ("integrator": {"login_id": ..., "password": ...})'
    )
