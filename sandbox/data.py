"""Deterministic seeded data for the sandbox: the same seed and sizes give the same site."""

import random
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

CENT = Decimal("0.01")
BASE_DATE = date(2026, 8, 1)  # every document is dated in the 60 days from here
LOCATIONS = ("Tampa", "London")
TAX_RATE = Decimal("20.00")


def money(value: Decimal) -> Decimal:
    return value.quantize(CENT)


@dataclass
class Company:
    id: int
    name: str
    account: str
    contact: str
    city: str
    state: str
    postal_code: str
    country: str
    currency: str
    taxable: bool
    email: str
    vendor: bool = False


@dataclass
class Member:
    id: str
    first_name: str
    last_name: str


@dataclass
class Line:
    """One GL line of a document, with the GL entry ids that carry it."""

    entry_ids: list[int]
    item_id: str
    description: str
    quantity: Decimal
    price: Decimal
    total: Decimal  # signed as ConnectWise writes it: credits negative
    account: str
    gl_type: str
    billable: bool = True


@dataclass
class Invoice:
    id: int
    number: str
    company: Company
    location: str
    date: date
    lines: list[Line]
    tax: Line | None
    header_entry_ids: list[int]
    total: Decimal
    taxable_total: Decimal
    sales_tax: Decimal
    paid_amount: Decimal = Decimal("0.00")
    paid_date: datetime | None = None
    updated_at: datetime | None = None  # set when a payment changes it (the SOAP side's LastUpdated)
    payment_id: int | None = None  # the invoice's one payment record (the REST side's view)
    payment_at: datetime | None = None  # its payment date, as last sent
    # Payments beyond the first, created only under the `second_payment` fault: (id, amount, date).
    extra_payments: list[tuple[int, Decimal, datetime]] = field(default_factory=list)

    def entry_ids(self) -> list[int]:
        ids = list(self.header_entry_ids)
        for line in [*self.lines, *([self.tax] if self.tax else [])]:
            ids.extend(line.entry_ids)
        return ids


@dataclass
class Expense:
    id: int
    member: Member
    company: Company
    location: str
    date: date
    header_entry_ids: list[int]
    lines: list[Line]
    currency: str

    @property
    def total(self) -> Decimal:
        return sum((line.total for line in self.lines), Decimal("0.00"))

    def entry_ids(self) -> list[int]:
        return [*self.header_entry_ids, *(i for line in self.lines for i in line.entry_ids)]


@dataclass
class PurchaseReceipt:
    id: int
    number: str
    vendor: Company
    ship_to: Company
    location: str
    date: date
    lines: list[Line]
    currency: str
    received_at: datetime

    @property
    def total(self) -> Decimal:
        return -sum((line.total for line in self.lines), Decimal("0.00"))

    def entry_ids(self) -> list[int]:
        return [i for line in self.lines for i in line.entry_ids]


@dataclass
class Site:
    customers: list[Company]
    vendors: list[Company]
    members: list[Member]
    invoices: list[Invoice]
    expenses: list[Expense]
    purchases: list[PurchaseReceipt]
    batch_ids: random.Random = field(repr=False, default_factory=random.Random)

    def new_batch_id(self) -> str:
        return str(uuid.UUID(int=self.batch_ids.getrandbits(128), version=4))


def parties(
    invoices: list[Invoice], expenses: list[Expense], purchases: list[PurchaseReceipt]
) -> tuple[list[Member | Company], list[Company]]:
    """Who a GLExport of these records lists, in order and once each: its vendors (the members
    with expenses, then the purchase vendors) and its customers."""
    vendors: dict[str, Member | Company] = {}
    for expense in expenses:
        vendors.setdefault(expense.member.id, expense.member)
    for purchase in purchases:
        vendors.setdefault(purchase.vendor.account, purchase.vendor)
    customers: dict[int, Company] = {}
    for invoice in invoices:
        customers.setdefault(invoice.company.id, invoice.company)
    for expense in expenses:
        customers.setdefault(expense.company.id, expense.company)
    for purchase in purchases:
        customers.setdefault(purchase.ship_to.id, purchase.ship_to)
    return list(vendors.values()), list(customers.values())


_NAMES = ("Acme", "Globex", "Initech", "Umbrella", "Hooli", "Vandelay", "Stark", "Wayne", "Tyrell", "Soylent")
_SUFFIXES = ("Ltd", "LLC", "Inc", "GmbH", "Partners")
_PRODUCTS = (
    ("PATCH10", "10ft Patch Cat5E Cable", "7.00"),
    ("SWITCH24", "24-port Switch", "189.00"),
    ("SUPPORT", "Managed Services - Monthly", "250.00"),
    ("LABOUR", "Onsite Labour (hour)", "95.00"),
    ("LIC-M365", "Microsoft 365 Business licence", "12.50"),
)


