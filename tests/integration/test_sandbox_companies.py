"""One sandbox, many ConnectWise companies: every interface answers from the company the
credentials name and never from another; a wrong password or an unknown company gets the refusal
the interface gives any bad login; the control API adds companies, shows each one's state and
counts each one's calls."""

import base64
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
import requests
import zeep
import zeep.exceptions
import zeep.helpers
from zeep.plugins import HistoryPlugin

from connectwise.accounting_interface import wire
from connectwise.accounting_interface.client import AccountingClient, Connection
from connectwise.errors import AuthenticationError, PsaError, UnknownBatchError
from connectwise.models import KINDS
from connectwise.rest.api import RestConnection
from connectwise.rest.client import RestClient
from connectwise.soap.client import ENTITIES
from sandbox.__main__ import main as sandbox_main
from sandbox.companies import MAX_RECORDS
from sandbox.company_ids import company_marker, company_seed, invoice_prefix
from sandbox.data import generate
from sandbox.rest import API_PREFIX, MEDIA_TYPE
from sandbox.server import SandboxServer, start_sandbox
from scripts.harness import BACKENDS, SANDBOX_LOGINS, sandbox_login, sandbox_process
from tests.contract.test_soap_with_zeep import BINDINGS, zeep_client
from tests.glexport_kept import keep

ACME, GLOBEX = "acme", "globex"
SEED, SIZES = 7, {"invoices": 12, "expenses": 4, "purchases": 3}
PAID_AT = datetime(2026, 9, 1, 12, tzinfo=UTC)
INVOICES = ENTITIES["invoices"]


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    """This module's sandbox: `sandbox`, `acme` and `globex`, the sizes of tests/conftest.py's."""
    server = start_sandbox(seed=SEED, companies=[ACME, GLOBEX], **SIZES)
    yield server
    server.stop()


def control(sandbox: SandboxServer, view: str, company: str | None = None) -> Any:
    params = {} if company is None else {"company": company}
    reply = requests.get(f"http://{sandbox.site_address}/_sandbox/{view}", params=params, timeout=10)
    reply.raise_for_status()
    return reply.json()


def snapshot(sandbox: SandboxServer, company: str) -> tuple[Any, Any]:
    return control(sandbox, "state", company), control(sandbox, "invoices", company)


def add(sandbox: SandboxServer, body: Any) -> requests.Response:
    return requests.post(f"http://{sandbox.site_address}/_sandbox/companies", json=body, timeout=10)


def gl_client(sandbox: SandboxServer, company: str, **changes: str) -> AccountingClient:
    login = sandbox_login("accounting_interface", company) | {"site": sandbox.site_address, "use_ssl": False}
    return AccountingClient(Connection.model_validate(login | changes), retries=0)


def rest_client(sandbox: SandboxServer, company: str, **changes: str) -> RestClient:
    login = sandbox_login("rest", company) | {"site": sandbox.site_address, "use_ssl": False}
    return RestClient(RestConnection.model_validate(login | changes), name=company, retries=0, backoff=0)


def numbers(sandbox: SandboxServer, company: str) -> list[str]:
    return [invoice["number"] for invoice in control(sandbox, "invoices", company)]


def soap_invoices(sandbox: SandboxServer, credentials: dict[str, str]) -> list[dict[str, Any]]:
    """FindInvoices through zeep, as a user builds the client from the sandbox's WSDL."""
    client = zeep_client(sandbox, INVOICES.api, HistoryPlugin())
    service = client.bind(INVOICES.api.name, INVOICES.api.name + BINDINGS["SOAP 1.1"])
    found = service.FindInvoices(credentials=credentials, conditions="", orderBy="", limit=100, skip=0)
    return list(zeep.helpers.serialize_object(found) or [])


def integrator(company: str, **changes: str) -> dict[str, str]:
    login = sandbox_login("accounting_interface", company)
    given = {"CompanyId": company} | {
        "IntegratorLoginId": login["integrator"]["login_id"],
        "IntegratorPassword": login["integrator"]["password"],
    }
    return given | changes


def basic(company: str, public: str, private: str) -> dict[str, str]:
    token = base64.b64encode(f"{company}+{public}:{private}".encode()).decode()
    return {"Authorization": f"Basic {token}", "clientId": sandbox_login("rest")["client_id"]}


