"""Scheduled: download the invoices changed since the last run (all of them with `"full": true`) to S3."""

from connector.soap_tasks import download_handler

lambda_handler = download_handler("invoices")
