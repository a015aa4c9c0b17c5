"""File transfers on the router: downloads (:mod:`dcpool.transfers.download`) and uploads
(:mod:`dcpool.transfers.upload`)."""

from .adaptive import PartWindow, PartWindows
from .download import AUTO, Download, file_bytes
from .upload import BIG_FILE_THRESHOLD, MAX_PARTS, send_uploaded, upload_file

__all__ = ["AUTO", "BIG_FILE_THRESHOLD", "MAX_PARTS", "Download", "PartWindow", "PartWindows",
           "file_bytes", "send_uploaded", "upload_file"]
