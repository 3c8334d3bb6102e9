"""The sandbox's rate budget per credential (sandbox/budget.py): the sliding window on a clock the
test moves, then the real server on all three interfaces, the control API, concurrency, and
clients that are not ours (urllib3's Retry, the generated typed client) and ours (REST, the GL
page, SOAP through zeep) waiting out the 429. Over HTTP the window is either long (nothing leaves
it during a test, so what is admitted is exact) or 2 s for a client's retry to get through;
counts come from `GET /_sandbox/budget`, never from wall-clock times."""

import base64
import json
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from connectwise.accounting_interface import wire
from connectwise.accounting_interface.client import AccountingClient, Connection
from connectwise.errors import TransportError
from connectwise.rest.api import RestApi
from connectwise.soap.client import SoapClient
from sandbox.__main__ import main as sandbox_main
from sandbox.budget import Budget, Credential, soap_credential
from sandbox.rest import API_PREFIX, RestCredentials
from sandbox.server import SandboxServer, start_sandbox
from scripts.harness import SANDBOX_LOGIN, sandbox_process
from tests.conftest import rest_connection, sandbox_connection
from tests.generated_client import Api
from tests.integration.test_soap import login as soap_login

LONG = 600  # seconds: nothing leaves the window while a test runs
SHORT = 2  # seconds: a client's retry after Retry-After gets through
CLIENT_ID = RestCredentials().client_id
BATCHES = f"{API_PREFIX}/finance/accounting/batches"
SOAP_PATH = "/v4_6_release/apis/1.5/ReportingApi.asmx"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


ALICE = Credential("rest", "acme", "acme-public")


def admitted(budget: Budget, who: Credential = ALICE) -> bool:
    return budget.admit(who) is None


# The sliding window, on a clock the test moves


def test_the_window_admits_exactly_its_calls_and_frees_one_call_as_the_oldest_leaves() -> None:
    clock = Clock()
    budget = Budget(3, 10, clock)
    for moment in (0, 1, 2):
        clock.now = 1000 + moment
        assert admitted(budget)
    clock.now = 1005.5
    assert budget.admit(ALICE) == 5  # the call at 1000 leaves at 1010: 4.5 s rounded up
    clock.now = 1009.9
    assert budget.admit(ALICE) == 1  # 0.1 s left: whole seconds, at least 1
    clock.now = 1010
    assert admitted(budget)  # the oldest left: one call, not three
    assert budget.admit(ALICE) == 1  # the next oldest (1001) leaves at 1011
    clock.now = 1012
    assert admitted(budget) and admitted(budget)  # 1001 and 1002 (exactly 10 s old) left
    assert budget.admit(ALICE) == 8  # 1010, 1012 and 1012 are in; 1010 leaves at 1020
    usage = budget.describe()["credentials"][0]
    assert (usage["admitted"], usage["throttled"], usage["peak"]) == (6, 4, 3)
    assert (usage["first_admitted"], usage["last_admitted"]) == (1000, 1012)


def test_throttled_calls_do_not_count_so_retry_after_is_exact() -> None:
    clock = Clock()
    budget = Budget(1, 10, clock)
    assert admitted(budget)
    for _ in range(50):
        clock.now += 0.1
        assert budget.admit(ALICE) is not None
    clock.now = 1000 + 5
    wait = budget.admit(ALICE)
    assert wait == 5
    clock.now += wait
    assert admitted(budget)


def test_peak_is_the_most_calls_admitted_in_any_window() -> None:
    clock = Clock()
    budget = Budget(5, 10, clock)
    for moment in (0, 6, 12, 14, 15, 30):  # at most 12, 14, 15 (and 6) share a window
        clock.now = 1000 + moment
        assert admitted(budget)
    assert budget.describe()["credentials"][0]["peak"] == 4


def test_credentials_and_interfaces_have_budgets_of_their_own() -> None:
    budget = Budget(1, 10, Clock())
    others = [
        Credential("rest", "acme", "second-public"),
        Credential("rest", "globex", "acme-public"),
        Credential("gl", "acme", "acme-public"),
    ]
    assert admitted(budget) and not admitted(budget)
    assert all(admitted(budget, who) for who in others)
    assert all(not admitted(budget, who) for who in others)


