"""Constructor ids (unsigned 32-bit) used by hand on hot paths.

Defined as literals so that ``import dcpool.tl.ids`` is instant; ``tests/tl/test_ids.py`` checks
every value against the schema (``NAMES`` maps each id back to its schema name).
"""

from __future__ import annotations

# fmt: off
# --- MTProto core (schema/mtproto.tl plus the hand-parsed constructors of spec §2.7, §3.6, §8.1)
RES_PQ = 0x05162463
P_Q_INNER_DATA = 0x83c95aec
P_Q_INNER_DATA_DC = 0xa9f55f95
P_Q_INNER_DATA_TEMP = 0x3c6a84d4
P_Q_INNER_DATA_TEMP_DC = 0x56fddf88
BIND_AUTH_KEY_INNER = 0x75a3f765
SERVER_DH_PARAMS_FAIL = 0x79cb045d
SERVER_DH_PARAMS_OK = 0xd0e8075c
SERVER_DH_INNER_DATA = 0xb5890dba
CLIENT_DH_INNER_DATA = 0x6643b654
DH_GEN_OK = 0x3bcbf734
DH_GEN_RETRY = 0x46dc1fb9
DH_GEN_FAIL = 0xa69dae02
DESTROY_AUTH_KEY_OK = 0xf660e1d4
DESTROY_AUTH_KEY_NONE = 0x0a9f2259
DESTROY_AUTH_KEY_FAIL = 0xea109b13
REQ_PQ = 0x60469778
REQ_PQ_MULTI = 0xbe7e8ef1
REQ_DH_PARAMS = 0xd712e4be
SET_CLIENT_DH_PARAMS = 0xf5045f1f
DESTROY_AUTH_KEY = 0xd1435160
MSGS_ACK = 0x62d6b459
BAD_MSG_NOTIFICATION = 0xa7eff811
BAD_SERVER_SALT = 0xedab447b
MSGS_STATE_REQ = 0xda69fb52
MSGS_STATE_INFO = 0x04deb57d
MSGS_ALL_INFO = 0x8cc0d131
MSG_DETAILED_INFO = 0x276d3ec6
MSG_NEW_DETAILED_INFO = 0x809db6df
MSG_RESEND_REQ = 0x7d861a08
RPC_ERROR = 0x2144ca19
RPC_ANSWER_UNKNOWN = 0x5e2ad36e
RPC_ANSWER_DROPPED_RUNNING = 0xcd78e586
RPC_ANSWER_DROPPED = 0xa43ad8b7
FUTURE_SALT = 0x0949d9dc
FUTURE_SALTS = 0xae500895
PONG = 0x347773c5
DESTROY_SESSION_OK = 0xe22045fc
DESTROY_SESSION_NONE = 0x62d350c9
NEW_SESSION_CREATED = 0x9ec20908
HTTP_WAIT = 0x9299359f
IP_PORT = 0xd433ad73
IP_PORT_SECRET = 0x37982646
ACCESS_POINT_RULE = 0x4679b65f
HELP_CONFIG_SIMPLE = 0x5a592a6c
RPC_DROP_ANSWER = 0x58e4a740
GET_FUTURE_SALTS = 0xb921bd04
PING = 0x7abe77ec
PING_DELAY_DISCONNECT = 0xf3427b8c
DESTROY_SESSION = 0xe7512126
RPC_RESULT = 0xf35c6d01
MESSAGE = 0x5bb8e511
MSG_CONTAINER = 0x73f1f8dc
MSG_COPY = 0xe06046b2
GZIP_PACKED = 0x3072cfa1
MSG_RESEND_ANS_REQ = 0x8610baeb
VECTOR = 0x1cb5c415  # vector {t:Type} # [ t ] = Vector t

