"""The REST lists under attack, through the generated client: orderBy honoured and stable across
pages, fields, paging edges, and no condition, orderBy, fields, page or pageSize that can drop the
connection or give a 500 (each malformed one is a 400 with ConnectWise's error body, naming it)."""

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sandbox.server import SandboxServer
from tests.generated_client import Api, exact
from tests.rest_contract import Contract

pytestmark = pytest.mark.slow  # the generated client, once per session

INVOICES = "/finance/invoices"
PARAMETERS = ("conditions", "orderBy", "fields", "page", "pageSize", "pageId", "columns")


def refused(response: httpx.Response, parameter: str) -> str:
    """The 400's message, after checking it is ConnectWise's error body naming the parameter."""
    assert response.status_code == 400, response.text[:300]
    body = exact(response)
    assert body["code"] == "InvalidObject" and isinstance(body["errors"], list)
    assert body["message"].startswith(f"{parameter}: ") and body["errors"][0]["field"] == parameter
    return str(body["message"])


def forgive_malformed_requests(contract: Contract) -> None:
    """These tests send what the spec's parameter types forbid on purpose: only the requests may
    be outside the contract, never a reply."""
    contract.violations[:] = [v for v in contract.violations if not v.startswith("request GET")]


def every_page(api: Api, path: str, size: int, start: int = 1, **params: Any) -> list[dict[str, Any]]:
    rows, number = [], start
    while page := exact(api.get(path, page=number, pageSize=size, **params)):
        rows.extend(page)
        number += 1
    return rows


@pytest.mark.parametrize(
    ("order_by", "key"),
    [
        ("total desc", lambda r: (-r["total"], r["id"])),
        ("company/name asc, total", lambda r: (r["company"]["name"].casefold(), r["total"], r["id"])),
        ("COMPANY/NAME desc,id desc", lambda r: (_desc(r["company"]["name"].casefold()), -r["id"])),
        ("lastUpdated desc", lambda r: (_desc(r["_info"]["lastUpdated"]), r["id"])),
        ("_info/lastUpdated desc", lambda r: (_desc(r["_info"]["lastUpdated"]), r["id"])),
        ("type", lambda r: r["id"]),  # every invoice is Standard: ties broken by id
    ],
)
def test_order_by_is_honoured_and_stable_across_pages(api: Api, order_by: str, key: Any) -> None:
    everything = exact(api.get(INVOICES, pageSize=1000))
    paged = every_page(api, INVOICES, 5, orderBy=order_by)
    assert [r["id"] for r in paged] == [r["id"] for r in sorted(everything, key=key)]
    typed = api("invoices.get_finance_invoices", order_by=order_by, page=2, page_size=5).parsed
    assert [r.id for r in typed] == [r["id"] for r in paged[5:10]]