# Each company's own data


def test_each_company_has_its_own_seeded_data_and_invoice_prefix(sandbox: SandboxServer) -> None:
    assert all(number.startswith("CW-") for number in numbers(sandbox, "sandbox"))
    for company in (ACME, GLOBEX):
        prefix = invoice_prefix(company)
        assert prefix not in ("CW-", invoice_prefix(ACME if company == GLOBEX else GLOBEX))
        assert len(numbers(sandbox, company)) == SIZES["invoices"]
        assert all(number.startswith(prefix) for number in numbers(sandbox, company))
        found = sandbox.companies.find(company)
        assert found is not None
        site = found.accounting.site
        names = [c.name for c in [*site.customers, *site.vendors]]
        assert all(name.endswith(" " + company_marker(company)) for name in names)
    totals = {c: [i["total"] for i in control(sandbox, "invoices", c)] for c in ("sandbox", ACME, GLOBEX)}
    assert len({tuple(t) for t in totals.values()}) == 3  # three seeds, three data sets


def test_the_gl_page_answers_each_company_from_its_own_state(sandbox: SandboxServer) -> None:
    acme, globex = gl_client(sandbox, ACME), gl_client(sandbox, GLOBEX)
    untouched = {c: snapshot(sandbox, c) for c in ("sandbox", GLOBEX)}

    batch = keep(acme.download_gl_batch, KINDS)
    assert sorted(t.DocumentNumber for t in batch.document.Transactions) == sorted(numbers(sandbox, ACME))
    assert acme.update_gl_batch(batch.batch_id, batch.gl_entry_ids()) == wire.UPDATE_SUCCESS
    invoice = control(sandbox, "invoices", ACME)[0]
    paid = acme.update_invoice_payment(invoice["number"], Decimal(invoice["total"]), PAID_AT)
    assert paid.paid_amount == Decimal(invoice["total"])

    assert control(sandbox, "state", ACME)["unposted_invoices"] == []
    assert control(sandbox, "invoices", ACME)[0]["date_paid"] is not None
    assert {c: snapshot(sandbox, c) for c in ("sandbox", GLOBEX)} == untouched
    # acme's batch and invoices do not exist for globex, whose entry ids are the same numbers
    with pytest.raises(UnknownBatchError):
        globex.update_gl_batch(batch.batch_id, batch.gl_entry_ids())
    with pytest.raises(PsaError, match="Cannot find Invoice Number"):
        globex.update_invoice_payment(invoice["number"], Decimal("1.00"), PAID_AT)
    assert globex.download_gl_batch(KINDS).counts() == {"invoices": 12, "expenses": 4, "procurement": 3}
    assert {c: snapshot(sandbox, c) for c in ("sandbox", GLOBEX)} == untouched


def test_soap_answers_each_company_from_its_own_data(sandbox: SandboxServer) -> None:
    for company in ("sandbox", ACME, GLOBEX):
        found = soap_invoices(sandbox, integrator(company))
        assert sorted(i["InvoiceNumber"] for i in found) == sorted(numbers(sandbox, company))
    # A payment in acme moves acme's invoice for SOAP; globex's SOAP view stays as it was.
    before = soap_invoices(sandbox, integrator(GLOBEX))
    invoice = control(sandbox, "invoices", ACME)[1]
    gl_client(sandbox, ACME).update_invoice_payment(invoice["number"], Decimal("5.00"), PAID_AT)
    acme = {i["InvoiceNumber"]: i for i in soap_invoices(sandbox, integrator(ACME, CompanyId="ACME"))}
    assert acme[invoice["number"]]["PaidAmount"] == Decimal("5.00")
    assert soap_invoices(sandbox, integrator(GLOBEX)) == before


