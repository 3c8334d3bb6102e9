"""How the sandbox's REST lists answer `conditions`, `orderBy`, `fields`, paging and `/count`, as
ConnectWise documents them (../shared/reference/rest_api.md section 2).

* Navigable: `page` (from 1) and `pageSize` (default 25, larger than 1000 is capped), a `Link`
  header with `first`, `prev`, `next`, `last` and `page` as the last parameter; a page beyond the
  last is an empty list.
* `orderBy`: `field asc|desc`, several keys comma separated, nested names with `/`,
  `lastUpdated` meaning `_info/lastUpdated`; ties are broken by id ascending so pages are stable.
  Text orders without case and nulls come first ascending, last descending (SQL Server's way).
* Forward-only (`pagination-type: forward-only`): `pageId` is `id > pageId`, ordered by id, a
  `Link` to the next pageId while more remain; `orderBy` refused.
* `fields`: the partial response, a comma list, nested with `/`.
* Every malformed or unsupported value of these is a 400 with the error body naming it; the
  filtering, ordering and projection run inside the checks so no record can escape them.
"""

import functools
import itertools
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from sandbox import rest_documents
from sandbox.conditions import FIELD_PATH, ConditionsError, parse_rest, resolve

MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 25
UNSUPPORTED = ("childConditions", "customFieldConditions")  # no child arrays or custom fields here


@dataclass
class Reply:
    status: int
    body: Any  # JSON-ready; None for no body
    headers: dict[str, str] = field(default_factory=dict)


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, errors: list[dict[str, str]] | None = None):
        super().__init__(message)
        self.reply = Reply(status, rest_documents.error(code, message, errors))


def bad_request(parameter: str, message: str) -> ApiError:
    """A 400 naming the query parameter at fault."""
    text = f"{parameter}: {message}"
    return ApiError(
        400, "InvalidObject", text, [{"code": "InvalidField", "message": text, "field": parameter}]
    )


def page(
    rows: Iterable[dict[str, Any]], query: Mapping[str, str], headers: Mapping[str, str], url: str
) -> Reply:
    """One page of `rows` (ascending ids, as every list here yields them). Forward-only reads
    lazily, so a page of a 10,000-record list costs its page, not the list."""
    size = _number(query, "pageSize", DEFAULT_PAGE_SIZE, least=1)
    fields = requested_fields(query)
    base = {k: v for k, v in query.items() if k not in ("page", "pageId")}
    if headers.get("pagination-type", "").lower() == "forward-only":
        if query.get("orderBy"):
            raise bad_request("orderBy", "cannot be used with forward-only pagination")
        after = _number(query, "pageId", 0, least=0)
        with reading("conditions"):
            following = list(itertools.islice((r for r in matching(rows, query) if _id(r) > after), size + 1))
        chosen = following[:size]
        links = {"next": base | {"pageId": _id(chosen[-1])}} if len(following) > size else {}
    else:
        chosen, links = navigate(select(rows, query), query, size)
    with reading("fields"):
        body = [clean(project(r, fields) if fields else r) for r in chosen]
    return Reply(200, body, link_header(url, links))


def single(document: dict[str, Any], query: Mapping[str, str]) -> Reply:
    """One record (GET .../{id}), with `fields` honoured."""
    fields = requested_fields(query)
    with reading("fields"):
        return Reply(200, clean(project(document, fields) if fields else document))


def count(rows: Iterable[dict[str, Any]], query: Mapping[str, str]) -> Reply:
    with reading("conditions"):
        return Reply(200, {"count": sum(1 for _ in matching(rows, query))})


def select(rows: Iterable[dict[str, Any]], query: Mapping[str, str]) -> list[dict[str, Any]]:
    """The rows that match `conditions`, in `orderBy` order (ties by id when rows have one)."""
    with reading("conditions"):
        chosen = list(matching(rows, query))
    keys = _order_keys(query.get("orderBy", ""))
    if keys and chosen and "id" in chosen[0]:
        chosen.sort(key=_id)
    with reading("orderBy"):
        for name, descending in reversed(keys):  # stable sorts, last key first
            try:
                chosen.sort(key=functools.partial(_sort_key, name=name), reverse=descending)
            except TypeError:
                raise ConditionsError(f"the values of {name} cannot be ordered against each other") from None
    return chosen


