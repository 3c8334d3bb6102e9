"""Validation of REST exchanges against ../shared/reference/connectwise_openapi_finance_subset.json
with openapi-core: requests against the operations' parameters and request bodies, replies
against their response schemas, error replies against ErrorResponseMessage.

openapi-core deserialises only media types it knows as JSON, so the subset's response key
`application/vnd.connectwise.com+json; version=2025.1` is read here as `application/json`
(the sandbox's exact Content-Type is checked by its own test).

Two readings of the subset follow ConnectWise rather than the letter of the file
(`as_served`, also used to generate the typed client in tests/integration/test_rest_generated_client.py):
* a report's `row_values` items are `{"type": "object"}` in the subset: the spec's rendering of
  C#'s `object` (any JSON value), while ConnectWise sends the cells as numbers, text, booleans
  and nulls; they are read as any value;
* a partial response (`fields`) holds only the fields asked for, so a reply to a request with
  `fields` is checked without the schemas' `required` lists."""

import copy
import json
from dataclasses import dataclass, field
from functools import cache
from typing import Any
from urllib.parse import parse_qsl

from openapi_core import OpenAPI
from openapi_core.contrib.werkzeug import WerkzeugOpenAPIRequest, WerkzeugOpenAPIResponse
from openapi_schema_validator import OAS30Validator
from referencing import Registry, Resource
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Response

from connectwise import jsonmoney
from sandbox.rest import API_PREFIX, Reply
from tests.conftest import ROOT

SPEC_PATH = ROOT.parent / "shared" / "reference" / "connectwise_openapi_finance_subset.json"
SPEC_HOST = "http://na.myconnectwise.net"  # the subset's server


@cache
def spec() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(SPEC_PATH.read_text())
    return document


def as_served(document: dict[str, Any]) -> dict[str, Any]:
    """The subset with report cells read as any JSON value (see the module's docstring)."""
    document = copy.deepcopy(document)
    row_values = document["components"]["schemas"]["ReportDataResponse"]["properties"]["row_values"]
    row_values["items"]["items"] = {"nullable": True}
    return document


def without_required(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: without_required(v) for k, v in value.items() if k != "required" or not isinstance(v, list)
        }
    if isinstance(value, list):
        return [without_required(v) for v in value]
    return value


@cache
def openapi(partial: bool = False) -> OpenAPI:
    document = as_served(spec())
    if partial:
        document = without_required(document)
    for operations in document["paths"].values():
        for operation in operations.values():
            for response in operation.get("responses", {}).values():
                if "content" in response:
                    [media] = response["content"].values()
                    response["content"] = {"application/json": media}
    return OpenAPI.from_dict(document)


@cache
def error_validator() -> OAS30Validator:
    registry: Registry[Any] = Registry().with_resource("spec", Resource.opaque(spec()))
    return OAS30Validator({"$ref": "spec#/components/schemas/ErrorResponseMessage"}, registry=registry)


@dataclass
class Contract:
    """Every exchange checked, and the violations found."""

    checked: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)

    def check(self, method: str, target: str, headers: dict[str, str], body: bytes, reply: Reply) -> None:
        path, _, query = target.partition("?")
        if not path.lower().startswith(API_PREFIX.lower()):
            return  # /login/companyinfo is not part of the API
        request = WerkzeugOpenAPIRequest(
            EnvironBuilder(
                method=method,
                base_url=SPEC_HOST,
                path=path,
                query_string=query,
                headers={k: v for k, v in headers.items() if k != "host"},
                content_type=headers.get("content-type"),
                data=body,
            ).get_request()
        )
        where = f"{method} {path}"
        self.checked.append(where)
        try:
            openapi().validate_request(request)
        except Exception as exc:
            self.violations.append(f"request {where}: {_explain(exc)}")
        if reply.status >= 400:
            for error in error_validator().iter_errors(reply.body):
                self.violations.append(f"error reply {where}: {error.message}")
            return
        response = Response(jsonmoney.dumps(reply.body), status=reply.status, content_type="application/json")
        partial = any(name == "fields" and value for name, value in parse_qsl(query))
        try:
            openapi(partial).validate_response(request, WerkzeugOpenAPIResponse(response))
        except Exception as exc:
            self.violations.append(f"reply {where}: {_explain(exc)}")


def _explain(exc: Exception) -> str:
    details = [str(exc)]
    cause = exc.__cause__
    while cause is not None:
        details.append(str(cause))
        for inner in getattr(cause, "schema_errors", []) or []:
            details.append(f"{list(inner.path)}: {inner.message}")
        cause = cause.__cause__
    return " | ".join(d[:300] for d in details)[:1500]