def test_off_admits_everything_and_counts_nothing_and_setting_it_again_starts_afresh() -> None:
    budget = Budget(0, 10, Clock())
    assert all(admitted(budget) for _ in range(100))
    assert budget.describe()["credentials"] == []
    budget.set(1, 10)
    assert admitted(budget) and not admitted(budget)
    assert budget.throttled == 1
    budget.set(1, 10)
    assert budget.throttled == 0 and admitted(budget)


def test_a_soap_credential_is_read_from_the_envelope() -> None:
    envelope = (
        '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>'
        '<RunReportCount xmlns="http://connectwise.com"><credentials><CompanyId>ACME</CompanyId>'
        "<IntegratorLoginId>integrator</IntegratorLoginId><IntegratorPassword>secret</IntegratorPassword>"
        "</credentials></RunReportCount></soap:Body></soap:Envelope>"
    )
    assert soap_credential(envelope.encode()) == Credential("soap", "acme", "integrator")
    assert soap_credential(b"<not xml") == Credential("soap", "", "")


# Over HTTP: what a throttled request gets, on each interface


def site(sandbox: SandboxServer) -> str:
    return f"http://{sandbox.site_address}"


def set_budget(sandbox: SandboxServer, calls: int, window_seconds: float) -> dict[str, Any]:
    response = requests.post(
        f"{site(sandbox)}/_sandbox/budget",
        json={"calls": calls, "window_seconds": window_seconds},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def usage(sandbox: SandboxServer) -> dict[tuple[str, str, str], dict[str, Any]]:
    """GET /_sandbox/budget's counters by (interface, company, login)."""
    view = requests.get(f"{site(sandbox)}/_sandbox/budget", timeout=10).json()
    return {(c["interface"], c["company"], c["login"]): c for c in view["credentials"]}


def rest_get(
    sandbox: SandboxServer, user: str = "sandbox+sandbox-public", key: str = "sandbox-private"
) -> Any:
    token = base64.b64encode(f"{user}:{key}".encode()).decode()
    headers = {"Authorization": f"Basic {token}", "clientId": CLIENT_ID}
    return requests.get(site(sandbox) + BATCHES, headers=headers, timeout=10)


def gl_post(sandbox: SandboxServer, company: str = "sandbox", username: str = "accounting") -> Any:
    form = wire.login_fields(company, username, f"{company}-password")
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    return requests.post(
        f"{site(sandbox)}/{wire.PAGE_PATH}", data=urlencode(form), headers=headers, timeout=10
    )


def soap_post(sandbox: SandboxServer, company: str = "sandbox", login_id: str = "integrator") -> Any:
    envelope = (
        '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>'
        f'<GetReports xmlns="http://connectwise.com"><credentials><CompanyId>{company}</CompanyId>'
        f"<IntegratorLoginId>{login_id}</IntegratorLoginId>"
        f"<IntegratorPassword>{company}-integrator</IntegratorPassword></credentials>"
        "<includeFields>false</includeFields></GetReports></soap:Body></soap:Envelope>"
    )
    headers = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '"http://connectwise.com/GetReports"'}
    return requests.post(site(sandbox) + SOAP_PATH, data=envelope.encode(), headers=headers, timeout=10)


@pytest.fixture
def two_companies() -> Iterator[SandboxServer]:
    server = start_sandbox(seed=3, invoices=3, expenses=1, purchases=1, companies=["acme"])
    yield server
    server.stop()


