"""ConnectWise company ids as the sandbox reads them, and what each company's data is derived from.

* A company id is 1 to 30 of `A-Z a-z 0-9 _`, matched without case as ConnectWise matches them
  (`Acme` and `ACME` are one company). Only ASCII letters fold: no other text can name a company.
* The default company `sandbox` keeps the sandbox's original data: the server's seed and invoice
  numbers `CW-<id>` (e.g. CW-30001).
* Every other company has a marker: the first 7 characters of the base32 SHA-256 of its
  lower-case id, A-Z and 2-7 only (e.g. `acme` -> `QIVTHLM`). Its invoice numbers are
  `<marker>-<id>` (`invoice_prefix`) and its customers' and vendors' names end with ` <marker>`, so
  every document the connector writes from its data (a GL batch, a record download, a report, a
  payment result) names it. An invoice number stays within ConnectWise's 15 characters
  (Invoice.invoiceNumber, "Max length: 15"): 8 for the prefix, 7 digits for up to a million
  invoices. Two companies whose markers clash cannot both be added (the registry refuses the second).
* A company's seed, unless given, is derived from the server's seed and its lower-case id with
  SHA-256 (never Python's salted `hash()`), so it is the same in every process and every run.
"""

import base64
import hashlib
import re

DEFAULT_COMPANY = "sandbox"
COMPANY_ID = re.compile(r"[A-Za-z0-9_]{1,30}")
MARKER_LENGTH = 7


def company_key(company: str) -> str | None:
    """The id's case-free form, or None for text that is not a company id."""
    return company.lower() if COMPANY_ID.fullmatch(company) else None


def same_company(given: str, company: str) -> bool:
    key = company_key(given)
    return key is not None and key == company.lower()


def check_company_id(company: object) -> str:
    """`company` if it is a company id, else a ValueError saying what one is."""
    if not isinstance(company, str) or not COMPANY_ID.fullmatch(company):
        raise ValueError(f"company {company!r} is not a company id: 1 to 30 of A-Z, a-z, 0-9 and _")
    return company


def company_marker(company: str) -> str:
    """The marker in a company's invoice numbers and names; "" for the default company."""
    key = check_company_id(company).lower()
    if key == DEFAULT_COMPANY:
        return ""
    return base64.b32encode(hashlib.sha256(key.encode()).digest()).decode()[:MARKER_LENGTH]


def invoice_prefix(company: str) -> str:
    """What every invoice number of `company` starts with: `CW-` for `sandbox`, else `<marker>-`."""
    return f"{company_marker(company) or 'CW'}-"


def company_seed(company: str, server_seed: int) -> int:
    """The seed a company's data is generated from unless one is given: the server's own seed for
    the default company, else one derived stably from both."""
    key = check_company_id(company).lower()
    if key == DEFAULT_COMPANY:
        return server_seed
    digest = hashlib.sha256(f"{server_seed}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big")
