"""GLExport documents: the element models, the streaming readers of the two forms ConnectWise
sends (the Accounting Interface's XML, the REST API's JSON) and what a read found (GLBatch)."""

from connectwise.glexport.batch import GLBatch, GLSink
from connectwise.glexport.models import GLExport
from connectwise.glexport.xml import read_glexport

__all__ = ["GLBatch", "GLExport", "GLSink", "read_glexport"]
