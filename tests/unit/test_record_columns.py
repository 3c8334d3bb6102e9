"""The REST record downloads' columns: generated from the OpenAPI subset and kept up to date."""

from connectwise.rest.records import columns
from scripts import record_columns


def test_the_column_mapping_and_its_doc_match_the_openapi_subset() -> None:
    assert record_columns.main(["--check"]) == 0


def test_references_are_flattened_and_site_links_left_out() -> None:
    invoices = columns("invoices")
    assert invoices[:3] == ("id", "invoiceNumber", "type")
    assert {"company.id", "company.identifier", "company.name", "total", "_info.lastUpdated"} <= set(invoices)
    assert not [name for name in invoices if name.endswith("_href") or name == "company._info"]
