"""The bundled WSDLs: published ones as published, authored ones as their generator writes them,
and nothing ever fetched from the network."""

from pathlib import Path

import pytest

from connectwise.errors import ConnectWiseError
from connectwise.soap.client import ENTITIES, REPORTING, WSDL_DIR, _document, _NoNetwork
from scripts.author_wsdl import APIS, authored_path, wsdl

PUBLISHED = Path(__file__).resolve().parents[3] / "shared" / "reference" / "wsdl"


@pytest.mark.parametrize(
    ("bundled", "published"),
    [("ReportingAPI_1.5.wsdl", "ReportingAPI_1.wsdl"), ("CompanyAPI_1.5.wsdl", "CompanyAPI_1.wsdl")],
)
def test_published_wsdls_are_bundled_as_they_are(bundled: str, published: str) -> None:
    assert (WSDL_DIR / bundled).read_bytes() == (PUBLISHED / published).read_bytes()


@pytest.mark.parametrize("api", sorted(APIS))
def test_authored_wsdls_are_marked_and_match_their_generator(api: str) -> None:
    text = authored_path(api).read_text(encoding="utf-8")
    assert text == wsdl(api), "run `python -m scripts.author_wsdl` after editing it"
    assert "AUTHORED for this connector, not published by ConnectWise" in text


def test_every_api_the_client_uses_has_a_parsed_wsdl() -> None:
    for api in [REPORTING, *(e.api for e in ENTITIES.values())]:
        assert f"{{http://connectwise.com}}{api.name}Soap" in _document(api.wsdl).bindings


def test_nothing_is_fetched_over_the_network() -> None:
    with pytest.raises(ConnectWiseError, match="nothing is fetched"):
        _NoNetwork().load("http://127.0.0.1:9/ReportingAPI.asmx?wsdl")