class _desc:
    """Reverses the order of one key of a tuple."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def __lt__(self, other: "_desc") -> bool:
        return bool(self.value > other.value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _desc) and self.value == other.value


def test_order_by_a_nested_field_with_nulls_puts_them_first_ascending_and_last_descending(api: Api) -> None:
    up = every_page(api, INVOICES, 3, orderBy="agreement/name asc")
    down = every_page(api, INVOICES, 3, orderBy="agreement/name desc")
    nulls = [r["id"] for r in up if "agreement" not in r]
    assert nulls and len(nulls) < len(up)  # the seed gives some invoices no agreement
    assert [r["id"] for r in up[: len(nulls)]] == sorted(nulls)
    assert [r["id"] for r in down[-len(nulls) :]] == sorted(nulls)
    names = [r["agreement"]["name"].casefold() for r in up[len(nulls) :]]
    assert names == sorted(names) and [
        r["agreement"]["name"].casefold() for r in down[: -len(nulls)]
    ] == sorted(names, reverse=True)


def test_a_record_updated_between_two_pages_comes_later_under_order_by_last_updated(
    api: Api, sandbox: SandboxServer, client: Any
) -> None:
    """As on a database: the updated record is read again on a later page, and the record that
    slid into its place on the first page is not seen by this walk (why the connector pages by
    watermark, not by page number)."""
    order = {"orderBy": "lastUpdated asc"}
    first = exact(api.get(INVOICES, page=1, pageSize=4, **order))
    moved = first[0]
    client.update_invoice_payment(moved["invoiceNumber"], Decimal("5.00"), datetime.now(UTC))
    later = every_page(api, INVOICES, 4, start=2, **order)
    assert later[-1]["id"] == moved["id"] and later[-1]["payments"] == Decimal("5.00")
    assert later[-1]["_info"]["lastUpdated"] > moved["_info"]["lastUpdated"]
    now = exact(api.get(INVOICES, pageSize=1000, **order))
    assert [r["id"] for r in now[4:]] == [r["id"] for r in later]
    unseen = {r["id"] for r in now} - {r["id"] for r in first + later}
    assert unseen == {now[3]["id"]}


def test_fields_give_a_partial_response(api: Api) -> None:
    [one] = exact(
        api.get(INVOICES, pageSize=1, fields="id, company/identifier,lastUpdated,agreement/name,total")
    )
    assert set(one) <= {"id", "company", "_info", "agreement", "total"} and set(one["company"]) == {
        "identifier"
    }
    assert set(one["_info"]) == {"lastUpdated"} and isinstance(one["total"], Decimal)
    single = exact(api.get(f"{INVOICES}/{one['id']}", fields="invoiceNumber"))
    assert list(single) == ["invoiceNumber"]
    message = refused(api.get(INVOICES, fields="id,noSuchField"), "fields")
    assert "noSuchField" in message
    refused(api.get(INVOICES, fields="id,company/nope"), "fields")
    refused(api.get(INVOICES, fields="id;drop"), "fields")


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"pageSize": "0"}, "pageSize"),
        ({"pageSize": "-1"}, "pageSize"),
        ({"pageSize": "x"}, "pageSize"),
        ({"pageSize": "9" * 5000}, "pageSize"),
        ({"page": "0"}, "page"),
        ({"page": "x"}, "page"),
        ({"page": "1.5"}, "page"),
        ({"orderBy": "nosuch asc"}, "orderBy"),
        ({"orderBy": "total sideways"}, "orderBy"),
        ({"orderBy": "company desc"}, "orderBy"),
        ({"orderBy": "total asc,"}, "orderBy"),
        ({"orderBy": "total; drop"}, "orderBy"),
        ({"childConditions": "detail/id = 1"}, "childConditions"),
    ],
)
def test_malformed_paging_and_ordering_are_400s_naming_the_parameter(
    api: Api, rest_contract: Contract, params: dict[str, str], parameter: str
) -> None:
    refused(api.get(INVOICES, **params), parameter)
    forgive_malformed_requests(rest_contract)


def test_forward_only_refuses_order_by_and_a_malformed_page_id(api: Api, rest_contract: Contract) -> None:
    forward = {"pagination-type": "forward-only"}
    refused(api.get(INVOICES, headers=forward, orderBy="total"), "orderBy")
    refused(api.get(INVOICES, headers=forward, pageId="x"), "pageId")
    refused(api.get("/system/reports/Invoices", headers=forward), "pagination-type")
    forgive_malformed_requests(rest_contract)


def test_page_size_is_capped_and_a_page_beyond_the_last_is_empty(api: Api, sandbox: SandboxServer) -> None:
    total = len(sandbox.accounting.site.invoices)
    assert len(exact(api.get(INVOICES, pageSize=5000))) == total  # capped at 1000, all of them here
    beyond = api.get(INVOICES, page=99, pageSize=5)
    assert beyond.status_code == 200 and exact(beyond) == []
    links = beyond.headers["Link"]
    last = -(-total // 5)
    assert f'page={last}>; rel="last"' in links and 'rel="next"' not in links
    assert f'page={last}>; rel="prev"' in links


@pytest.mark.parametrize(
    "condition",
    [
        'invoiceNumber = "CW-30001',
        'invoiceNumber = CW-30001"',
        "date > [2026-08-01T00:00:00Z",
        "date > 2026-08-01T00:00:00Z]",
        "date > [2026-08-01]",  # no zone
        "date > [yesterday]",
        "date > 5",
        'total = "ten"',
        "invoiceNumber = 5",
        "company = 1",
        "total ~ 5",
        "total == 5",
        "total LIKE 5",
        "total in 5",
        "total in ()",
        "total in (1,",
        "total = null and",
        "total > null",
        "not total = 1",
        "(total = 1",
        "total = 1)",
        "(" * 60 + "total = 1" + ")" * 60,
        "total = 1 or or total = 2",
        "lastUpdated > [2026-01-01T00:00:00Z] and nosuch = 1",
        "company/nope = 1",
        "company//name = 1",
        "total = 1e5",
        "total = 0x10",
        "'single' = 1",
        "total = 1; DROP TABLE invoices",
        "\x00",
    ],
)
def test_hostile_conditions_are_400s_with_the_error_body(
    api: Api, rest_contract: Contract, condition: str
) -> None:
    refused(api.get(INVOICES, conditions=condition), "conditions")
    refused(api.get(f"{INVOICES}/count", conditions=condition), "conditions")
    forgive_malformed_requests(rest_contract)


def test_conditions_on_last_updated_and_other_fields_answer(api: Api) -> None:
    """The request that used to close the connection (an unknown field raised in the server)."""
    everything = exact(api.get(INVOICES, pageSize=1000))
    middle = sorted(r["_info"]["lastUpdated"] for r in everything)[len(everything) // 2]
    for field in ("lastUpdated", "_info/lastUpdated", "_INFO/LASTUPDATED"):
        condition = f'{field} >= [{middle}] AND total > 0 and company/identifier like "C*"'
        chosen = exact(api.get(INVOICES, pageSize=1000, conditions=condition))
        assert [r["id"] for r in chosen] == [
            r["id"] for r in everything if r["_info"]["lastUpdated"] >= middle and r["total"] > 0
        ]
    huge = "9" * 5000
    assert exact(api.get(INVOICES, conditions=f"total < {huge}")) == exact(api.get(INVOICES))
    bracket = exact(api.get("/company/companies", conditions='name = "[[]none]" or name contains "[[]"'))
    assert bracket == []


hostile_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=60)
conditionish = st.lists(
    st.sampled_from(
        ['total', 'company/name', 'lastUpdated', '=', '!=', '<', '>=', 'like', 'contains', 'in', 'not', 'and',
         'OR', '(', ')', ',', '"x"', '"a*"', '[2026-08-01T00:00:00Z]', '[', ']', '5', '-1.5', 'True', 'null',
         '"', "[[]"]
    ),
    max_size=12,
).map(" ".join)  # fmt: skip


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    parameter=st.sampled_from(PARAMETERS),
    value=st.one_of(hostile_text, conditionish),
    path=st.sampled_from([INVOICES, f"{INVOICES}/count", "/company/companies", "/system/reports/Invoices"]),
    forward=st.booleans(),
)
def test_no_query_drops_the_connection_or_gives_a_500(
    api: Api, rest_contract: Contract, parameter: str, value: str, path: str, forward: bool
) -> None:
    headers = {"pagination-type": "forward-only"} if forward else {}
    response = api.get(path, headers=headers, **{parameter: value})  # a dropped connection raises here
    assert response.status_code in (200, 400), response.text[:300]
    if response.status_code == 400:
        body = exact(response)
        assert set(body) == {"code", "message", "errors"} and body["errors"] and body["message"]
    forgive_malformed_requests(rest_contract)
