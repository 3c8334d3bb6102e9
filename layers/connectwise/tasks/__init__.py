"""The AWS side: the connector's tasks, each a plain function of a request and `Services`.

`gl` (GL batches: download, update, recreate), `payments` (invoice payments), `records`
(reports and record downloads) over one `platform` package (settings, secrets, the DynamoDB
ledgers, S3 keys and storage, events, the DLQ, observability). `runtime` builds the services;
only the Lambda handlers under functions/ import it. See docs/architecture.md.
"""
