"""The REST API (v3.0) client: `api` (HTTP, paging), `gl` and `payments` (the operations),
`client.RestClient` (them as a `GLBackend`)."""