def generate(
    seed: int = 1, invoices: int = 40, expenses: int = 10, purchases: int = 8, marker: str = ""
) -> Site:
    """The site of one seed. A `marker` (another company's, sandbox/companies.py) leads its invoice
    numbers (`<marker>-30001`, else `CW-30001`) and ends its customers' and vendors' names."""
    rng = random.Random(seed)
    next_entry = iter(range(1000, 10**9))

    def entries(n: int = 1) -> list[int]:
        return [next(next_entry) for _ in range(n)]

    customers = [_company(rng, 100 + i, False, marker) for i in range(max(3, invoices // 20 + 3))]
    vendors = [_company(rng, 900 + i, True, marker) for i in range(3)]
    members = [
        Member(f"m{i:02d}", rng.choice(("Ann", "Bo", "Cy", "Di")), rng.choice(("Lee", "Ng", "Ray")))
        for i in range(4)
    ]

    site_invoices = []
    for i in range(invoices):
        company = rng.choice(customers)
        lines = []
        for _ in range(rng.randint(1, 4)):
            item, description, price = rng.choice(_PRODUCTS)
            quantity = Decimal(rng.randint(1, 12))
            total = money(quantity * Decimal(price))
            lines.append(Line(entries(), item, description, -quantity, Decimal(price), -total, "4000", "RP"))
        taxable_total = -sum((line.total for line in lines), Decimal("0.00"))
        sales_tax = money(taxable_total * TAX_RATE / 100) if company.taxable else Decimal("0.00")
        tax = (
            Line(entries(), "", "Level 1 Sales Tax", Decimal("0"), Decimal("0"), -sales_tax, "2200", "ST")
            if sales_tax
            else None
        )
        invoice_id = 30001 + i
        site_invoices.append(
            Invoice(
                id=invoice_id,
                number=f"{marker or 'CW'}-{invoice_id}",
                company=company,
                location=rng.choice(LOCATIONS),
                date=BASE_DATE + timedelta(days=rng.randint(0, 59)),
                lines=lines,
                tax=tax,
                header_entry_ids=entries(len(lines) + (1 if tax else 0)),
                total=taxable_total + sales_tax,
                taxable_total=taxable_total if company.taxable else Decimal("0.00"),
                sales_tax=sales_tax,
            )
        )

    site_expenses = []
    for i in range(expenses):
        member = rng.choice(members)
        company = rng.choice(customers)
        lines = []
        for _ in range(rng.randint(1, 3)):
            kind = rng.choice(("Mileage", "Meals", "Parking"))
            amount = money(Decimal(rng.randint(100, 9000)) / 100)
            lines.append(
                Line(entries(2), "", kind, Decimal(1), amount, amount, "5000", "EE", rng.random() < 0.5)
            )
        site_expenses.append(
            Expense(
                1100 + i,
                member,
                company,
                rng.choice(LOCATIONS),
                BASE_DATE + timedelta(days=rng.randint(0, 59)),
                entries(),
                lines,
                company.currency,
            )
        )

    site_purchases = []
    for i in range(purchases):
        vendor = rng.choice(vendors)
        lines = []
        for _ in range(rng.randint(1, 3)):
            item, description, price = rng.choice(_PRODUCTS)
            quantity = Decimal(rng.randint(1, 50))
            cost = money(Decimal(price) / 2)
            lines.append(
                Line(entries(), item, description, -quantity, cost, -money(quantity * cost), "1300", "RP")
            )
        day = BASE_DATE + timedelta(days=rng.randint(0, 59))
        site_purchases.append(
            PurchaseReceipt(
                id=700 + i,
                number=f"PO-{700 + i}",
                vendor=vendor,
                ship_to=rng.choice(customers),
                location=rng.choice(LOCATIONS),
                date=day,
                lines=lines,
                currency=vendor.currency,
                received_at=datetime(
                    day.year, day.month, day.day, rng.randint(6, 17), rng.randint(0, 59), rng.randint(0, 59)
                ),
            )
        )

    return Site(
        customers, vendors, members, site_invoices, site_expenses, site_purchases, random.Random(seed + 7919)
    )


def _company(rng: random.Random, company_id: int, vendor: bool, marker: str) -> Company:
    name = f"{rng.choice(_NAMES)} {rng.choice(_SUFFIXES)} {company_id}" + (f" {marker}" if marker else "")
    country, currency, city, state, postal = rng.choice(
        (
            ("United States", "USD", "Tampa", "FL", "33618"),
            ("United Kingdom", "GBP", "Newcastle Upon Tyne", "", "NE1 4XF"),
        )
    )
    return Company(
        id=company_id,
        name=name,
        account=f"{'V' if vendor else 'C'}{company_id:05d}",
        contact=f"{rng.choice(('Sam', 'Alex', 'Jo'))} {rng.choice(('Smith', 'Jones', 'Brown'))}",
        city=city,
        state=state,
        postal_code=postal,
        country=country,
        currency=currency,
        taxable=rng.random() < 0.7,
        email=f"billing@{name.split()[0].lower()}{company_id}.example",
        vendor=vendor,
    )
