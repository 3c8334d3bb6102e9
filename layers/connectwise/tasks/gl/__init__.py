"""GL batches: `download` (scheduled), `update` (posting confirmations, through `confirmations`
from SQS), `recreate` (on demand); their requests in `requests`."""
