"""A connection's budget of ConnectWise calls (calls a minute, `ConnectionEntry.calls_per_minute`),
shared by every invocation of every function that calls ConnectWise for the connection, and by the
other connections of its ConnectWise company.

ConnectWise throttles an integration above about 1,000 calls a minute (429 + Retry-After), and
the MSP's other integrations use the same site. So the connector paces itself: the ledger table
holds one item per ConnectWise company, `budget#<company@site>`, whose `next_at` is the moment (epoch ms)
from which the budget is free. A caller reserves a block of calls by moving `next_at` on by the
block's length in one conditional write, then sends its calls one interval apart from the block's
start. Reservations are first come, first served: a download and a payments batch of one
connection take turns, and calls of all of them together never go faster than the pace.

* Blocks grow from 1 call to half a second of budget while a caller uses them up, and shrink to
  what it used when it did not: few writes for a busy caller, little lost when an invocation ends
  with part of its block unused.
* A call goes at its turn or less than one interval later; turns that passed unused are skipped,
  never sent later in a burst. So any minute holds at most the calls reserved in it and two more,
  under the budget thanks to PACE.
* A turn later than the invocation can wait is not reserved: the call is not sent and the work is
  retried later (a transient error, as a long Retry-After is).
* A 429 that still happens pauses every caller of the connection until its Retry-After, and slows
  the pace (by SLOWDOWN, once per Retry-After period however many callers saw it); the pace grows
  back to the budget over RECOVERY_SECONDS without another 429.
"""

import math
import threading
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from connectwise.errors import TransportError
from connectwise.transport import MAX_WAIT, Deadline
from tasks.platform.observability import count, logger, record
from tasks.platform.registry import DEFAULT_CALLS_PER_MINUTE, Registry

PACE = 0.95  # of the budget: calls leave at their turn or a little later, and ConnectWise counts arrivals
BLOCK_SECONDS = 0.5  # the most budget one reservation takes
SLOWDOWN = Decimal("0.8")  # the pace after a 429
SLOWEST = Decimal("0.2")
RECOVERY_SECONDS = 600  # a slowed pace grows back to the budget over this long without a 429
MAX_PAUSE = 3600.0  # seconds: a garbled Retry-After does not stop a connection for longer
ATTEMPTS = 8  # reservations lost to other callers in a row before the call is retried later


class Budgets:
    """The budget of each connection in this process, at the pace its registry entry asks."""

    def __init__(self, dynamodb: Any, table: str, registry: Registry) -> None:
        self.db, self.table, self.registry = dynamodb, table, registry
        self._held: dict[str, Budget] = {}
        self._lock = threading.Lock()

    def __call__(self, connection: str) -> "Budget":
        with self._lock:
            if connection not in self._held:
                entry = self.registry.cached(connection)
                self._held[connection] = Budget(
                    self.db,
                    self.table,
                    connection,
                    lambda: self._calls_per_minute(connection),
                    # Connections of one ConnectWise company share its budget: ConnectWise
                    # throttles the site, whichever connection calls.
                    key=entry.site if entry and entry.site else connection,
                )
            return self._held[connection]

    def _calls_per_minute(self, connection: str) -> int:
        entry = self.registry.cached(connection)  # a changed budget takes hold within a minute
        return entry.calls_per_minute if entry else DEFAULT_CALLS_PER_MINUTE


def budget_key(name: str) -> dict[str, Any]:
    """The item of a connection's budget: `budget#<company@site>`, or `budget#<connection>` for one
    whose site is not known."""
    return {"pk": {"S": f"budget#{name}"}}


def factor_at(factor: Decimal, slowed_at_ms: int, now_ms: int) -> Decimal:
    """The share of the budget in use: `factor` after the last 429, growing back linearly to 1."""
    grown = factor + Decimal(max(0, now_ms - slowed_at_ms)) / (RECOVERY_SECONDS * 1000)
    return min(Decimal(1), grown)


