"""ConnectWise's SOAP "Integrator" APIs through zeep: reports and the Find operations.

Import this module only where SOAP is used: zeep and lxml cost the accounting functions' cold
start nothing that way. The WSDLs come from `connectwise/wsdl/` (never fetched): each is parsed
once per process and reused by every warm invocation. The site's address replaces the WSDL's.
"""

import copy
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal, TypeVar

import requests
import zeep
import zeep.exceptions
import zeep.helpers
from pydantic import Field, SecretStr
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry
from zeep.wsdl import Document

from connectwise import transport
from connectwise.errors import AuthenticationError, ConnectWiseError, PsaError, TransportError
from connectwise.models import SiteLogin
from connectwise.records import typed_cell
from connectwise.transport import TRANSIENT_STATUSES, Deadline

WSDL_DIR = Path(__file__).resolve().parent.parent / "wsdl"
T = TypeVar("T")

# zeep logs whole envelopes, the integrator password included, at DEBUG: never let that through,
# whatever level the function's or the Lambda runtime's logging is set to.
logging.getLogger("zeep").setLevel(logging.INFO)
DEFAULT_PAGE_SIZE = 500


@dataclass(frozen=True)
class Api:
    name: str  # as in the URL path
    version: str
    wsdl: str


REPORTING = Api("ReportingApi", "1.5", "ReportingAPI_1.5.wsdl")


@dataclass(frozen=True)
class Entity:
    """A record type a Find operation returns, and how to page it incrementally."""

    api: Api
    operation: str
    last_updated: str  # the field that moves when a record changes
    takes_is_open: bool


ENTITIES = {
    "agreements": Entity(Api("AgreementApi", "2.0", "AgreementApi_2.0.authored.wsdl"), "FindAgreements", "LastUpdate", True),
    "companies": Entity(Api("CompanyApi", "2.0", "CompanyApi_2.0.authored.wsdl"), "FindCompanies", "LastUpdated", False),
    "invoices": Entity(Api("InvoiceApi", "2.0", "InvoiceApi_2.0.authored.wsdl"), "FindInvoices", "LastUpdated", True),
    "opportunities": Entity(Api("OpportunityApi", "2.0", "OpportunityApi_2.0.authored.wsdl"), "FindOpportunities", "LastUpdated", True),
    "purchase_orders": Entity(Api("PurchasingApi", "2.0", "PurchasingApi_2.0.authored.wsdl"), "FindPurchaseOrders", "LastUpdated", False),
}  # fmt: skip


class IntegratorLogin(SiteLogin):
    """An Integrator Login of one ConnectWise site (System > Setup Tables > Integrator Login)."""

    backend: Literal["soap"] = "soap"
    company: str = Field(min_length=1, description="the company id typed on the ConnectWise login screen")
    integrator_login_id: str = Field(min_length=1)
    integrator_password: SecretStr = Field(min_length=1)

    def url(self, api: Api) -> str:
        scheme = "https" if self.use_ssl else "http"
        return f"{scheme}://{self.site}/{self.directory}/apis/{api.version}/{api.name}.asmx"


class SoapFaultError(PsaError):
    """ConnectWise answered with a SOAP fault; `message` is its fault string."""


SETTINGS = zeep.Settings(strict=True, forbid_dtd=True, forbid_entities=True, forbid_external=True)


@cache
def _document(wsdl: str) -> Document:
    """The bundled WSDL parsed once per process (warm invocations reuse it)."""
    return Document(str(WSDL_DIR / wsdl), _NoNetwork(), settings=SETTINGS)  # type: ignore[arg-type]


class _NoNetwork(zeep.Transport):
    """Loads the bundled WSDL from disk and refuses anything it would fetch from the network."""

    def load(self, url: str) -> bytes:
        if "://" in url and not url.startswith("file://"):
            raise ConnectWiseError(f"the bundled WSDL refers to {url}; nothing is fetched")
        return super().load(url)  # type: ignore[no-any-return]


