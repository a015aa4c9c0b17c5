"""File transfers on the router: downloads (uploads and CDN later).  See
:mod:`dcpool.transfers.download`."""

from .download import Download, file_bytes

__all__ = ["Download", "file_bytes"]
