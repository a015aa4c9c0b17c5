"""What dcpool needs to know about API methods, by schema name (``QUALNAME``)."""

from __future__ import annotations

#: Methods that may be repeated safely when their outcome is unknown (spec §8.2: the answer
#: to an acknowledged request may be lost with its connection).
IDEMPOTENT = frozenset(
    {
        "upload.getFile",
        "upload.getFileHashes",
        "upload.getCdnFile",
        # a part saved twice is the same part (spec §13.1): safe to re-send after a lost link
        "upload.saveFilePart",
        "upload.saveBigFilePart",
        "upload.getCdnFileHashes",
        "upload.reuploadCdnFile",
        "help.getConfig",
        "help.getNearestDc",
        "help.getAppConfig",
        "help.getCdnConfig",
        "users.getUsers",
        "users.getFullUser",
        "updates.getState",
        "updates.getDifference",
        "stats.getBroadcastStats",
        "langpack.getLangPack",
    }
)

#: Methods that run without a logged-in key (spec §10): they never trigger an authorization
#: transfer.
NO_AUTH_NEEDED = frozenset(
    {
        "help.getConfig",
        "help.getNearestDc",
        "help.getAppConfig",
        "help.getCdnConfig",
        # a CDN DC takes no authorization (spec §11.4): the file_token is the permission
        "upload.getCdnFile",
        "auth.sendCode",
        "auth.resendCode",
        "auth.cancelCode",
        "auth.signIn",
        "auth.signUp",
        "auth.importAuthorization",
        "auth.exportAuthorization",
        "auth.importBotAuthorization",
        "auth.logOut",
    }
)
