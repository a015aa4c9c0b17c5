"""The emulator's whole method table: the core handlers (:mod:`.handlers`) plus every module that
registers more with ``@method`` (messages, channels and update history in :mod:`.messaging`,
which re-registers ``updates.getState`` / ``updates.getDifference``; uploads, CDN DCs and
temporary keys in :mod:`.uploads` and :mod:`.pfs`; passwords, QR login, bots and logout in
:mod:`.accounts`, which wraps ``auth.signIn``, ``auth.logOut``,
``auth.export/importAuthorization`` and ``users.getUsers``).

The world dispatches through this module, so :mod:`.handlers` never imports the modules that
extend it (no import cycle), and a new handler module is one import line here.
"""

from __future__ import annotations

from . import messaging as messaging  # noqa: F401  (registers its methods and control commands)
from . import pfs as pfs  # noqa: F401  (temp keys: auth.bindTempAuthKey, request gates)
from . import uploads as uploads  # noqa: F401  (uploads, CDN DCs; re-registers upload.getFile, help.getCdnConfig)
# issue 14: 2FA, QR login, bots, logout; last, since it wraps handlers registered above
from . import accounts as accounts  # noqa: F401
from . import accounts_control as accounts_control  # noqa: F401  (its control commands)
from .handlers import handle_request

__all__ = ["handle_request"]