# --- API (layer 228, schema/api.tl)
BOOL_TRUE = 0x997275b5
BOOL_FALSE = 0xbc799737
TRUE = 0x3fedd339
ERROR = 0xc4b9f9bb
INVOKE_AFTER_MSG = 0xcb9f372d
INVOKE_AFTER_MSGS = 0x3dc4b4f0
INIT_CONNECTION = 0xc1cd5ea9
INVOKE_WITH_LAYER = 0xda9b0d0d
INVOKE_WITHOUT_UPDATES = 0xbf9459b7
INVOKE_WITH_MESSAGES_RANGE = 0x365275f2
INVOKE_WITH_TAKEOUT = 0xaca9fd2e
INVOKE_WITH_BUSINESS_CONNECTION = 0xdd289f8e
INVOKE_WITH_GOOGLE_PLAY_INTEGRITY = 0x1df92984
INVOKE_WITH_APNS_SECRET = 0x0dae54f8
INVOKE_WITH_RE_CAPTCHA = 0xadbb0f94
UPLOAD_FILE = 0x096a18d5
UPLOAD_FILE_CDN_REDIRECT = 0xf18cda44
UPLOAD_GET_FILE = 0xbe5335be
UPLOAD_SAVE_FILE_PART = 0xb304a621
UPLOAD_SAVE_BIG_FILE_PART = 0xde7b673d
UPLOAD_GET_CDN_FILE = 0x395f69da
UPLOAD_CDN_FILE = 0xa99fca4f
UPLOAD_CDN_FILE_REUPLOAD_NEEDED = 0xeea8e46e
UPLOAD_REUPLOAD_CDN_FILE = 0x9b2754a8
UPLOAD_GET_CDN_FILE_HASHES = 0x91dc3f31
UPLOAD_GET_FILE_HASHES = 0x9156982a
UPLOAD_WEB_FILE = 0x21e753bc
UPLOAD_GET_WEB_FILE = 0x24e6818d
UPDATES_TOO_LONG = 0xe317af7e
UPDATE_SHORT_MESSAGE = 0x313bc7f8
UPDATE_SHORT_CHAT_MESSAGE = 0x4d6deea5
UPDATE_SHORT = 0x78d4dec1
UPDATES_COMBINED = 0x725b04c3
UPDATES = 0x74ae4240
UPDATE_SHORT_SENT_MESSAGE = 0x9015e101
UPDATES_GET_STATE = 0xedd4882a
UPDATES_GET_DIFFERENCE = 0x19c2f763
UPDATES_STATE = 0xa56c2a3e
UPDATES_DIFFERENCE_EMPTY = 0x5d75a138
UPDATES_DIFFERENCE = 0x00f49ca0
UPDATES_DIFFERENCE_SLICE = 0xa8fb1981
UPDATES_DIFFERENCE_TOO_LONG = 0x4afe8f6d
HELP_GET_CONFIG = 0xc4f9186b
CONFIG = 0xcc1a241e
DC_OPTION = 0x18b7a10d
HELP_GET_NEAREST_DC = 0x1fb33026
NEAREST_DC = 0x8e1a1775
HELP_GET_CDN_CONFIG = 0x52029342
CDN_CONFIG = 0x5725e40a
AUTH_EXPORT_AUTHORIZATION = 0xe5bfffcd
AUTH_EXPORTED_AUTHORIZATION = 0xb434e2b8
AUTH_IMPORT_AUTHORIZATION = 0xa57a7dad
AUTH_BIND_TEMP_AUTH_KEY = 0xcdd42a05
AUTH_LOG_OUT = 0x3e72ba19
AUTH_LOGGED_OUT = 0xc3a2835f
AUTH_AUTHORIZATION = 0x2ea2c0d4
AUTH_AUTHORIZATION_SIGN_UP_REQUIRED = 0x44747e9a
AUTH_SEND_CODE = 0xa677244f
AUTH_SENT_CODE = 0x5e002502
AUTH_SIGN_IN = 0x8d52a951
AUTH_SIGN_UP = 0xaac7b717
AUTH_IMPORT_BOT_AUTHORIZATION = 0x67a3ff2c
USERS_GET_USERS = 0x0d91a548
USERS_GET_FULL_USER = 0xb60f5918
INPUT_USER_SELF = 0xf7c1b13f
INPUT_PEER_EMPTY = 0x7f3b18ea
INPUT_PEER_SELF = 0x7da07ec9
USER = 0xb1b8cc83
USER_EMPTY = 0xd3bc4b7a
INPUT_DOCUMENT_FILE_LOCATION = 0xbad07584
INPUT_PHOTO_FILE_LOCATION = 0x40181ffe
INPUT_FILE_LOCATION = 0xdfdaabe1
INPUT_PEER_PHOTO_FILE_LOCATION = 0x37257e99
STORAGE_FILE_UNKNOWN = 0xaa963b05
STORAGE_FILE_PARTIAL = 0x40bc6f52
# fmt: on

