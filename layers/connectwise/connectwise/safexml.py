"""Hardened XML parsing for documents from outside.

defusedxml refuses any DOCTYPE, so there is no entity expansion, no external entity and no
network or file access while parsing. ConnectWise's documents never carry a DOCTYPE.
"""

from xml.etree.ElementTree import Element, ParseError

import defusedxml.ElementTree as DefusedET
from defusedxml import DefusedXmlException

from connectwise.errors import DocumentError


def parse_xml(data: bytes, what: str = "document") -> Element:
    """Parse untrusted XML or raise DocumentError with a one-line reason."""
    try:
        root: Element = DefusedET.fromstring(
            data, forbid_dtd=True, forbid_entities=True, forbid_external=True
        )
        return root
    except DefusedXmlException as exc:
        raise DocumentError(f"{what} refused: it declares a DTD or entities ({type(exc).__name__})") from None
    except ParseError as exc:
        raise DocumentError(f"{what} is not well-formed XML: {exc}") from None