def test_a_rest_call_over_budget_is_not_run_and_gets_the_documented_429(sandbox: SandboxServer) -> None:
    set_budget(sandbox, 2, LONG)
    assert [rest_get(sandbox).status_code for _ in range(2)] == [200, 200]
    calls_before = sum(sandbox.rest.calls.values())
    throttled = rest_get(sandbox)
    assert throttled.status_code == 429
    seconds = int(throttled.headers["Retry-After"])
    assert 1 <= seconds <= LONG
    assert throttled.headers["Content-Type"] == "application/json"
    assert throttled.json() == {
        "error": "ConnectWiseAPI",
        "message": f"Too many requests. Please try again in {seconds} seconds.",
    }
    assert sum(sandbox.rest.calls.values()) == calls_before  # not run
    counted = usage(sandbox)[("rest", "sandbox", "sandbox-public")]
    assert (counted["admitted"], counted["throttled"], counted["peak"]) == (2, 1, 2)
    state = requests.get(f"{site(sandbox)}/_sandbox/state", timeout=10).json()
    assert state["throttled"] == 1


def test_the_gl_page_and_soap_get_a_plain_429_with_retry_after(sandbox: SandboxServer) -> None:
    set_budget(sandbox, 1, LONG)
    assert gl_post(sandbox).status_code == 200 and soap_post(sandbox).status_code == 200
    gl_calls, soap_calls = sandbox.accounting.calls, sandbox.companies.default.soap.calls
    for throttled in (gl_post(sandbox), soap_post(sandbox)):
        assert throttled.status_code == 429
        assert throttled.headers["Content-Type"].startswith("text/plain")
        seconds = int(throttled.headers["Retry-After"])
        assert 1 <= seconds <= LONG and str(seconds) in throttled.text
    assert (sandbox.accounting.calls, sandbox.companies.default.soap.calls) == (gl_calls, soap_calls)
    counted = usage(sandbox)
    assert counted[("gl", "sandbox", "accounting")]["throttled"] == 1
    assert counted[("soap", "sandbox", "integrator")]["throttled"] == 1


def test_each_credential_and_company_has_its_own_budget(two_companies: SandboxServer) -> None:
    sandbox = two_companies
    set_budget(sandbox, 2, LONG)
    assert [rest_get(sandbox).status_code for _ in range(3)] == [200, 200, 429]
    # The company without case: the same credential, still throttled.
    assert rest_get(sandbox, "SANDBOX+sandbox-public").status_code == 429
    # Another company, another credential of the same company (its key is wrong: it is run and
    # refused, not throttled), the same company's GL and SOAP logins: each has its own room.
    assert rest_get(sandbox, "acme+acme-public", "acme-private").status_code == 200
    assert rest_get(sandbox, "sandbox+second-public", "wrong").status_code == 401
    assert gl_post(sandbox).status_code == 200 and gl_post(sandbox, username="clerk").status_code == 200
    assert soap_post(sandbox).status_code == 200 and soap_post(sandbox, "acme").status_code == 200
    counted = usage(sandbox)
    assert counted[("rest", "sandbox", "sandbox-public")] | {"first_admitted": 0, "last_admitted": 0} == {
        "interface": "rest",
        "company": "sandbox",
        "login": "sandbox-public",
        "admitted": 2,
        "throttled": 2,
        "first_admitted": 0,
        "last_admitted": 0,
        "peak": 2,
    }
    for other in [
        ("rest", "acme", "acme-public"),
        ("rest", "sandbox", "second-public"),
        ("gl", "sandbox", "accounting"),
        ("gl", "sandbox", "clerk"),
        ("soap", "sandbox", "integrator"),
        ("soap", "acme", "integrator"),
    ]:
        assert (counted[other]["admitted"], counted[other]["throttled"]) == (1, 0), other
    shown = requests.get(f"{site(sandbox)}/_sandbox/budget", timeout=10).text
    secrets = [
        "sandbox-private",
        "acme-private",
        "wrong",
        "sandbox-password",
        "sandbox-integrator",
        CLIENT_ID,
    ]
    assert not [secret for secret in secrets if secret in shown]


def test_the_codebase_lookup_is_not_counted(sandbox: SandboxServer) -> None:
    set_budget(sandbox, 1, LONG)
    for _ in range(3):
        assert requests.get(f"{site(sandbox)}/login/companyinfo/sandbox", timeout=10).status_code == 200
    assert usage(sandbox) == {}


