"""moto in server mode with DynamoDB requests made atomic, as they are on AWS.

moto serves each request on its own thread and its DynamoDB backend does not lock: two
concurrent conditional writes to one item can both pass their condition. The ledgers rely on
DynamoDB's atomic conditional writes, so requests to DynamoDB are run one at a time here; every
other service stays concurrent (SQS long polls must not block the rest).

It also makes moto's SQS receive linear in the queue's length: moto checks each received
message's retention period by computing every queue attribute, message counts included, which
costs O(queue) per message received (~13 ms each with 500 queued). Lambda's event source mapping
costs a function nothing, so in the benchmark that emulator cost would only blur what is measured.

`python -m scripts.moto_serial --port N` runs it as a process (the benchmark does); `MotoServer`
runs it in a thread (tests and `make run`).
"""

import argparse
import threading
from collections.abc import Callable, Iterable
from typing import Any

from moto.core.utils import unix_time
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from moto.sqs.models import Message, SQSBackend
from werkzeug.serving import BaseWSGIServer, make_server

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def serial_dynamodb(app: WsgiApp) -> WsgiApp:
    lock = threading.Lock()

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB"):
            with lock:
                return list(app(environ, start_response))
        return app(environ, start_response)

    return wrapped


def _within_retention_period(self: SQSBackend, queue_name: str, message: Message) -> bool:
    """moto's own check, reading the one attribute it needs instead of computing them all."""
    retention_period = int(self.get_queue(queue_name).message_retention_period)  # type: ignore[attr-defined]
    return retention_period + message.sent_timestamp / 1000 > unix_time()  # type: ignore[operator]


SQSBackend.is_message_valid_based_on_retention_period = _within_retention_period  # type: ignore[method-assign]


def make_moto_server(host: str, port: int) -> BaseWSGIServer:
    app = serial_dynamodb(DomainDispatcherApplication(create_backend_app))
    return make_server(host, port, app, threaded=True, request_handler=MotoRequestHandler)


class MotoServer:
    """In a background thread of this process; `endpoint` once started."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._server = make_moto_server(host, port)
        self._thread = threading.Thread(target=self._server.serve_forever, name="moto", daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://{self._server.host}:{self._server.port}"

    def start(self) -> "MotoServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m scripts.moto_serial", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    make_moto_server("127.0.0.1", args.port).serve_forever()


if __name__ == "__main__":
    main()
