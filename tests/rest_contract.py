"""Validation of REST exchanges against ../shared/reference/connectwise_openapi_finance_subset.json
with openapi-core: requests against the operations' parameters and request bodies, replies
against their response schemas, error replies against ErrorResponseMessage.

openapi-core deserialises only media types it knows as JSON, so the subset's response key
`application/vnd.connectwise.com+json; version=2025.1` is read here as `application/json`
(the sandbox's exact Content-Type is checked by its own test)."""

import copy
import json
from dataclasses import dataclass, field
from functools import cache
from typing import Any

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


@cache
def openapi() -> OpenAPI:
    document = copy.deepcopy(spec())
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
        try:
            openapi().validate_response(request, WerkzeugOpenAPIResponse(response))
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