def test_faults_meet_only_the_calls_the_budget_admits(sandbox: SandboxServer) -> None:
    set_budget(sandbox, 1, LONG)
    faults = f"{site(sandbox)}/_sandbox/faults"
    requests.post(faults, json={"statuses": [503], "retry_after": 7}, timeout=10).raise_for_status()
    first = rest_get(sandbox)
    assert (first.status_code, first.headers["Retry-After"]) == (503, "7")  # admitted, then the fault
    requests.post(faults, json={"statuses": [500]}, timeout=10).raise_for_status()
    assert rest_get(sandbox).status_code == 429  # over budget: the fault is left for the next call
    assert gl_post(sandbox).status_code == 500
    # The old server-wide rate fault is gone: the budget replaces it.
    refused = requests.post(faults, json={"max_per_second": 5}, timeout=10)
    assert refused.status_code == 400 and "max_per_second" in refused.text


def test_many_threads_at_once_never_get_more_than_the_budget(sandbox: SandboxServer) -> None:
    set_budget(sandbox, 10, LONG)
    start, statuses = threading.Barrier(40), []

    def call() -> None:
        start.wait()
        statuses.append(rest_get(sandbox).status_code)

    threads = [threading.Thread(target=call) for _ in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [200] * 10 + [429] * 30
    counted = usage(sandbox)[("rest", "sandbox", "sandbox-public")]
    assert (counted["admitted"], counted["throttled"], counted["peak"]) == (10, 30, 10)


# The control API


def test_the_budget_is_set_read_and_reset_through_the_control_api(sandbox: SandboxServer) -> None:
    assert requests.get(f"{site(sandbox)}/_sandbox/budget", timeout=10).json()["calls"] == 0  # off
    assert set_budget(sandbox, 1, 30)["window_seconds"] == 30
    rest_get(sandbox), rest_get(sandbox)
    assert usage(sandbox)[("rest", "sandbox", "sandbox-public")]["throttled"] == 1
    view = set_budget(sandbox, 5, 1.5)  # again: the counters start afresh
    assert (view["calls"], view["window_seconds"], view["throttled"], view["credentials"]) == (5, 1.5, 0, [])
    assert rest_get(sandbox).status_code == 200
    set_budget(sandbox, 0, 30)  # off
    assert all(rest_get(sandbox).status_code == 200 for _ in range(3)) and usage(sandbox) == {}
    default = requests.post(f"{site(sandbox)}/_sandbox/budget", json={"calls": 9}, timeout=10).json()
    assert default["window_seconds"] == 60  # ConnectWise's minute


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"calls": -1, "window_seconds": 60}, "calls -1"),
        ({"calls": 1.5, "window_seconds": 60}, "calls 1.5"),
        ({"calls": True, "window_seconds": 60}, "calls True"),
        ({"calls": "100", "window_seconds": 60}, "calls '100'"),
        ({"calls": 10, "window_seconds": 0}, "window_seconds 0"),
        ({"calls": 10, "window_seconds": -5}, "window_seconds -5"),
        ({"calls": 10, "window_seconds": "60"}, "window_seconds '60'"),
        ({"calls": 10, "window_seconds": 86400}, "window_seconds 86400"),
        ({"calls": 10, "window_seconds": 60, "per": "ip"}, "'per'"),
        ({"window_seconds": 60}, "calls"),
        ([100, 60], "JSON object"),
    ],
)
def test_a_bad_budget_is_a_400_naming_it(sandbox: SandboxServer, body: Any, named: str) -> None:
    set_budget(sandbox, 3, 30)
    response = requests.post(f"{site(sandbox)}/_sandbox/budget", json=body, timeout=10)
    assert response.status_code == 400 and named in response.text
    view = requests.get(f"{site(sandbox)}/_sandbox/budget", timeout=10).json()
    assert (view["calls"], view["window_seconds"]) == (3, 30)  # unchanged


def test_a_malformed_budget_body_is_a_400(sandbox: SandboxServer) -> None:
    response = requests.post(f"{site(sandbox)}/_sandbox/budget", data=b"{calls", timeout=10)
    assert response.status_code == 400


