"""ConnectWise Manage client: the Accounting Interface, its documents and its errors.

Nothing in this package imports AWS libraries, so it can be used from a laptop or a test.
"""
