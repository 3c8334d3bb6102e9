"""The legacy Accounting Interface (the GL page with a member login): `wire` holds its
reconstructed wire format, `client.AccountingClient` the operations."""