def test_rest_answers_each_company_from_its_own_state(sandbox: SandboxServer) -> None:
    acme, globex = rest_client(sandbox, ACME), rest_client(sandbox, GLOBEX)
    assert sorted(r["invoiceNumber"] for r in acme.pages("/finance/invoices")) == sorted(
        numbers(sandbox, ACME)
    )
    assert {r["invoiceNumber"] for r in globex.unposted("invoices")} == set(numbers(sandbox, GLOBEX))
    untouched = {c: snapshot(sandbox, c) for c in ("sandbox", GLOBEX)}

    batch = acme.download_gl_batch(KINDS)
    acme.update_gl_batch(batch.batch_id, batch.gl_entry_ids())
    invoice = control(sandbox, "invoices", ACME)[2]
    acme.update_invoice_payment(invoice["number"], Decimal("3.00"), PAID_AT)

    assert control(sandbox, "state", ACME)["unposted_invoices"] == []
    assert control(sandbox, "invoices", ACME)[2]["paid_amount"] == "3.00"
    assert {c: snapshot(sandbox, c) for c in ("sandbox", GLOBEX)} == untouched
    assert globex.find_batch(batch.batch_id) is None
    assert len(globex.unposted("invoices")) == SIZES["invoices"]
    assert rest_client(sandbox, ACME.upper()).codebase() == "v4_6_release/"  # ids ignore case


@pytest.mark.slow
def test_the_generated_client_with_a_companys_keys_sees_that_company(
    sandbox: SandboxServer, generated_client: Any
) -> None:
    from tests.generated_client import Api

    keys = sandbox_login("rest", GLOBEX)
    login = basic(GLOBEX, keys["public_key"], keys["private_key"])["Authorization"]
    client = generated_client.Client(
        base_url=f"http://{sandbox.site_address}{API_PREFIX}", headers={"Authorization": login}
    )
    api = Api(generated_client, client)
    response = api("invoices.get_finance_invoices", page=1, page_size=100)
    assert response.status_code == 200, response.content
    assert sorted(i.invoice_number for i in response.parsed) == sorted(numbers(sandbox, GLOBEX))


# Logins


def test_a_bad_login_gets_the_usual_refusal_on_the_gl_page(sandbox: SandboxServer) -> None:
    def export(company: str, password: str) -> bytes:
        form = wire.export_fields(True, False, False, None, None) | {
            wire.COMPANY: company,
            wire.USERNAME: "accounting",
            wire.PASSWORD: password,
        }
        url = gl_client(sandbox, "sandbox").connection.url
        return requests.post(url, data=form, timeout=10).content

    refusal = export("sandbox", "wrong-password")  # what a bad login always got
    assert wire.BAD_LOGIN.encode() in refusal
    for company, password in [
        (ACME, "wrong-password"),
        (GLOBEX, "acme-password"),  # acme's password does not open globex
        ("sandbox", "acme-password"),
        ("nobody", "nobody-password"),
        ("not an id", "x-password"),
        ("", "sandbox-password"),
    ]:
        assert export(company, password) == refusal, company
    assert export("ACME", "acme-password") != refusal  # the company id ignores case
    with pytest.raises(AuthenticationError):
        gl_client(sandbox, GLOBEX, password="acme-password").download_gl_batch(KINDS)
    assert control(sandbox, "calls")[GLOBEX]["gl"] == 0


def test_a_bad_login_gets_the_usual_fault_on_soap(sandbox: SandboxServer) -> None:
    cases = {
        "Username or password is incorrect": [
            integrator(ACME, IntegratorPassword="wrong-password"),
            integrator(GLOBEX, IntegratorPassword="acme-integrator"),
            integrator("sandbox", IntegratorPassword="acme-integrator"),
        ],
        "Cannot find company in connectwise": [integrator("nobody"), integrator("not an id")],
    }
    for message, credentials in cases.items():
        for given in credentials:
            with pytest.raises(zeep.exceptions.Fault) as caught:
                soap_invoices(sandbox, given)
            assert caught.value.message == message, given["CompanyId"]
    assert all(calls["soap"] == 0 for calls in control(sandbox, "calls").values())


