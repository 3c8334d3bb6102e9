"""A local ConnectWise sandbox: seeded data, ConnectWise's documented behaviour, switchable faults."""