class Budget:
    """The pacer of one connection in this process (its threads share it): a `connectwise.transport.Pacer`."""

    def __init__(
        self,
        dynamodb: Any,
        table: str,
        connection: str,
        calls_per_minute: Callable[[], int],
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        key: str = "",
    ) -> None:
        self.db, self.table, self.connection = dynamodb, table, connection
        self.key = budget_key(key or connection)
        self.calls_per_minute, self.clock, self.sleep = calls_per_minute, clock, sleep
        self._lock = threading.Lock()
        # The block held: its start (epoch s), seconds per call, its calls, the turns taken or
        # skipped of it, and the turns taken (how big the next block is).
        self._start = self._interval = 0.0
        self._size = self._used = self._taken = 0
        self._pauses = 0  # 429s met by this process: a turn handed out before one is taken again
        self._factor, self._slowed_at = Decimal(1), 0  # the pace learnt from the last 429
        self._busy: bool | None = None  # as last seen: the budget is reserved ahead (None: not read yet)

    def wait_turn(self, deadline: Deadline, what: str) -> None:
        """Return at this caller's turn; raise TransportError, nothing sent, if there is none in
        time or the budget cannot be read (never another error: a caller reads it as "not sent")."""
        try:
            while True:
                pauses = self._pauses
                self.sleep(max(0.0, self.turn(deadline, what) - self.clock()))
                if pauses == self._pauses:  # else a 429 came meanwhile: the turn is after the pause
                    return
        except TransportError:
            raise
        except Exception as exc:  # DynamoDB unavailable or throttled, the item garbled
            raise TransportError(
                f"{what}: not sent, the ConnectWise budget of connection {self.connection!r} cannot be "
                f"read ({type(exc).__name__}); retried later"
            ) from None

    def turn(self, deadline: Deadline, what: str) -> float:
        """When (epoch seconds) this caller's next call may be sent, reserving a block if needed."""
        with self._lock:
            now = self.clock()
            if self._used < self._size and now > self._start + (self._used + 1) * self._interval:
                self._used = min(self._size, int((now - self._start) / self._interval))  # turns passed
            if self._used >= self._size:
                self._reserve(deadline, what)
            at = self._start + self._used * self._interval
            self._used += 1
            self._taken += 1
            return at

    def answered(self, seconds: float, status: int) -> None:
        """Every call counted and timed, under the connection that made it."""
        count("ConnectWiseCalls", 1, self.connection)
        record("ConnectWiseLatency", seconds * 1000, MetricUnit.Milliseconds, self.connection)

    def throttled(self, retry_after: float) -> None:
        """Pause every caller of the connection until the Retry-After, and slow the pace. Never
        raises: the caller is deciding what the 429 means, and it means "not run" whatever happens here."""
        count("ConnectWiseThrottled", 1, self.connection)
        logger.warning(
            "ConnectWise answered 429: the connection's calls pause and slow down",
            extra={"connection": self.connection, "retry_after": retry_after},
        )
        # A garbled Retry-After (infinite, negative, not a number) pauses from 0 s to MAX_PAUSE.
        pause = min(max(retry_after, 0.0), MAX_PAUSE) if retry_after == retry_after else 0.0
        try:
            self._pause(pause)
        except Exception as exc:  # the pause is advice to the other callers; this one waits anyway
            logger.warning(
                "the 429 could not be recorded in the connection's budget",
                extra={"connection": self.connection, "error": type(exc).__name__},
            )

    def _pause(self, pause: float) -> None:
        now = _ms(self.clock())
        resume = now + _ms(pause)
        retry_after = pause
        with self._lock:
            factor = max(SLOWEST, factor_at(self._factor, self._slowed_at, now) * SLOWDOWN)
            self._update(
                "SET next_at = :resume ADD throttles :one",
                "attribute_not_exists(next_at) OR next_at < :resume",
                {":resume": _n(resume), ":one": _n(1)},
                fallback=("ADD throttles :one", {":one": _n(1)}),
            )
            # One slowdown per Retry-After period: the callers that met the same 429 slow it once.
            since = now - max(1000, _ms(retry_after))
            self._update(
                "SET factor = :factor, slowed_at = :now",
                "attribute_not_exists(slowed_at) OR slowed_at < :since",
                {":factor": {"N": str(factor)}, ":now": _n(now), ":since": _n(since)},
            )
            self._used = self._size  # the block held is dropped: the next call goes after the pause
            self._pauses += 1
            self._learn(self._read(), now)

    def _reserve(self, deadline: Deadline, what: str) -> None:
        now = _ms(self.clock())
        # A turn leaves the call at least half the time left: a write sent with too little time to
        # hear its reply would have an unknown outcome.
        latest = now + _ms(min(MAX_WAIT, (deadline.remaining() - 1.0) / 2))
        if latest < now:
            raise TransportError(f"{what}: not started, the invocation has no time left; retried later")
        if self._busy is None:  # this process's first call: learn the pace and whether it is busy
            self._learn(self._read(), now)
        # A caller that took every turn before its block ended gets a bigger one; one that did
        # not (slower than the pace), as many as it took.
        hungry = self._taken >= self._size and self.clock() <= self._start + (self._size + 1) * self._interval
        wanted = 2 * self._size if hungry else self._taken
        for _ in range(ATTEMPTS):
            factor = factor_at(self._factor, self._slowed_at, now)
            calls_per_second = self.calls_per_minute() / 60 * PACE * float(factor)
            size = max(1, min(wanted, int(calls_per_second * BLOCK_SECONDS)))
            span = math.ceil(size * 1000 / calls_per_second)
            item = self._take(now, span, latest) if self._busy else self._take_idle(now, span)
            if item is not None:
                start = int(item["next_at"]["N"]) - span
                self._start, self._interval = start / 1000, span / size / 1000
                self._size = size
                self._used = self._taken = 0
                self._learn(item, now)
                return
            now = _ms(self.clock())
        raise TransportError(f"{what}: not started, the connection's budget is contended; retried later")

    def _take(self, now: int, span: int, latest: int) -> dict[str, Any] | None:
        """Reserve `span` ms after the calls reserved already (the budget is busy)."""
        item = self._update(
            "SET next_at = next_at + :span",
            "next_at > :now AND next_at <= :latest",
            {":span": _n(span), ":now": _n(now), ":latest": _n(latest)},
        )
        if item is None:
            stored = self._read()
            self._learn(stored, now)
            next_at = _next_at(stored)
            if next_at > now + _ms(MAX_PAUSE + MAX_WAIT):  # no pause or turn of ours is that far
                logger.warning(
                    "the connection's ConnectWise budget held a time beyond any pause: started again",
                    extra={"connection": self.connection},
                )
                self._update("SET next_at = :now", "next_at = :seen", {":now": _n(now), ":seen": _n(next_at)})
                return None
            if next_at > latest:
                raise TransportError(
                    f"connection {self.connection!r}: its ConnectWise budget is taken for the next "
                    f"{(next_at - now) / 1000:.0f} s, longer than this invocation can wait; retried later",
                    status=429,
                )
        return item

    def _take_idle(self, now: int, span: int) -> dict[str, Any] | None:
        """Reserve `span` ms from now (the budget is free)."""
        item = self._update(
            "SET next_at = :end",
            "attribute_not_exists(next_at) OR NOT attribute_type(next_at, :number) OR next_at <= :now",
            {":end": _n(now + span), ":now": _n(now), ":number": {"S": "N"}},
        )
        self._busy = item is None
        return item

    def _read(self) -> dict[str, Any]:
        reply = self.db.get_item(TableName=self.table, Key=self.key, ConsistentRead=True)
        item: dict[str, Any] = reply.get("Item", {})
        return item

    def _learn(self, item: dict[str, Any], now: int) -> None:
        """What the stored item says: the pace after the last 429, and whether the budget is busy.
        What is not a number, or out of bounds (a pace above the budget or below SLOWEST), is not taken."""
        factor, slowed_at = _number(item, "factor"), _number(item, "slowed_at")
        if factor is not None and slowed_at is not None:
            self._factor, self._slowed_at = min(Decimal(1), max(SLOWEST, factor)), int(slowed_at)
        self._busy = _next_at(item) > now

    def _update(
        self,
        expression: str,
        condition: str,
        values: dict[str, Any],
        fallback: tuple[str, dict[str, Any]] | None = None,
    ) -> dict[str, Any] | None:
        """The item after the update, or None if the condition failed (then the fallback runs)."""
        try:
            reply = self.db.update_item(
                TableName=self.table,
                Key=self.key,
                UpdateExpression=expression,
                ConditionExpression=condition,
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
            )
        except self.db.exceptions.ConditionalCheckFailedException:
            if fallback:
                self.db.update_item(
                    TableName=self.table,
                    Key=self.key,
                    UpdateExpression=fallback[0],
                    ExpressionAttributeValues=fallback[1],
                )
            return None
        attributes: dict[str, Any] = reply["Attributes"]
        return attributes


def _number(item: dict[str, Any], name: str) -> Decimal | None:
    value = item.get(name)
    try:
        number = Decimal(value["N"]) if isinstance(value, dict) else None
    except ArithmeticError:
        return None
    return number if number is not None and number.is_finite() else None


def _next_at(item: dict[str, Any]) -> int:
    return int(_number(item, "next_at") or 0)


def _ms(seconds: float) -> int:
    return int(seconds * 1000)


def _n(value: int) -> dict[str, str]:
    return {"N": str(value)}
