"""MTProto message layer: msg ids, unencrypted/encrypted envelopes, the auth-key handshake and
sessions (spec §3–§5, §8).  Sans-IO: nothing here reads a clock, draws randomness on its own
or touches a socket."""

from .authkey import AuthKey

__all__ = ["AuthKey"]
