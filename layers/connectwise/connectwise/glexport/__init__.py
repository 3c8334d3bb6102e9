"""GLExport documents: the element models, a downloaded batch, and the readers of the two
forms ConnectWise sends (the Accounting Interface's XML, the REST API's JSON)."""

from connectwise.glexport.batch import GLBatch
from connectwise.glexport.models import GLExport
from connectwise.glexport.xml import parse_glexport

__all__ = ["GLBatch", "GLExport", "parse_glexport"]
