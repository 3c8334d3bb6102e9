"""Scheduled: download the agreements changed since the last run (all of them with `"full": true`) to S3."""

from connector.soap_tasks import download_handler

lambda_handler = download_handler("agreements")
