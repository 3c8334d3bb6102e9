"""The ConnectWise companies one sandbox serves, each with its own seeded data and logins.

A company's logins follow the default company's pattern, spelled with its id as it was added:
Accounting Interface company C, username `accounting`, password `C-password`; integrator
`integrator`, password `C-integrator`; REST company C, keys `C-public` / `C-private`, the one
registered clientId. Its data is generated from its own seed and sizes (sandbox/company_ids.py
says how seeds, invoice numbers and names are derived) on its first call, not when it is added:
adding a thousand companies costs a thousand small records.
"""

import threading
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, TypeGuard

from sandbox.accounting import AccountingInterface, Credentials
from sandbox.company_ids import (
    DEFAULT_COMPANY,
    check_company_id,
    company_key,
    company_marker,
    company_seed,
    invoice_prefix,
)
from sandbox.data import generate
from sandbox.rest import RestApi, RestCredentials
from sandbox.soap import IntegratorCredentials, SoapSite

MAX_RECORDS = 1_000_000  # of each kind: invoice numbers stay within ConnectWise's 15 characters


@dataclass(frozen=True)
class Sizes:
    invoices: int = 40
    expenses: int = 10
    purchases: int = 8


DEFAULT_SIZES = Sizes()


@dataclass(frozen=True)
class CompanySpec:
    """What a company's data is made from."""

    company: str  # its id, as it was first added
    seed: int
    sizes: Sizes

    def describe(self) -> dict[str, Any]:
        prefix = invoice_prefix(self.company)
        return {"company": self.company, "seed": self.seed, **asdict(self.sizes), "invoice_prefix": prefix}


class CompanyConflict(Exception):
    """The company exists with other parameters, or another company has its marker."""


def accounting_credentials(company: str) -> Credentials:
    return Credentials(company, "accounting", f"{company}-password")


def integrator_credentials(company: str) -> IntegratorCredentials:
    return IntegratorCredentials(company, "integrator", f"{company}-integrator")


def rest_credentials(company: str) -> RestCredentials:
    return RestCredentials(company, f"{company}-public", f"{company}-private")


@dataclass
class _State:
    accounting: AccountingInterface
    rest: RestApi
    soap: SoapSite


class SandboxCompany:
    """One company: its spec, and its state on all three interfaces, made on first use."""

    def __init__(self, spec: CompanySpec, second_payment: Callable[[], bool]) -> None:
        self.spec = spec
        self._second_payment = second_payment
        self._state: _State | None = None
        self._building = threading.Lock()

    @property
    def built(self) -> bool:
        return self._state is not None

    @property
    def accounting(self) -> AccountingInterface:
        return self.build().accounting

    @property
    def rest(self) -> RestApi:
        return self.build().rest

    @property
    def soap(self) -> SoapSite:
        return self.build().soap

    def calls(self) -> dict[str, int]:
        """ConnectWise calls answered with this company's data, by interface."""
        state = self._state
        if state is None:
            return {"gl": 0, "soap": 0, "rest": 0}
        return {
            "gl": state.accounting.calls,
            "soap": state.soap.calls,
            "rest": sum(state.rest.calls.values()),
        }

    def build(self) -> _State:
        """Its state, generated on the first call."""
        state = self._state
        if state is None:
            with self._building:  # one state per company, however many first calls race
                state = self._state
                if state is None:
                    state = self._state = self._generate()
        return state

    def _generate(self) -> _State:
        spec, company = self.spec, self.spec.company
        site = generate(spec.seed, **asdict(spec.sizes), marker=company_marker(company))
        accounting = AccountingInterface(site, accounting_credentials(company))
        rest = RestApi(accounting, rest_credentials(company))
        rest.second_payment = self._second_payment
        return _State(accounting, rest, SoapSite(site, integrator_credentials(company), accounting.lock))


class Companies:
    """The sandbox's companies by id (without case). `sandbox` is always there, made at once."""

    def __init__(
        self, seed: int = 1, sizes: Sizes = DEFAULT_SIZES, second_payment: Callable[[], bool] = lambda: False
    ) -> None:
        self.seed, self.sizes = seed, sizes
        self._second_payment = second_payment
        self._by_key: dict[str, SandboxCompany] = {}
        self._markers: dict[str, str] = {}  # marker -> the company id that has it
        self._lock = threading.Lock()
        self.default, _ = self.add(DEFAULT_COMPANY)
        self.default.build()  # at once: every test and run calls it

    def add(
        self, company: str, seed: int | None = None, sizes: Mapping[str, Any] | None = None
    ) -> tuple[SandboxCompany, bool]:
        """The company, and whether it is new. Adding it again with the same parameters changes
        nothing; with others it is a CompanyConflict. Bad parameters are a ValueError naming them;
        parameters left out are the server's (the seed derived from it)."""
        spec = self._spec(company, seed, sizes or {})
        key, marker = company.lower(), company_marker(company)
        with self._lock:
            existing = self._by_key.get(key)
            if existing is not None:
                had, asked = existing.spec.describe(), spec.describe()
                differ = [name for name in ("seed", *asdict(spec.sizes)) if had[name] != asked[name]]
                if differ:
                    raise CompanyConflict(
                        f"company {existing.spec.company!r} exists with "
                        + ", ".join(f"{name} {had[name]} (asked for {asked[name]})" for name in differ)
                    )
                return existing, False
            if marker in self._markers:
                raise CompanyConflict(
                    f"company {company!r} has the invoice prefix {marker}- of company "
                    f"{self._markers[marker]!r}; choose another id"
                )
            added = self._by_key[key] = SandboxCompany(spec, self._second_payment)
            if marker:
                self._markers[marker] = company
            return added, True

    def _spec(self, company: str, seed: object, sizes: Mapping[str, Any]) -> CompanySpec:
        check_company_id(company)
        unknown = sorted(set(sizes) - {f.name for f in fields(Sizes)})
        if unknown:
            raise ValueError(f"unknown company parameter {unknown[0]!r}")
        for name, count in sizes.items():
            if not _is_int(count) or not 0 <= count <= MAX_RECORDS:
                raise ValueError(f"{name} {count!r} is not a whole number from 0 to {MAX_RECORDS}")
        if seed is None:
            seed = company_seed(company, self.seed)
        elif not _is_int(seed):
            raise ValueError(f"seed {seed!r} is not an integer")
        return CompanySpec(company, seed, replace(self.sizes, **sizes))

    def find(self, company: str) -> SandboxCompany | None:
        """The company a request names, matched without case; None for any other text."""
        key = company_key(company)
        return None if key is None else self._by_key.get(key)

    def soap_site(self, company: str) -> SoapSite | None:
        found = self.find(company)
        return None if found is None else found.soap

    def all(self) -> list[SandboxCompany]:
        with self._lock:
            return list(self._by_key.values())

    def add_request(self, payload: Any) -> tuple[SandboxCompany, bool]:
        """`POST /_sandbox/companies`: {"company": id, "seed"?, "invoices"?, "expenses"?, "purchases"?}."""
        if not isinstance(payload, dict):
            raise ValueError("the body must be a JSON object with at least `company`")
        if "company" not in payload:
            raise ValueError("company is required")
        parameters = dict(payload)
        company, seed = parameters.pop("company"), parameters.pop("seed", None)
        return self.add(check_company_id(company), seed, parameters)


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)