def test_a_bad_login_gets_the_usual_401_on_rest(sandbox: SandboxServer) -> None:
    def get(headers: dict[str, str]) -> requests.Response:
        url = f"http://{sandbox.site_address}{API_PREFIX}/finance/invoices"
        return requests.get(url, headers=headers | {"Accept": MEDIA_TYPE}, timeout=10)

    refusal = get(basic("sandbox", "sandbox-public", "wrong-private"))
    assert refusal.status_code == 401
    for headers in [
        basic(ACME, "acme-public", "wrong-private"),
        basic(GLOBEX, "acme-public", "acme-private"),  # acme's keys do not open globex
        basic("nobody", "nobody-public", "nobody-private"),
        basic("not an id", "x-public", "x-private"),
        {"Authorization": "Basic not-base64", "clientId": "x"},
        {"clientId": sandbox_login("rest")["client_id"]},  # no login at all
    ]:
        reply = get(headers)
        assert (reply.status_code, reply.content) == (401, refusal.content), headers
    assert get(basic("ACME", "acme-public", "acme-private")).status_code == 200

    def companyinfo(company: str) -> Any:
        return requests.get(f"http://{sandbox.site_address}/login/companyinfo/{company}", timeout=10).json()

    assert companyinfo("nobody") is None and companyinfo("not-an-id") is None
    assert companyinfo("Globex")["CompanyID"] == GLOBEX
    with pytest.raises(AuthenticationError, match="refused the API keys"):
        rest_client(sandbox, GLOBEX, private_key="acme-private").download_gl_batch(["invoices"])
    assert control(sandbox, "calls")[GLOBEX]["rest"] == 0


# The control API


def test_companies_are_added_once_and_conflicting_parameters_refused(sandbox: SandboxServer) -> None:
    first = add(sandbox, {"company": "initech"})
    assert first.status_code == 201
    assert first.json() == {
        "company": "initech",
        "seed": company_seed("initech", SEED),
        **SIZES,
        "invoice_prefix": invoice_prefix("initech"),
    }
    described = {k: v for k, v in first.json().items() if k != "invoice_prefix"}
    for again in ({"company": "initech"}, {"company": "INITECH", "invoices": 12}, described):
        reply = add(sandbox, again)
        assert (reply.status_code, reply.json()) == (200, first.json()), again
    refused = add(sandbox, {"company": "Initech", "invoices": 5})
    assert refused.status_code == 409 and "'initech' exists with invoices 12 (asked for 5)" in refused.text
    assert len(numbers(sandbox, "initech")) == SIZES["invoices"]
    assert add(sandbox, {"company": "sandbox"}).status_code == 200  # the default, as it is
    assert add(sandbox, {"company": "sandbox", "seed": SEED + 1}).status_code == 409

    seeded = add(sandbox, {"company": "hooli", "seed": 3, "invoices": 5, "expenses": 0})
    assert seeded.status_code == 201
    expected = [str(i.total) for i in generate(3, invoices=5, expenses=0, purchases=3).invoices]
    assert [i["total"] for i in control(sandbox, "invoices", "hooli")] == expected
    batch = gl_client(sandbox, "hooli").download_gl_batch(KINDS)  # its logins follow the pattern
    assert batch.counts() == {"invoices": 5, "expenses": 0, "procurement": 3}


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"company": "a-b"}, "a-b"),
        ({"company": "x" * 31}, "x" * 31),
        ({"company": 7}, "7"),
        ({"invoices": 3}, "company"),
        ({"company": "ok", "invoices": -1}, "invoices"),
        ({"company": "ok", "expenses": 1.5}, "expenses"),
        ({"company": "ok", "purchases": MAX_RECORDS + 1}, "purchases"),
        ({"company": "ok", "seed": "7"}, "seed"),
        ({"company": "ok", "colour": "red"}, "colour"),
        (["ok"], "JSON object"),
    ],
)
def test_a_malformed_company_is_a_400_naming_the_field(sandbox: SandboxServer, body: Any, named: str) -> None:
    reply = add(sandbox, body)
    assert reply.status_code == 400 and named in reply.text
    assert set(control(sandbox, "calls")) == {"sandbox", ACME, GLOBEX}


def test_a_company_whose_invoice_prefix_is_taken_is_refused(sandbox: SandboxServer) -> None:
    first, second = "c17439", "c24164"  # two ids found to share a marker
    assert company_marker(first) == company_marker(second)
    assert add(sandbox, {"company": first}).status_code == 201
    refused = add(sandbox, {"company": second})
    assert refused.status_code == 409 and first in refused.text
    assert sandbox.companies.find(second) is None


