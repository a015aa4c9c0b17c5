"""File transfers on the router: downloads (:mod:`dcpool.transfers.download`) and uploads
(:mod:`dcpool.transfers.upload`)."""

from .download import Download, file_bytes
from .upload import BIG_FILE_THRESHOLD, MAX_PARTS, send_uploaded, upload_file

__all__ = ["BIG_FILE_THRESHOLD", "MAX_PARTS", "Download", "file_bytes", "send_uploaded", "upload_file"]
