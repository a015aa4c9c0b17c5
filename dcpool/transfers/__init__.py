"""File transfers on the router: downloads (uploads and CDN later).  See
:mod:`dcpool.transfers.download`."""

from .adaptive import PartWindow, PartWindows
from .download import AUTO, Download, file_bytes

__all__ = ["AUTO", "Download", "PartWindow", "PartWindows", "file_bytes"]