def test_an_unknown_company_is_a_404_naming_it(sandbox: SandboxServer) -> None:
    for view in ("state", "invoices"):
        reply = requests.get(
            f"http://{sandbox.site_address}/_sandbox/{view}", params={"company": "nobody"}, timeout=10
        )
        assert reply.status_code == 404 and "nobody" in reply.text
    assert control(sandbox, "state") == control(sandbox, "state", "SANDBOX")  # the default


def test_calls_are_counted_per_company_and_interface(sandbox: SandboxServer) -> None:
    gl_client(sandbox, ACME).download_gl_batch(KINDS)
    gl_client(sandbox, ACME).download_gl_batch(["invoices"])
    soap_invoices(sandbox, integrator(GLOBEX))
    rest = rest_client(sandbox, "sandbox")
    rest.get("/finance/invoices/count")
    rest.get("/finance/agreements/count")
    rest.get("/company/companies/count")
    with pytest.raises(AuthenticationError):  # refused: counted for nobody
        gl_client(sandbox, GLOBEX, password="wrong").download_gl_batch(KINDS)
    assert control(sandbox, "calls") == {
        "sandbox": {"gl": 0, "soap": 0, "rest": 3},
        ACME: {"gl": 2, "soap": 0, "rest": 0},
        GLOBEX: {"gl": 0, "soap": 1, "rest": 0},
    }


def test_companies_are_generated_on_their_first_call(sandbox: SandboxServer) -> None:
    for n in range(1000):
        sandbox.companies.add(f"bench{n:04d}")
    assert len(control(sandbox, "calls")) == 1003
    assert [c.spec.company for c in sandbox.companies.all() if c.built] == ["sandbox"]
    assert len(rest_client(sandbox, "bench0500").unposted("invoices")) == SIZES["invoices"]
    assert [c.spec.company for c in sandbox.companies.all() if c.built] == ["sandbox", "bench0500"]


def test_invoice_numbers_fit_connectwise_and_seeds_do_not_depend_on_the_process() -> None:
    longest = "x" * 30
    assert len(invoice_prefix(longest) + str(30000 + MAX_RECORDS)) <= 15  # Invoice.invoiceNumber
    program = "from sandbox.company_ids import company_seed; print(company_seed('acme', 1))"
    seeds = {
        subprocess.run(
            [sys.executable, "-c", program],
            env=os.environ | {"PYTHONHASHSEED": hash_seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for hash_seed in ("1", "2")
    }
    assert seeds == {f"{company_seed('acme', 1)}\n"}
    assert company_seed("acme", 1) != company_seed("acme", 2) != company_seed("globex", 2)


# The command line and the harness


def test_the_command_line_refuses_a_bad_company_id(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        sandbox_main(["--companies", "acme,not-an-id"])
    assert caught.value.code == 2 and "'not-an-id' is not a company id" in capsys.readouterr().err


def test_the_harness_starts_companies_and_knows_their_logins() -> None:
    for backend in BACKENDS:
        assert sandbox_login(backend) == SANDBOX_LOGINS[backend]
    with sandbox_process(seed=2, invoices=3, companies=[ACME, GLOBEX]) as site:
        login = {"site": site, "use_ssl": False}
        gl = AccountingClient(Connection.model_validate(sandbox_login("accounting_interface", ACME) | login))
        batch = keep(gl.download_gl_batch, ["invoices"])
        assert batch.counts()["invoices"] == 3
        assert all(t.DocumentNumber.startswith(invoice_prefix(ACME)) for t in batch.document.Transactions)
        rest = RestClient(RestConnection.model_validate(sandbox_login("rest", GLOBEX) | login))
        assert all(r["invoiceNumber"].startswith(invoice_prefix(GLOBEX)) for r in rest.unposted("invoices"))
        calls = requests.get(f"http://{site}/_sandbox/calls", timeout=10).json()
        assert calls[ACME] == {"gl": 1, "soap": 0, "rest": 0}
        assert calls[GLOBEX]["rest"] > 0 and calls["sandbox"] == {"gl": 0, "soap": 0, "rest": 0}
    with pytest.raises(ValueError, match="unknown backend"):
        sandbox_login("soap", ACME)
    assert json.dumps(sandbox_login("rest", ACME))  # plain JSON, as a secret's value