class SoapClient:
    """Reports and Find operations of one site, as one integrator login."""

    def __init__(
        self,
        login: IntegratorLogin,
        *,
        timeout: float = 60.0,
        retries: int = 3,
        backoff: float = 0.5,
        pacer: transport.Pacer = transport.UNPACED,
    ):
        self.login = login
        self.pacer = pacer
        self.retries, self.backoff = retries, backoff
        # What the last answer said in Retry-After (shared by the copies `within` makes).
        self._heard: dict[str, float | None] = {"retry_after": None}
        session = transport.new_session()
        session.hooks["response"].append(self._listen)
        # urllib3 repeats only what never reached ConnectWise (a connection not made); answers
        # are retried in _call, each attempt taking its turn in the connection's budget.
        retry = Retry(total=retries, connect=retries, read=0, status=0, other=0, backoff_factor=backoff)
        session.mount("http://", HTTPAdapter(max_retries=retry))
        session.mount("https://", HTTPAdapter(max_retries=retry))
        self.timeout = timeout
        self.deadline = Deadline()
        self._transport = zeep.Transport(session=session, timeout=timeout, operation_timeout=timeout)
        self._services: dict[Api, Any] = {}

    def within(self, deadline: Deadline) -> "SoapClient":
        """This client (same session, same parsed services) with every call cut to `deadline`."""
        bound = copy.copy(self)
        bound.deadline = deadline
        return bound

    # Reporting API

    def get_reports(self, include_fields: bool = False) -> list[dict[str, Any]]:
        reports = self._call(REPORTING, "GetReports", includeFields=include_fields) or []
        return [_plain(report) for report in reports]

    def get_report_fields(self, report: str) -> list[dict[str, Any]]:
        fields = self._call(REPORTING, "GetReportFields", reportName=report) or []
        return [_plain(field) for field in fields]

    def run_report_count(self, report: str, conditions: str = "") -> int:
        return int(self._call(REPORTING, "RunReportCount", reportName=report, conditions=conditions))

    def run_report(
        self,
        report: str,
        conditions: str = "",
        order_by: str = "",
        page_size: int = DEFAULT_PAGE_SIZE,
        skip: int = 0,
    ) -> Iterator[dict[str, Any]]:
        """Every row after the first `skip`, page by page (limit/skip until a short page); values
        typed as the report says."""

        def page(limit: int, skip: int) -> list[Any]:
            return (
                self._call(
                    REPORTING,
                    "RunReportQuery",
                    reportName=report,
                    conditions=conditions,
                    orderBy=order_by,
                    limit=limit,
                    skip=skip,
                )
                or []
            )

        for row in _all_pages(page, page_size, skip):
            yield {value["Name"]: _typed(value) for value in row["Value"]}

    # Find operations

    def find(
        self,
        entity: str,
        conditions: str = "",
        order_by: str = "",
        page_size: int = DEFAULT_PAGE_SIZE,
        return_fields: list[str] | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Every record matching `conditions`, page by page (limit/skip); each as {field: value}."""

        def page(limit: int, skip: int) -> list[dict[str, Any]]:
            return self.find_page(entity, conditions, order_by, limit, skip, return_fields)

        yield from _all_pages(page, page_size)

    def find_page(
        self,
        entity: str,
        conditions: str = "",
        order_by: str = "",
        limit: int = DEFAULT_PAGE_SIZE,
        skip: int = 0,
        return_fields: list[str] | None = None,
    ) -> list[dict[str, Any]]:
        spec = ENTITIES[entity]
        extra: dict[str, Any] = {"isOpen": None} if spec.takes_is_open else {}
        if return_fields:
            extra["returnFields"] = {"string": return_fields}
        records = self._call(
            spec.api, spec.operation, conditions=conditions, orderBy=order_by, limit=limit, skip=skip, **extra
        )
        return [_plain(record) for record in records or []]

    def _call(self, api: Api, operation: str, **arguments: Any) -> Any:
        service = self._services.get(api)
        if service is None:
            client = zeep.Client(_document(api.wsdl), transport=self._transport, settings=SETTINGS)
            binding = f"{{http://connectwise.com}}{api.name}Soap"
            service = self._services[api] = client.create_service(binding, self.login.url(api))
        what = f"{api.name}.{operation}"
        for attempt in range(self.retries + 1):
            try:
                return self._attempt(service, operation, what, arguments)
            except zeep.exceptions.TransportError as exc:
                status = exc.status_code
                error = TransportError(
                    f"{what}: HTTP {status}", status=status, transient=status in TRANSIENT_STATUSES
                )
                # A SOAP fault comes with HTTP 500: ConnectWise's answer, not a hiccup (and a refused
                # password sent again and again can lock the login out). Find and report calls only read.
                if status not in TRANSIENT_STATUSES - {500} or attempt == self.retries:
                    raise error from None
                said = self._heard["retry_after"]
                self.deadline.sleep(self.backoff * 2**attempt if said is None else said, what)
        raise AssertionError("unreachable")

    def _attempt(self, service: Any, operation: str, what: str, arguments: dict[str, Any]) -> Any:
        self.pacer.wait_turn(self.deadline, what)
        # One invocation at a time per container: the shared transport takes this call's timeout.
        self._transport.operation_timeout = self.deadline.timeout((5.0, self.timeout), what)[1]
        credentials = {
            "CompanyId": self.login.company,
            "IntegratorLoginId": self.login.integrator_login_id,
            "IntegratorPassword": self.login.integrator_password.get_secret_value(),
        }
        try:
            return getattr(service, operation)(credentials=credentials, **arguments)
        except zeep.exceptions.Fault as fault:
            raise _fault_error(what, fault) from None
        except (
            zeep.exceptions.XMLSyntaxError,
            zeep.exceptions.ValidationError,
            zeep.exceptions.XMLParseError,
        ) as exc:
            raise ConnectWiseError(f"{what}: unreadable SOAP reply: {exc}") from None
        except requests.RequestException as exc:
            raise TransportError(f"{what}: {type(exc).__name__}") from None

    def _listen(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        """Every answer's time and Retry-After; a 429 slows the connection's other calls too."""
        self.pacer.answered(response.elapsed.total_seconds(), response.status_code)
        said = transport.retry_after_seconds(response.headers.get("Retry-After", ""))
        self._heard["retry_after"] = said
        if response.status_code == 429:
            self.pacer.throttled(1.0 if said is None else said)


def _all_pages(fetch: Callable[[int, int], list[T]], page_size: int, skip: int = 0) -> Iterator[T]:
    """fetch(limit, skip) page after page until a short page."""
    if page_size < 1:
        raise ValueError("page_size must be at least 1 (ConnectWise returns nothing for a limit of 0)")
    while True:
        items = fetch(page_size, skip)
        yield from items
        if len(items) < page_size:
            return
        skip += page_size


AUTHENTICATION_FAULTS = ("password is incorrect", "cannot find company", "do not have access")


def _fault_error(what: str, fault: zeep.exceptions.Fault) -> ConnectWiseError:
    message = (fault.message or "SOAP fault").strip()
    if any(text in message.lower() for text in AUTHENTICATION_FAULTS):
        return AuthenticationError(f"{what}: {message}")
    return SoapFaultError(f"{what}: {message}")


def _plain(value: Any) -> dict[str, Any]:
    """A zeep object as a plain dict; money stays Decimal."""
    result: dict[str, Any] = zeep.helpers.serialize_object(value, dict)
    return result


def _typed(value: Any) -> Any:
    """A report cell: its text typed by the FieldValue's Type (Numeric as Decimal, never float)."""
    return typed_cell(value["_value_1"], value["Type"])