#: id -> schema name of every constant above (for logs and for the schema cross-check test)
NAMES: dict[int, str] = {
    0x05162463: "resPQ",
    0x83c95aec: "p_q_inner_data",
    0xa9f55f95: "p_q_inner_data_dc",
    0x3c6a84d4: "p_q_inner_data_temp",
    0x56fddf88: "p_q_inner_data_temp_dc",
    0x75a3f765: "bind_auth_key_inner",
    0x79cb045d: "server_DH_params_fail",
    0xd0e8075c: "server_DH_params_ok",
    0xb5890dba: "server_DH_inner_data",
    0x6643b654: "client_DH_inner_data",
    0x3bcbf734: "dh_gen_ok",
    0x46dc1fb9: "dh_gen_retry",
    0xa69dae02: "dh_gen_fail",
    0xf660e1d4: "destroy_auth_key_ok",
    0x0a9f2259: "destroy_auth_key_none",
    0xea109b13: "destroy_auth_key_fail",
    0x60469778: "req_pq",
    0xbe7e8ef1: "req_pq_multi",
    0xd712e4be: "req_DH_params",
    0xf5045f1f: "set_client_DH_params",
    0xd1435160: "destroy_auth_key",
    0x62d6b459: "msgs_ack",
    0xa7eff811: "bad_msg_notification",
    0xedab447b: "bad_server_salt",
    0xda69fb52: "msgs_state_req",
    0x04deb57d: "msgs_state_info",
    0x8cc0d131: "msgs_all_info",
    0x276d3ec6: "msg_detailed_info",
    0x809db6df: "msg_new_detailed_info",
    0x7d861a08: "msg_resend_req",
    0x2144ca19: "rpc_error",
    0x5e2ad36e: "rpc_answer_unknown",
    0xcd78e586: "rpc_answer_dropped_running",
    0xa43ad8b7: "rpc_answer_dropped",
    0x0949d9dc: "future_salt",
    0xae500895: "future_salts",
    0x347773c5: "pong",
    0xe22045fc: "destroy_session_ok",
    0x62d350c9: "destroy_session_none",
    0x9ec20908: "new_session_created",
    0x9299359f: "http_wait",
    0xd433ad73: "ipPort",
    0x37982646: "ipPortSecret",
    0x4679b65f: "accessPointRule",
    0x5a592a6c: "help.configSimple",
    0x58e4a740: "rpc_drop_answer",
    0xb921bd04: "get_future_salts",
    0x7abe77ec: "ping",
    0xf3427b8c: "ping_delay_disconnect",
    0xe7512126: "destroy_session",
    0xf35c6d01: "rpc_result",
    0x5bb8e511: "message",
    0x73f1f8dc: "msg_container",
    0xe06046b2: "msg_copy",
    0x3072cfa1: "gzip_packed",
    0x8610baeb: "msg_resend_ans_req",
    0x1cb5c415: "vector",
    0x997275b5: "boolTrue",
    0xbc799737: "boolFalse",
    0x3fedd339: "true",
    0xc4b9f9bb: "error",
    0xcb9f372d: "invokeAfterMsg",
    0x3dc4b4f0: "invokeAfterMsgs",
    0xc1cd5ea9: "initConnection",
    0xda9b0d0d: "invokeWithLayer",
    0xbf9459b7: "invokeWithoutUpdates",
    0x365275f2: "invokeWithMessagesRange",
    0xaca9fd2e: "invokeWithTakeout",
    0xdd289f8e: "invokeWithBusinessConnection",
    0x1df92984: "invokeWithGooglePlayIntegrity",
    0x0dae54f8: "invokeWithApnsSecret",
    0xadbb0f94: "invokeWithReCaptcha",
    0x096a18d5: "upload.file",
    0xf18cda44: "upload.fileCdnRedirect",
    0xbe5335be: "upload.getFile",
    0xb304a621: "upload.saveFilePart",
    0xde7b673d: "upload.saveBigFilePart",
    0x395f69da: "upload.getCdnFile",
    0xa99fca4f: "upload.cdnFile",
    0xeea8e46e: "upload.cdnFileReuploadNeeded",
    0x9b2754a8: "upload.reuploadCdnFile",
    0x91dc3f31: "upload.getCdnFileHashes",
    0x9156982a: "upload.getFileHashes",
    0x21e753bc: "upload.webFile",
    0x24e6818d: "upload.getWebFile",
    0xe317af7e: "updatesTooLong",
    0x313bc7f8: "updateShortMessage",
    0x4d6deea5: "updateShortChatMessage",
    0x78d4dec1: "updateShort",
    0x725b04c3: "updatesCombined",
    0x74ae4240: "updates",
    0x9015e101: "updateShortSentMessage",
    0xedd4882a: "updates.getState",
    0x19c2f763: "updates.getDifference",
    0xa56c2a3e: "updates.state",
    0x5d75a138: "updates.differenceEmpty",
    0x00f49ca0: "updates.difference",
    0xa8fb1981: "updates.differenceSlice",
    0x4afe8f6d: "updates.differenceTooLong",
    0xc4f9186b: "help.getConfig",
    0xcc1a241e: "config",
    0x18b7a10d: "dcOption",
    0x1fb33026: "help.getNearestDc",
    0x8e1a1775: "nearestDc",
    0x52029342: "help.getCdnConfig",
    0x5725e40a: "cdnConfig",
    0xe5bfffcd: "auth.exportAuthorization",
    0xb434e2b8: "auth.exportedAuthorization",
    0xa57a7dad: "auth.importAuthorization",
    0xcdd42a05: "auth.bindTempAuthKey",
    0x3e72ba19: "auth.logOut",
    0xc3a2835f: "auth.loggedOut",
    0x2ea2c0d4: "auth.authorization",
    0x44747e9a: "auth.authorizationSignUpRequired",
    0xa677244f: "auth.sendCode",
    0x5e002502: "auth.sentCode",
    0x8d52a951: "auth.signIn",
    0xaac7b717: "auth.signUp",
    0x67a3ff2c: "auth.importBotAuthorization",
    0x0d91a548: "users.getUsers",
    0xb60f5918: "users.getFullUser",
    0xf7c1b13f: "inputUserSelf",
    0x7f3b18ea: "inputPeerEmpty",
    0x7da07ec9: "inputPeerSelf",
    0xb1b8cc83: "user",
    0xd3bc4b7a: "userEmpty",
    0xbad07584: "inputDocumentFileLocation",
    0x40181ffe: "inputPhotoFileLocation",
    0xdfdaabe1: "inputFileLocation",
    0x37257e99: "inputPeerPhotoFileLocation",
    0xaa963b05: "storage.fileUnknown",
    0x40bc6f52: "storage.filePartial",
}
