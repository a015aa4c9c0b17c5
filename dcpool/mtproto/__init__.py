"""MTProto message layer: msg ids, unencrypted/encrypted envelopes, the auth-key handshake and
sessions (spec §3–§5, §8).  Sans-IO: nothing here reads a clock, draws randomness on its own
or touches a socket."""

from .authkey import AuthKey
from .server import ServerConnection, ServerCore
from .session import ClientSession, PendingRequest, RequestState

__all__ = ["AuthKey", "ClientSession", "PendingRequest", "RequestState", "ServerConnection", "ServerCore"]
