"""The bundle of collaborators a task needs; built from the environment in Lambda, by hand in tests."""

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from connector.ledger import Ledger
from connector.outputs import Notices, Store
from connector.payment_ledger import PaymentLedger
from connector.settings import Settings
from connector.watermarks import Watermarks
from connectwise.backends import GLBackend


@dataclass
class Services:
    settings: Settings
    ledger: Ledger
    store: Store
    notices: Notices
    client_for: Callable[[str], GLBackend]
    payment_ledger: PaymentLedger
    watermarks: Watermarks
    soap_for: Callable[[str], Any] = lambda name: None  # connection -> connectwise.soap.SoapClient
    refresh_login: Callable[[str], None] = lambda name: None  # re-read a connection's secret next time
    clock: Callable[[], float] = time.time
    log: logging.Logger | Any = field(default_factory=lambda: logging.getLogger("connector"))
