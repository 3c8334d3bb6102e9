"""The attribute types of GLExport elements, and the base of every element model.

Empty attributes are dropped before validation, so typed fields are None when ConnectWise leaves
them blank. Pydantic parses the rest natively: Decimal refuses NaN, infinities and thousands
separators; bool takes True/False/Y/N in any case.
"""

from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict

M = TypeVar("M", bound=type[BaseModel])


def in_order(attributes: str) -> Callable[[M], M]:
    """Put a model's fields in this order (the names, space-separated), wherever they are
    declared: a subclass's own fields would otherwise follow its base's in its JSON."""

    def reorder(model: M) -> M:
        fields = model.__pydantic_fields__
        order = attributes.split()
        if sorted(order) != sorted(fields):
            raise TypeError(f"{model.__name__}: in_order must name each of its fields once")
        model.__pydantic_fields__ = {name: fields[name] for name in order}
        model.model_rebuild(force=True)
        return model

    return reorder


def rate_text(value: Any) -> Any:
    """`20.00%` and `20.000000` are both percentages: Decimal('20.00')."""
    return value.strip().rstrip("%") if isinstance(value, str) else value


def parse_ids(value: str | None) -> list[int]:
    """Split a comma-separated id list; raises ValueError naming the bad item."""
    ids = []
    for part in (value or "").split(","):
        part = part.strip()
        if not part:
            continue
        if not part.isdigit():
            raise ValueError(f"not a record id: {part!r}")
        ids.append(int(part))
    return ids


def ids_text(value: Any) -> Any:
    return parse_ids(value) if isinstance(value, str) else value


def us_datetime(value: Any) -> Any:
    """`PurchaseDetail/@DocumentDate` is written `5/1/2014 5:21:58 AM` (site local time)."""
    if isinstance(value, str) and "/" in value:
        return datetime.strptime(value.strip(), "%m/%d/%Y %I:%M:%S %p")
    return value


Money = Decimal
OptDecimal = Decimal | None
Rate = Annotated[Decimal | None, BeforeValidator(rate_text)]
OptInt = int | None
Flag = bool | None
IdList = Annotated[list[int], BeforeValidator(ids_text)]
CwDate = date | None
CwDateTime = Annotated[datetime | None, BeforeValidator(us_datetime)]


class CwElement(BaseModel):
    """One XML element; unknown attributes are kept as strings."""

    model_config = ConfigDict(extra="allow")
