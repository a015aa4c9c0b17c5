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

#: Methods that run without a logged-in key (LOGIN.md §4.7): they never trigger an
#: authorization transfer, and are still sent once the pool is logged out.
NO_AUTH_NEEDED = frozenset(
    {
        "account.deleteAccount",
        "account.getPassword",
        "account.sendVerifyEmailCode",
        "account.verifyEmail",
        "auth.bindTempAuthKey",
        # a CDN DC takes no authorization (spec §11.4): the file_token is the permission
        "upload.getCdnFile",
        "auth.cancelCode",
        "auth.checkPassword",
        "auth.exportLoginToken",
        "auth.importAuthorization",
        "auth.importBotAuthorization",
        "auth.importLoginToken",
        "auth.importWebTokenAuthorization",
        "auth.reportMissingCode",
        "auth.requestFirebaseSms",
        "auth.resendCode",
        "auth.resetLoginEmail",
        "auth.sendCode",
        "auth.signIn",
        "auth.signUp",
        "auth.recoverPassword",
        "auth.requestPasswordRecovery",
        "auth.checkRecoveryPassword",
        "auth.exportAuthorization",
        "auth.logOut",
        "help.getAppConfig",
        "help.getCdnConfig",
        "help.getConfig",
        "help.getCountriesList",
        "help.getDeepLinkInfo",
        "help.getNearestDc",
        "help.saveAppLog",
        "initConnection",
        "invokeWithLayer",
        "langpack.getDifference",
        "langpack.getLangPack",
        "langpack.getLanguage",
        "langpack.getLanguages",
        "langpack.getStrings",
        "payments.assignAppStoreTransaction",
        "payments.assignPlayMarketTransaction",
        "payments.canPurchaseStore",
        "payments.getPaymentForm",
        "payments.sendPaymentForm",
    }
)
