"""Reports and record downloads (REST or SOAP, per connection): `requests`, `reports` (catalog and rows), `downloads`
(incremental by last-updated, under a watermark), `rows` (the CSV and JSON Lines files)."""