def matching(rows: Iterable[dict[str, Any]], query: Mapping[str, str]) -> Iterable[dict[str, Any]]:
    """Lazily; a caller reads it inside `reading("conditions")`."""
    for name in UNSUPPORTED:
        if query.get(name):
            raise bad_request(name, "not supported by this sandbox")
    text = query.get("conditions", "")
    if not text.strip():
        return rows
    with reading("conditions"):
        matches = parse_rest(text)
    return (r for r in rows if matches(r))


def navigate(
    rows: list[Any], query: Mapping[str, str], size: int | None = None
) -> tuple[list[Any], dict[str, dict[str, Any]]]:
    """A navigable page of `rows` and its Link relations (each a query)."""
    size = size or _number(query, "pageSize", DEFAULT_PAGE_SIZE, least=1)
    number = _number(query, "page", 1, least=1)
    base = {k: v for k, v in query.items() if k not in ("page", "pageId")}
    last = max(1, -(-len(rows) // size))
    links = {"first": base | {"page": 1}, "last": base | {"page": last}}
    if number > 1:
        links["prev"] = base | {"page": min(number - 1, last)}
    if number < last:
        links["next"] = base | {"page": number + 1}
    return rows[(number - 1) * size : number * size], links


def link_header(url: str, links: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    link = ", ".join(f'<{url}?{urlencode(params)}>; rel="{rel}"' for rel, params in links.items())
    return {"Link": link} if link else {}


def project(record: Mapping[str, Any], fields: list[str]) -> dict[str, Any]:
    """The partial response: only the named fields, nested ones inside their parents."""
    result: dict[str, Any] = {}
    for name in fields:
        keys, value = resolve(record, name)
        if value is None:
            continue  # left out, as nulls are (also a null reference on the way)
        target = result
        for key in keys[:-1]:
            target = target.setdefault(key, {})
        target[keys[-1]] = value
    return result


def clean(value: Any) -> Any:
    """Leave out nulls, as ConnectWise does (the spec's references are not nullable)."""
    if isinstance(value, dict):
        return {k: clean(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [clean(v) for v in value]
    return value


@contextmanager
def reading(parameter: str) -> Iterator[None]:
    """A ConditionsError raised while reading one parameter becomes a 400 naming it."""
    try:
        yield
    except ConditionsError as exc:
        raise bad_request(parameter, str(exc)) from None


def _number(query: Mapping[str, str], name: str, default: int, least: int) -> int:
    text = query.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        raise bad_request(name, f"{text[:40]!r} is not a whole number") from None
    if value < least:
        raise bad_request(name, f"must be at least {least}, got {value}")
    return min(value, MAX_PAGE_SIZE) if name == "pageSize" else value


def requested_fields(query: Mapping[str, str]) -> list[str]:
    names = [n.strip() for n in query.get("fields", "").split(",") if n.strip()]
    for name in names:
        if not FIELD_PATH.fullmatch(name):
            raise bad_request("fields", f"{name[:40]!r} is not a field name")
    return names


def _order_keys(text: str) -> list[tuple[str, bool]]:
    keys = []
    for part in text.split(",") if text.strip() else []:
        words = part.split()
        if not words or len(words) > 2 or not FIELD_PATH.fullmatch(words[0]):
            raise bad_request("orderBy", f"{part.strip()[:40]!r} is not `field asc|desc`")
        if len(words) == 2 and words[1].lower() not in ("asc", "desc"):
            raise bad_request("orderBy", f"{words[1][:20]!r} is not asc or desc")
        keys.append((words[0], len(words) == 2 and words[1].lower() == "desc"))
    return keys


def _sort_key(row: Mapping[str, Any], name: str) -> tuple[bool, Any]:
    _, value = resolve(row, name)
    if isinstance(value, dict | list):
        raise ConditionsError(f"{name} is an object; order by one of its fields, e.g. {name}/name")
    if isinstance(value, str):
        value = value.casefold()
    return (value is not None, 0 if value is None else value)


def _id(row: Mapping[str, Any]) -> int:
    value = row.get("id")
    if not isinstance(value, int):
        raise bad_request("pagination-type", "forward-only paging needs records with an id")
    return value
