"""The bundle of collaborators a task needs; built from the environment in Lambda
(`tasks.runtime.services`), by hand in tests."""

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from aws_lambda_powertools import Logger

from connectwise.backends import GLBackend
from connectwise.records import RecordsBackend
from tasks.platform.batch_ledger import Ledger
from tasks.platform.dead_letters import DeadLetters
from tasks.platform.notices import Notices
from tasks.platform.observability import Count, logger
from tasks.platform.payment_ledger import PaymentLedger
from tasks.platform.registry import ConnectionEntry
from tasks.platform.settings import Settings
from tasks.platform.storage import Store
from tasks.platform.watermarks import Watermarks


@dataclass
class Services:
    settings: Settings
    ledger: Ledger
    store: Store
    notices: Notices
    client_for: Callable[[str], GLBackend]
    payment_ledger: PaymentLedger
    watermarks: Watermarks
    entry: Callable[[str], ConnectionEntry | None]  # a connection's registry entry as stored now
    dead_letters: DeadLetters = field(default_factory=lambda: DeadLetters(lambda: None, ""))
    records_for: Callable[[str], RecordsBackend] = lambda name: NotImplemented  # reports and records
    refresh_login: Callable[[str], None] = lambda name: None  # re-read a connection's secret next time
    count: Count = lambda name, value=1, connection=None, unit=None: None  # observability.count
    clock: Callable[[], float] = time.time
    log: Logger = logger
