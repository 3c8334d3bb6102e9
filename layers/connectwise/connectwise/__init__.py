"""ConnectWise Manage clients: the Accounting Interface, the REST API and the SOAP APIs, the
GLExport documents they return, and their errors.

Nothing in this package imports AWS libraries (a test keeps it so), so it can be used from a
laptop or a test. Shared by every protocol: `models`, `errors`, `transport`, `conditions`,
`glexport`; one package per protocol: `accounting_interface`, `rest`, `soap`.
"""
