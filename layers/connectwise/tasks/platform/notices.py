"""Events on the EventBridge bus: what happened, for the accounting system and operators."""

import json
from typing import Any

SOURCE = "connectwise.connector"


class Notices:
    """Events on the EventBridge bus, one detail-type per fact (GLBatchDownloaded, ...)."""

    def __init__(self, events: Any, bus_name: str) -> None:
        self.events = events
        self.bus_name = bus_name

    def publish(self, detail_type: str, detail: dict[str, Any]) -> None:
        self.publish_many([(detail_type, detail)])

    def publish_many(self, events: list[tuple[str, dict[str, Any]]]) -> None:
        """Publish in chunks of 10 (PutEvents' limit); raise if EventBridge refuses any."""
        for start in range(0, len(events), 10):
            chunk = events[start : start + 10]
            reply = self.events.put_events(
                Entries=[
                    {
                        "EventBusName": self.bus_name,
                        "Source": SOURCE,
                        "DetailType": kind,
                        "Detail": json.dumps(detail),
                    }
                    for kind, detail in chunk
                ]
            )
            if reply.get("FailedEntryCount"):
                failed = [e for e in reply["Entries"] if e.get("ErrorCode")]
                raise RuntimeError(f"EventBridge refused {len(failed)} events: {failed[0].get('ErrorCode')}")
