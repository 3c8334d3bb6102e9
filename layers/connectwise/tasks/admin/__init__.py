"""The operator's command for connections: `python -m tasks.admin --help` (or `make admin ARGS=...`)."""
