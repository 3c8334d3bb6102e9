"""ConnectWise's SOAP "Integrator" APIs (reports, Find operations) through zeep.

Import `connectwise.soap.client` only where SOAP is used: zeep and lxml then cost the other
functions' cold start nothing."""