def test_the_constructor_takes_a_budget_and_refuses_a_bad_one() -> None:
    server = start_sandbox(budget_calls=1, budget_window_seconds=LONG, invoices=2)
    try:
        assert [rest_get(server).status_code for _ in range(2)] == [200, 429]
    finally:
        server.stop()
    with pytest.raises(ValueError, match="window_seconds 0"):
        SandboxServer(budget_calls=5, budget_window_seconds=0)


def test_the_harness_starts_a_budgeted_sandbox_process() -> None:
    with sandbox_process(seed=2, invoices=2, budget_calls=1, budget_window_seconds=LONG) as address:
        view = requests.get(f"http://{address}/_sandbox/budget", timeout=10).json()
        assert (view["calls"], view["window_seconds"]) == (1, LONG)
        login = SANDBOX_LOGIN | {"site": address, "use_ssl": False}
        client = AccountingClient(Connection.model_validate(login), retries=0)
        client.unposted_entries()
        with pytest.raises(TransportError) as caught:
            client.unposted_entries()
        assert caught.value.status == 429


def test_the_command_line_refuses_a_bad_budget(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        sandbox_main(["--budget-calls", "5", "--budget-window-seconds", "0"])
    assert caught.value.code == 2 and "window_seconds 0" in capsys.readouterr().err


# Clients waiting out the 429


def test_urllib3_retry_honours_retry_after_and_gets_through(sandbox: SandboxServer) -> None:
    set_budget(sandbox, 1, SHORT)
    retry = Retry(total=3, status_forcelist=[429], respect_retry_after_header=True, backoff_factor=0)
    with requests.Session() as session:
        session.mount("http://", HTTPAdapter(max_retries=retry))
        session.auth = ("sandbox+sandbox-public", "sandbox-private")
        session.headers["clientId"] = CLIENT_ID
        statuses = [session.get(site(sandbox) + BATCHES, timeout=10).status_code for _ in range(2)]
    assert statuses == [200, 200]
    counted = usage(sandbox)[("rest", "sandbox", "sandbox-public")]
    assert counted["admitted"] == 2 and counted["throttled"] >= 1 and counted["peak"] == 1


@pytest.mark.slow  # the client is generated once per session
def test_the_generated_client_reads_the_429(api: Api, sandbox: SandboxServer) -> None:
    set_budget(sandbox, 1, LONG)
    assert api("accounting_batches.get_finance_accounting_batches").status_code == 200
    throttled = api("accounting_batches.get_finance_accounting_batches")
    assert throttled.status_code == 429 and throttled.parsed is None
    body = json.loads(throttled.content)
    assert body["error"] == "ConnectWiseAPI"
    assert (
        body["message"]
        == f"Too many requests. Please try again in {throttled.headers['Retry-After']} seconds."
    )


def test_the_rest_client_waits_out_the_429(sandbox: SandboxServer) -> None:
    set_budget(sandbox, 1, SHORT)
    api = RestApi(rest_connection(sandbox), retries=3, backoff=0)
    first, second = api.get("/finance/accounting/batches/count"), api.get("/finance/accounting/batches/count")
    assert first == second == {"count": 0}
    counted = usage(sandbox)[("rest", "sandbox", "sandbox-public")]
    assert counted["admitted"] == 2 and counted["throttled"] >= 1


def test_the_accounting_client_waits_out_the_429(sandbox: SandboxServer) -> None:
    set_budget(sandbox, 1, SHORT)
    client = AccountingClient(sandbox_connection(sandbox), retries=3, backoff=0)
    first, second = client.unposted_entries(), client.unposted_entries()
    assert first == second and first
    counted = usage(sandbox)[("gl", "sandbox", "accounting")]
    assert counted["admitted"] == 2 and counted["throttled"] >= 1


def test_the_soap_client_waits_out_the_429(sandbox: SandboxServer) -> None:
    set_budget(sandbox, 1, SHORT)
    client = SoapClient(soap_login(sandbox), retries=3, backoff=0)
    first, second = client.run_report_count("Invoices"), client.run_report_count("Invoices")
    assert first == second == len(sandbox.accounting.site.invoices)
    counted = usage(sandbox)[("soap", "sandbox", "integrator")]
    assert counted["admitted"] == 2 and counted["throttled"] >= 1
