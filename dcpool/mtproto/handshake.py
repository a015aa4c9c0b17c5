"""The auth-key handshake (spec §5), both roles, as sans-IO state machines.

Theory of operation
-------------------
The handshake creates a 2048-bit key shared by a client and one DC with an RSA-protected
Diffie-Hellman exchange carried in unencrypted messages (§3.1, :mod:`dcpool.mtproto.plain`)::

    client                                              server
    req_pq_multi(nonce)                       ──▶
                                              ◀──       resPQ(nonce, server_nonce, pq, [fingerprints])
    factor pq; new_nonce; RSA(p_q_inner_data*)
    req_DH_params(..., p, q, fp, encrypted_data) ──▶
                                              ◀──       server_DH_params_ok(AES(server_DH_inner_data))
    check prime, g, g_a; b; auth_key = g_a^b
    set_client_DH_params(AES(client_DH_inner_data)) ──▶
                                              ◀──       dh_gen_ok | dh_gen_retry | dh_gen_fail

Both roles are plain objects fed with whole unencrypted-message payloads (transport framing
removed) and returning the payload to send.  Nothing here touches a socket or a clock, and all
randomness comes from the ``rng`` argument (``rng(n) -> n bytes``), so a scripted ``rng`` replays
the official sample exchange byte for byte (tests, §19 V3).

:class:`ClientHandshake` states::

    IDLE ─start()─▶ WAIT_RES_PQ ─resPQ─▶ WAIT_DH_PARAMS ─server_DH_params_ok─▶ WAIT_DH_GEN
    WAIT_DH_GEN ─dh_gen_retry─▶ WAIT_DH_GEN (new b, retry_id = aux_hash)   ─dh_gen_ok─▶ DONE
    any state ─any failed check / dh_gen_fail / server_DH_params_fail─▶ FAILED

Every check of the security guidelines (§5.6, §5.7, §5.9) raises its own exception class from
:mod:`dcpool.errors`; the object is then FAILED for good (further calls raise
:class:`~dcpool.errors.LocalProtocolError`), its secrets are dropped and no key is ever
exposed.  A 4-byte payload (a transport error such as -404) must be handled by the transport
layer before it reaches this object.

:class:`ServerHandshake` is the DC side used by the loopback emulator.  It accepts ``req_pq``
and ``req_pq_multi``, all four ``p_q_inner_data*`` variants in either RSA envelope (§5.4), and
checks everything §5.5 lists.  A bad query raises :class:`~dcpool.errors.HandshakeError` whose
``transport_code`` (-404, or -444 for a test/production DC mismatch) the caller sends as a
transport error; after that every further request of the same handshake gets -404 too.  A new
``req_pq*`` with a fresh nonce starts a new handshake on the same object (Telethon redoes a
handshake on the same connection, §17.2); an identical repeated request gets the identical
answer again (retransmission, §5.9).

Hostile-server knobs: ``ServerHandshake(misbehave={...})`` takes names from
:class:`Misbehavior`; each makes the server break exactly one rule, so tests can prove that the
client raises the precise error for each.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

import attrs

from ..crypto import Rng, aes, dh, factorize, kdf, rsa
from ..errors import (
    AnswerHashMismatch,
    BadDhValue,
    DcPoolError,
    HandshakeError,
    HandshakeSecurityError,
    LocalProtocolError,
    MsgIdParity,
    NewNonceHashMismatch,
    NonceMismatch,
    RemoteProtocolError,
    TLDecodeError,
    UnknownFingerprint,
)
from .authkey import AuthKey
from .plain import next_plain_msg_id, pack_plain, unpack_plain

if TYPE_CHECKING:  # the TL runtime is imported lazily below
    from ..tl import TLObject

__all__ = [
    "ClientHandshake",
    "ClientHandshakeState",
    "HandshakeResult",
    "Misbehavior",
    "ServerHandshake",
    "ServerHandshakeResult",
    "ServerHandshakeState",
    "TELEGRAM_DH_PRIME",
]


#: Telegram's 2048-bit safe prime (spec §5.7); Pyrogram accepts no other.
TELEGRAM_DH_PRIME = dh.TELEGRAM_DH_PRIME

#: How many dh_gen_retry answers a client accepts before giving up (spec §5.9 sets no limit;
#: a collision of 64-bit key ids is astronomically rare, so a server that keeps asking is broken).
DEFAULT_MAX_RETRIES = 5

#: pq is "normally ≤ 2^63-1" (§5.2).  Factoring a bigger number is not our job: refuse it so a
#: hostile server cannot make us spin.
_MAX_PQ_BITS = 64

#: The handshake's AES padding is 0..15 bytes (§5.6, §5.8; tdlib rejects 16 or more).
_MAX_AES_PADDING = 15

_SHA1_SIZE = 20


def _sha1(data: bytes) -> bytes:
    return hashlib.sha1(data).digest()


def _int_be(data: bytes) -> int:
    return int.from_bytes(data, "big")


def _be_min(value: int) -> bytes:
    """Minimal-length big-endian bytes (how tdlib and Telethon send p and q, §17.1)."""
    return value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big")


def _le_long(data: bytes) -> int:
    return int.from_bytes(data, "little", signed=True)


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


def _flip(data: bytes) -> bytes:
    """``data`` with its first byte changed (for the misbehaviour knobs)."""
    return bytes((data[0] ^ 0xFF,)) + data[1:]


def _server_salt(new_nonce: bytes, server_nonce: bytes) -> int:
    # §5.10: new_nonce[0:8] XOR server_nonce[0:8], read as a LE int64.
    return _le_long(_xor(new_nonce[0:8], server_nonce[0:8]))


def _aes_with_hash(data: bytes, key: bytes, iv: bytes, padding: bytes) -> bytes:
    """AES-IGE(SHA1(data) + data + padding): the handshake's inner envelope (§5.6, §5.8)."""
    return aes.ige_encrypt(_sha1(data) + data + padding, key, iv)


def _padding_len(data_len: int) -> int:
    return -(_SHA1_SIZE + data_len) % 16


def _open_aes_with_hash(encrypted: bytes, key: bytes, iv: bytes) -> tuple[object, int]:
    """Decrypt ``SHA1(answer) + answer + padding`` and return (parsed object, padding length).

    Raises AnswerHashMismatch when the length, the TL, the SHA1 or the padding length is wrong:
    all mean the same thing — this is not an answer of this handshake.
    """
    from .. import tl

    if not encrypted or len(encrypted) % 16:
        raise AnswerHashMismatch(f"encrypted length {len(encrypted)} is not a positive multiple of 16")
    plain = aes.ige_decrypt(encrypted, key, iv)
    reader = tl.Reader(plain[_SHA1_SIZE:])
    try:
        obj = reader.read_object()
    except TLDecodeError as exc:
        raise AnswerHashMismatch("decrypted answer does not parse as TL") from exc
    length = reader.pos
    padding = len(plain) - _SHA1_SIZE - length
    if _sha1(plain[_SHA1_SIZE : _SHA1_SIZE + length]) != plain[0:_SHA1_SIZE]:
        raise AnswerHashMismatch("SHA1 of the decrypted answer does not match")
    if not 0 <= padding <= _MAX_AES_PADDING:
        raise AnswerHashMismatch(f"answer padding is {padding} bytes, at most 15 allowed")
    return obj, padding


def _qualname(obj: object) -> str:
    return getattr(type(obj), "QUALNAME", type(obj).__name__)


# =========================================================================== results


@attrs.frozen
class HandshakeResult:
    """What a successful client handshake yields (§5.10).

    ``server_salt`` is ``new_nonce[0:8] XOR server_nonce[0:8]`` as a LE int64;
    ``time_offset`` is ``server_time - now`` in seconds, to add to the local clock when
    generating msg_ids (§5.6).
    """

    auth_key: AuthKey
    server_salt: int
    time_offset: float


@attrs.frozen
class ServerHandshakeResult:
    """What a successful server handshake yields.

    ``dc`` is the dc field of ``p_q_inner_data_dc``/``_temp_dc`` as sent (test DCs + 10000,
    media DCs negative) or None for the legacy variants; ``temp_expires_in`` is set for the
    ``_temp`` variants (a temporary key, §5.11), None for a permanent key.
    """

    auth_key: AuthKey
    server_salt: int
    dc: int | None
    temp_expires_in: int | None


# =========================================================================== client


class ClientHandshakeState(enum.Enum):
    IDLE = "idle"
    WAIT_RES_PQ = "wait_res_pq"
    WAIT_DH_PARAMS = "wait_dh_params"
    WAIT_DH_GEN = "wait_dh_gen"
    DONE = "done"
    FAILED = "failed"


@attrs.define(repr=False)
class _ClientSecrets:
    """Everything of one client handshake that must not outlive it (dropped on DONE/FAILED)."""

    nonce: bytes
    server_nonce: bytes = b""
    new_nonce: bytes = b""
    tmp_key: bytes = b""
    tmp_iv: bytes = b""
    dh_prime: int = 0
    g: int = 0
    g_a: int = 0
    auth_key: AuthKey | None = None
    time_offset: float = 0.0
    retries: int = 0


class ClientHandshake:
    """The client side of the auth-key handshake (spec §5).

    ``rsa_keys`` maps fingerprints (as the server lists them in resPQ) to public keys, e.g.
    :data:`dcpool.crypto.rsa.TELEGRAM_PRODUCTION_KEYS`; the first fingerprint of resPQ found
    in it is used.  ``dc_id`` is the dc as it goes on the wire (caller adds 10000 for test DCs
    and negates for media DCs, §5.4); it is sent only with the ``_dc`` inner-data variants.

    By default the current formats are used: ``p_q_inner_data_dc`` (``_temp_dc`` when
    ``temp_expires_in`` is given) in the RSA_PAD envelope.  ``legacy=True`` sends
    ``p_q_inner_data`` (``_temp``) in the legacy SHA1 envelope, like Telethon and Pyrogram.
    """

    def __init__(
        self,
        rsa_keys: dict[int, rsa.RsaPublicKey],
        dc_id: int,
        rng: Rng,
        *,
        legacy: bool = False,
        temp_expires_in: int | None = None,
        max_retries: int = DEFAULT_MAX_RETRIES,
    ) -> None:
        if not rsa_keys:
            raise LocalProtocolError("ClientHandshake needs at least one RSA public key")
        if temp_expires_in is not None and temp_expires_in <= 0:
            raise LocalProtocolError(f"temp_expires_in must be positive, got {temp_expires_in}")
        self._rsa_keys = dict(rsa_keys)
        self._dc_id = dc_id
        self._rng = rng
        self._legacy = legacy
        self._temp_expires_in = temp_expires_in
        self._max_retries = max_retries
        self._state = ClientHandshakeState.IDLE
        self._secrets: _ClientSecrets | None = None
        self._last_msg_id = 0
        #: the fingerprint chosen from resPQ (None until then); public information
        self.fingerprint: int | None = None

    @property
    def state(self) -> ClientHandshakeState:
        return self._state

    def __repr__(self) -> str:
        return (
            f"<ClientHandshake dc={self._dc_id} state={self._state.value} "
            f"{'legacy' if self._legacy else 'rsa_pad'}"
            f"{'' if self._temp_expires_in is None else f' temp={self._temp_expires_in}s'}>"
        )

    # ------------------------------------------------------------------ public API

    def start(self, now: float) -> bytes:
        """The first unencrypted message to send: ``req_pq_multi`` (§5.1)."""
        from ..tl import mtproto

        if self._state is not ClientHandshakeState.IDLE:
            raise LocalProtocolError(f"start() called in state {self._state.value}")
        nonce = self._random(16)
        self._secrets = _ClientSecrets(nonce=nonce)
        self._state = ClientHandshakeState.WAIT_RES_PQ
        # req_pq_multi#be7e8ef1 nonce:int128 = ResPQ;
        return self._pack(now, mtproto.ReqPqMulti(nonce=nonce).to_bytes())

    def receive(self, payload: bytes, now: float) -> bytes | HandshakeResult:
        """Feed one server payload; returns the next payload to send or the final result.

        Raises the precise :mod:`dcpool.errors` class on any failed check, after which the
        handshake is dead.
        """
        state = self._state
        if state is ClientHandshakeState.IDLE:
            raise LocalProtocolError("receive() before start()")
        if state is ClientHandshakeState.DONE:
            raise LocalProtocolError("the handshake is already complete")
        if state is ClientHandshakeState.FAILED:
            raise LocalProtocolError("the handshake failed; start a new ClientHandshake")
        try:
            obj = self._decode(payload)
            if state is ClientHandshakeState.WAIT_RES_PQ:
                return self._on_res_pq(obj, now)
            if state is ClientHandshakeState.WAIT_DH_PARAMS:
                return self._on_server_dh_params(obj, now)
            return self._on_dh_gen(obj, now)
        except BaseException:
            self._fail()
            raise

    # ------------------------------------------------------------------ steps

    def _on_res_pq(self, obj: object, now: float) -> bytes:
        from ..tl import mtproto

        s = self._require_secrets()
        # resPQ#05162463 nonce:int128 server_nonce:int128 pq:string
        #     server_public_key_fingerprints:Vector<long> = ResPQ;
        if not isinstance(obj, mtproto.ResPQ):
            raise RemoteProtocolError(f"expected resPQ, got {_qualname(obj)}")
        if obj.nonce != s.nonce:
            raise NonceMismatch("resPQ.nonce differs from ours")
        s.server_nonce = obj.server_nonce

        # §5.2: use the first fingerprint the server offers that we know.
        for fingerprint in obj.server_public_key_fingerprints:
            if fingerprint in self._rsa_keys:
                break
        else:
            raise UnknownFingerprint(
                "none of the server's RSA fingerprints is known: "
                + ", ".join(f"{fp & 0xFFFFFFFFFFFFFFFF:#018x}" for fp in obj.server_public_key_fingerprints)
            )
        self.fingerprint = fingerprint
        key = self._rsa_keys[fingerprint]

        # §5.3: factor pq (the proof of work) into primes p < q.
        pq = _int_be(obj.pq)
        if pq.bit_length() > _MAX_PQ_BITS:
            raise HandshakeSecurityError(f"pq has {pq.bit_length()} bits, at most 64 expected")
        try:
            p, q = factorize.factorize_pq(pq)
        except ValueError as exc:
            raise HandshakeSecurityError(f"pq cannot be factored into p < q: {exc}") from exc
        if not (1 < p < q and p * q == pq):
            raise HandshakeSecurityError("pq is not a product of two distinct factors")

        # §5.4: the inner data, then the RSA envelope.
        s.new_nonce = self._random(32)
        common = dict(
            pq=obj.pq, p=_be_min(p), q=_be_min(q),
            nonce=s.nonce, server_nonce=s.server_nonce, new_nonce=s.new_nonce,
        )
        temp = self._temp_expires_in
        inner: TLObject  # one of the four P_Q_inner_data constructors (typed by the TL stubs)
        if self._legacy:
            if temp is None:
                # p_q_inner_data#83c95aec pq:string p:string q:string nonce:int128
                #     server_nonce:int128 new_nonce:int256 = P_Q_inner_data;
                inner = mtproto.PQInnerData(**common)
            else:
                # p_q_inner_data_temp#3c6a84d4 ... new_nonce:int256 expires_in:int = P_Q_inner_data;
                inner = mtproto.PQInnerDataTemp(**common, expires_in=temp)
            encrypted = rsa.encrypt_legacy(inner.to_bytes(), key, self._rng)
        else:
            if temp is None:
                # p_q_inner_data_dc#a9f55f95 ... new_nonce:int256 dc:int = P_Q_inner_data;
                inner = mtproto.PQInnerDataDc(**common, dc=self._dc_id)
            else:
                # p_q_inner_data_temp_dc#56fddf88 ... dc:int expires_in:int = P_Q_inner_data;
                inner = mtproto.PQInnerDataTempDc(**common, dc=self._dc_id, expires_in=temp)
            encrypted = rsa.encrypt_rsa_pad(inner.to_bytes(), key, self._rng)

        self._state = ClientHandshakeState.WAIT_DH_PARAMS
        # req_DH_params#d712e4be nonce:int128 server_nonce:int128 p:string q:string
        #     public_key_fingerprint:long encrypted_data:string = Server_DH_Params;
        request = mtproto.ReqDHParams(
            nonce=s.nonce, server_nonce=s.server_nonce, p=_be_min(p), q=_be_min(q),
            public_key_fingerprint=fingerprint, encrypted_data=encrypted,
        )
        return self._pack(now, request.to_bytes())

    def _on_server_dh_params(self, obj: object, now: float) -> bytes:
        from ..tl import mtproto

        s = self._require_secrets()
        if isinstance(obj, mtproto.ServerDHParamsFail):
            # server_DH_params_fail#79cb045d nonce:int128 server_nonce:int128
            #     new_nonce_hash:int128 = Server_DH_Params;
            self._check_nonces(obj, "server_DH_params_fail")
            # §5.5: only a server that decrypted our new_nonce can produce SHA1(new_nonce)[4:20].
            if obj.new_nonce_hash != _sha1(s.new_nonce)[4:20]:
                raise NewNonceHashMismatch("server_DH_params_fail.new_nonce_hash is wrong")
            raise HandshakeError("the server answered server_DH_params_fail")
        # server_DH_params_ok#d0e8075c nonce:int128 server_nonce:int128
        #     encrypted_answer:string = Server_DH_Params;
        if not isinstance(obj, mtproto.ServerDHParamsOk):
            raise RemoteProtocolError(f"expected server_DH_params_ok, got {_qualname(obj)}")
        self._check_nonces(obj, "server_DH_params_ok")

        # §5.6: decrypt with the temporary key; SHA1 + at most 15 bytes of padding.
        s.tmp_key, s.tmp_iv = kdf.tmp_aes_key_iv(s.server_nonce, s.new_nonce)
        answer, _ = _open_aes_with_hash(obj.encrypted_answer, s.tmp_key, s.tmp_iv)
        # server_DH_inner_data#b5890dba nonce:int128 server_nonce:int128 g:int dh_prime:string
        #     g_a:string server_time:int = Server_DH_inner_data;
        if not isinstance(answer, mtproto.ServerDHInnerData):
            raise RemoteProtocolError(f"expected server_DH_inner_data, got {_qualname(answer)}")
        self._check_nonces(answer, "server_DH_inner_data")

        # §5.7: safe 2048-bit prime, g in 2..7 and a quadratic residue, g_a in range + window.
        dh_prime = _int_be(answer.dh_prime)
        dh.check_dh_params(answer.g, dh_prime)
        g_a = _int_be(answer.g_a)
        dh.check_g_x(g_a, dh_prime)
        s.dh_prime, s.g, s.g_a = dh_prime, answer.g, g_a
        # §5.6: remember the clock offset for msg_id generation.
        s.time_offset = float(answer.server_time) - now

        self._state = ClientHandshakeState.WAIT_DH_GEN
        return self._set_client_dh_params(retry_id=0, now=now)

    def _on_dh_gen(self, obj: object, now: float) -> bytes | HandshakeResult:
        from ..tl import mtproto

        s = self._require_secrets()
        assert s.auth_key is not None
        if isinstance(obj, mtproto.DhGenOk):
            number, received = 1, obj.new_nonce_hash1
        elif isinstance(obj, mtproto.DhGenRetry):
            number, received = 2, obj.new_nonce_hash2
        elif isinstance(obj, mtproto.DhGenFail):
            number, received = 3, obj.new_nonce_hash3
        else:
            raise RemoteProtocolError(f"expected dh_gen_ok/retry/fail, got {_qualname(obj)}")
        self._check_nonces(obj, _qualname(obj))
        # §5.9: a different N per answer keeps an attacker from turning ok into retry.
        if received != kdf.new_nonce_hash(s.new_nonce, number, s.auth_key.aux_hash):
            raise NewNonceHashMismatch(f"new_nonce_hash{number} is wrong")

        if number == 1:
            # dh_gen_ok#3bcbf734 nonce:int128 server_nonce:int128 new_nonce_hash1:int128
            result = HandshakeResult(
                auth_key=s.auth_key,
                server_salt=_server_salt(s.new_nonce, s.server_nonce),
                time_offset=s.time_offset,
            )
            self._state = ClientHandshakeState.DONE
            self._secrets = None  # §5.9: both sides drop all temporary data
            return result
        if number == 3:
            # dh_gen_fail#a69dae02 nonce:int128 server_nonce:int128 new_nonce_hash3:int128
            raise HandshakeError("the server answered dh_gen_fail")
        # dh_gen_retry#46dc1fb9 nonce:int128 server_nonce:int128 new_nonce_hash2:int128
        s.retries += 1
        if s.retries > self._max_retries:
            raise HandshakeError(f"the server asked for more than {self._max_retries} retries")
        # §5.8: retry_id = the previous attempt's auth_key_aux_hash as a LE long; new b.
        return self._set_client_dh_params(retry_id=_le_long(s.auth_key.aux_hash), now=now)

    def _set_client_dh_params(self, retry_id: int, now: float) -> bytes:
        from ..tl import mtproto

        s = self._require_secrets()
        # §5.7 item 4-5: a fresh 2048-bit b whose g_b passes the same window we demand of g_a.
        for _ in range(64):
            b = _int_be(self._random(256))
            g_b = pow(s.g, b, s.dh_prime)
            try:
                dh.check_g_x(g_b, s.dh_prime)
            except BadDhValue:
                continue
            break
        else:
            raise LocalProtocolError("rng keeps producing unusable DH exponents")
        s.auth_key = AuthKey.from_bytes(pow(s.g_a, b, s.dh_prime).to_bytes(256, "big"))
        del b

        # client_DH_inner_data#6643b654 nonce:int128 server_nonce:int128 retry_id:long
        #     g_b:string = Client_DH_Inner_Data;
        data = mtproto.ClientDHInnerData(
            nonce=s.nonce, server_nonce=s.server_nonce, retry_id=retry_id,
            g_b=g_b.to_bytes(256, "big"),
        ).to_bytes()
        encrypted = _aes_with_hash(data, s.tmp_key, s.tmp_iv, self._random(_padding_len(len(data))))
        # set_client_DH_params#f5045f1f nonce:int128 server_nonce:int128
        #     encrypted_data:string = Set_client_DH_params_answer;
        request = mtproto.SetClientDHParams(
            nonce=s.nonce, server_nonce=s.server_nonce, encrypted_data=encrypted
        )
        return self._pack(now + s.time_offset, request.to_bytes())

    # ------------------------------------------------------------------ helpers

    def _decode(self, payload: bytes) -> object:
        from .. import tl

        message = unpack_plain(payload)
        # §3.1/§3.3: the server gives its handshake answers odd (server) msg_ids.
        if message.msg_id % 2 != 1:
            raise MsgIdParity(f"server msg_id {message.msg_id} is not odd")
        return tl.loads(message.body)

    def _check_nonces(self, obj: object, what: str) -> None:
        s = self._require_secrets()
        if obj.nonce != s.nonce:  # type: ignore[attr-defined]
            raise NonceMismatch(f"{what}.nonce differs from ours")
        if obj.server_nonce != s.server_nonce:  # type: ignore[attr-defined]
            raise NonceMismatch(f"{what}.server_nonce differs from resPQ's")

    def _require_secrets(self) -> _ClientSecrets:
        if self._secrets is None:  # pragma: no cover  (guarded by the state checks)
            raise LocalProtocolError("no handshake in progress")
        return self._secrets

    def _random(self, n: int) -> bytes:
        data = self._rng(n)
        if len(data) != n:
            raise LocalProtocolError(f"rng returned {len(data)} bytes instead of {n}")
        return data

    def _pack(self, now: float, body: bytes) -> bytes:
        self._last_msg_id = next_plain_msg_id(now, self._last_msg_id, server=False)
        return pack_plain(self._last_msg_id, body)

    def _fail(self) -> None:
        self._state = ClientHandshakeState.FAILED
        self._secrets = None


# =========================================================================== server


class ServerHandshakeState(enum.Enum):
    WAIT_REQ_PQ = "wait_req_pq"
    WAIT_REQ_DH_PARAMS = "wait_req_dh_params"
    WAIT_SET_CLIENT_DH_PARAMS = "wait_set_client_dh_params"
    DONE = "done"
    FAILED = "failed"


class Misbehavior(enum.Enum):
    """Deliberate faults of :class:`ServerHandshake` for tests (and the hostile-server emulator).

    The comment after each names what a correct client must raise.
    """

    WRONG_NONCE = "wrong_nonce"                  # resPQ.nonce changed            -> NonceMismatch
    WRONG_SERVER_NONCE = "wrong_server_nonce"    # server_DH_params_ok.server_nonce changed -> NonceMismatch
    WRONG_INNER_NONCE = "wrong_inner_nonce"      # server_DH_inner_data.nonce changed -> NonceMismatch
    WRONG_DH_GEN_NONCE = "wrong_dh_gen_nonce"    # dh_gen_ok.server_nonce changed -> NonceMismatch
    UNKNOWN_FINGERPRINT = "unknown_fingerprint"  # resPQ lists only a fingerprint nobody has -> UnknownFingerprint
    BAD_PQ = "bad_pq"                            # pq is a prime                  -> HandshakeSecurityError
    CORRUPT_ANSWER_HASH = "corrupt_answer_hash"  # SHA1 before server_DH_inner_data wrong -> AnswerHashMismatch
    LONG_ANSWER_PADDING = "long_answer_padding"  # 16+ bytes of padding           -> AnswerHashMismatch
    UNSAFE_PRIME = "unsafe_prime"                # 2048-bit prime, (p-1)/2 composite -> BadDhPrime
    SHORT_PRIME = "short_prime"                  # 1024-bit safe prime            -> BadDhPrime
    G_OUT_OF_RANGE = "g_out_of_range"            # g = 1                          -> BadDhG
    G_NOT_RESIDUE = "g_not_residue"              # g in 2..7 but not a QR mod p   -> BadDhG
    G_A_OUT_OF_RANGE = "g_a_out_of_range"        # g_a = p - 1                    -> BadDhValue
    G_A_OUTSIDE_WINDOW = "g_a_outside_window"    # g_a = g^5 < 2^1984             -> BadDhValue
    BAD_NEW_NONCE_HASH = "bad_new_nonce_hash"    # dh_gen_ok.new_nonce_hash1 wrong -> NewNonceHashMismatch
    PARAMS_FAIL = "params_fail"                  # server_DH_params_fail, right hash -> HandshakeError
    PARAMS_FAIL_BAD_HASH = "params_fail_bad_hash"  # server_DH_params_fail, wrong hash -> NewNonceHashMismatch
    DH_GEN_FAIL = "dh_gen_fail"                  # dh_gen_fail                    -> HandshakeError
    ALWAYS_RETRY = "always_retry"                # dh_gen_retry forever           -> HandshakeError


#: Faults that replace the DH group (the server then skips its own window check on g_a).
_DH_FAULTS = frozenset({
    Misbehavior.UNSAFE_PRIME, Misbehavior.SHORT_PRIME, Misbehavior.G_OUT_OF_RANGE,
    Misbehavior.G_NOT_RESIDUE, Misbehavior.G_A_OUT_OF_RANGE, Misbehavior.G_A_OUTSIDE_WINDOW,
})

#: A 2048-bit prime ≡ 2 (mod 3) (so g = 3 passes the residue test) whose (p-1)/2 is composite:
#: the first such prime above Telegram's (found with 20 Miller-Rabin rounds each way).
_UNSAFE_PRIME = TELEGRAM_DH_PRIME + 570

#: RFC 2409 group 2: a well-known 1024-bit safe prime, i.e. right kind, wrong size.
_SHORT_PRIME = int(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A0879"
    "8E3404DDEF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B"
    "0BFF5CB6F406B7EDEE386BFB5A899FA5AE9F24117C4B1FE649286651ECE65381FFFFFFFFFFFFFFFF",
    16,
)

#: 2^62 - 57, a prime: what BAD_PQ sends as pq.
_PRIME_PQ = (1 << 62) - 57

#: After this many dh_gen_retry answers in one handshake the server gives up (dh_gen_fail).
_SERVER_MAX_RETRIES = 8

# §5.2: p and q are random primes in [2^30, 2^31) so both are 4 bytes without a leading zero
# (Pyrogram encodes them as exactly 4 bytes; anything ≥ 2^32 breaks it, §17.1).
_PQ_PRIME_LOW = 1 << 30
_PQ_PRIME_HIGH = 1 << 31


def _is_prime_u32(n: int) -> bool:
    """Deterministic Miller-Rabin for n < 3,215,031,751 (bases 2, 3, 5, 7 suffice)."""
    if n < 2:
        return False
    for small in (2, 3, 5, 7):
        if n % small == 0:
            return n == small
    d, r = n - 1, 0
    while d % 2 == 0:
        d //= 2
        r += 1
    for a in (2, 3, 5, 7):
        x = pow(a, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(r - 1):
            x = x * x % n
            if x == n - 1:
                break
        else:
            return False
    return True


def _random_pq_prime(rng: Rng) -> int:
    # Start at a random odd point of [2^30, 2^31) and walk up to the next prime (wrapping).
    candidate = _PQ_PRIME_LOW | (int.from_bytes(rng(4), "big") % _PQ_PRIME_LOW) | 1
    while not _is_prime_u32(candidate):
        candidate += 2
        if candidate >= _PQ_PRIME_HIGH:
            candidate = _PQ_PRIME_LOW + 1
    return candidate


def _bad_query(message: str, code: int = -404) -> HandshakeError:
    return HandshakeError(message, transport_code=code)


@attrs.define(repr=False)
class _ServerSecrets:
    """State of one server handshake attempt (dropped on DONE/FAILED/reset)."""

    nonce: bytes
    server_nonce: bytes
    pq: int
    new_nonce: bytes = b""
    tmp_key: bytes = b""
    tmp_iv: bytes = b""
    dh_prime: int = 0
    a: int = 0
    dc: int | None = None
    temp_expires_in: int | None = None
    retries: int = 0
    expected_retry_id: int = 0


class ServerHandshake:
    """The DC side of the auth-key handshake (spec §5), for the loopback emulator.

    ``receive(payload, now)`` returns ``(reply_payload, result)``: ``result`` is set once,
    together with the ``dh_gen_ok`` reply.  A bad query raises
    :class:`~dcpool.errors.HandshakeError` with ``transport_code`` -404 (or -444 when a test DC
    id reaches a production server or the other way round, or the dc is not ``expected_dc``);
    the caller sends that transport error.

    ``key_exists(key_id)`` is asked before accepting a new key; True makes the server answer
    ``dh_gen_retry`` (§5.9).  ``expected_dc`` is the plain DC number (1..5, without the +10000
    test offset or the media sign); ``test_mode`` says whether this server is a test DC.
    ``msg_ids`` may supply the server's msg_id generator (e.g. one shared by all connections of
    an emulated DC); by default ids come from ``now`` and only increase within this object.
    ``misbehave`` is a set of :class:`Misbehavior` (or their string values).
    """

    def __init__(
        self,
        private_keys: list[rsa.RsaPrivateKey],
        rng: Rng,
        *,
        dh_prime: int = TELEGRAM_DH_PRIME,
        g: int = 3,
        key_exists: Callable[[int], bool] = lambda key_id: False,
        expected_dc: int | None = None,
        test_mode: bool = False,
        misbehave: Iterable[Misbehavior | str] = (),
        msg_ids: Callable[[float], int] | None = None,
    ) -> None:
        if not private_keys:
            raise LocalProtocolError("ServerHandshake needs at least one RSA private key")
        self._keys: dict[int, rsa.RsaPrivateKey] = {
            key.public_key.fingerprint: key for key in private_keys
        }
        self._rng = rng
        self._dh_prime = dh_prime
        self._g = g
        self._key_exists = key_exists
        self._expected_dc = expected_dc
        self._test_mode = test_mode
        try:
            self.misbehave: frozenset[Misbehavior] = frozenset(Misbehavior(m) for m in misbehave)
        except ValueError as exc:
            raise LocalProtocolError(str(exc)) from exc
        self._msg_ids = msg_ids
        self._last_msg_id = 0
        self._state = ServerHandshakeState.WAIT_REQ_PQ
        self._secrets: _ServerSecrets | None = None
        # Retransmission (§5.9): the last request body and the reply we gave to it.
        self._last_request: bytes | None = None
        self._last_reply: bytes | None = None
        #: number of handshakes completed by this object (a connection may run several)
        self.completed = 0

    @property
    def state(self) -> ServerHandshakeState:
        return self._state

    def __repr__(self) -> str:
        faults = f" misbehave={sorted(m.value for m in self.misbehave)}" if self.misbehave else ""
        return f"<ServerHandshake state={self._state.value} completed={self.completed}{faults}>"

    # ------------------------------------------------------------------ public API

    def receive(
        self, payload: bytes, now: float
    ) -> tuple[bytes | None, ServerHandshakeResult | None]:
        """Handle one unencrypted message from the client (see the class docstring)."""
        from .. import tl
        from ..tl import mtproto

        try:
            body = unpack_plain(payload).body
            obj = tl.loads(body)
        except (TLDecodeError, RemoteProtocolError) as exc:
            raise self._fail(f"undecodable handshake message: {exc}") from exc

        # req_pq#60469778 nonce:int128 = ResPQ;
        # req_pq_multi#be7e8ef1 nonce:int128 = ResPQ;
        if isinstance(obj, (mtproto.ReqPq, mtproto.ReqPqMulti)):
            if not (
                self._state is ServerHandshakeState.WAIT_REQ_DH_PARAMS
                and body == self._last_request
            ):
                # A fresh nonce (or any req_pq after the previous handshake ended): start over.
                return self._reply(now, body, self._on_req_pq(obj)), None
        if self._state is not ServerHandshakeState.FAILED and body == self._last_request:
            # §5.9: an identical repeated request gets the identical answer.
            assert self._last_reply is not None
            return self._pack(now, self._last_reply), None
        if self._state is ServerHandshakeState.FAILED:
            # §5.5: after a failure every further request of this handshake gets -404.
            raise _bad_query("this handshake already failed; start over with req_pq_multi")
        try:
            if isinstance(obj, mtproto.ReqDHParams):
                reply, result = self._on_req_dh_params(obj, now), None
            elif isinstance(obj, mtproto.SetClientDHParams):
                reply, result = self._on_set_client_dh_params(obj)
            else:
                raise _bad_query(f"{_qualname(obj)} is not a handshake request")
        except HandshakeError as exc:
            self._state = ServerHandshakeState.FAILED
            self._secrets = None
            raise exc
        return self._reply(now, body, reply), result

    # ------------------------------------------------------------------ steps

    def _on_req_pq(self, obj: object) -> bytes:
        from ..tl import mtproto

        self._reset()
        m = self.misbehave
        p = _random_pq_prime(self._rng)
        q = _random_pq_prime(self._rng)
        while q == p:
            q = _random_pq_prime(self._rng)
        pq = p * q
        s = _ServerSecrets(nonce=obj.nonce, server_nonce=self._rng(16), pq=pq)  # type: ignore[attr-defined]
        self._secrets = s
        self._state = ServerHandshakeState.WAIT_REQ_DH_PARAMS
        fingerprints = list(self._keys)
        if Misbehavior.UNKNOWN_FINGERPRINT in m:
            fingerprints = [~fp for fp in fingerprints]
        sent_pq = _PRIME_PQ if Misbehavior.BAD_PQ in m else pq
        # resPQ#05162463 nonce:int128 server_nonce:int128 pq:string
        #     server_public_key_fingerprints:Vector<long> = ResPQ;
        return mtproto.ResPQ(
            nonce=_flip(s.nonce) if Misbehavior.WRONG_NONCE in m else s.nonce,
            server_nonce=s.server_nonce,
            pq=sent_pq.to_bytes(8, "big"),
            server_public_key_fingerprints=fingerprints,
        ).to_bytes()

    def _on_req_dh_params(self, obj: object, now: float) -> bytes:
        from .. import tl
        from ..tl import mtproto

        s = self._require(ServerHandshakeState.WAIT_REQ_DH_PARAMS, obj)
        # req_DH_params#d712e4be nonce:int128 server_nonce:int128 p:string q:string
        #     public_key_fingerprint:long encrypted_data:string = Server_DH_Params;
        self._check_nonces(obj, s)
        key = self._keys.get(obj.public_key_fingerprint)  # type: ignore[attr-defined]
        if key is None:
            raise _bad_query("req_DH_params names an RSA key we do not have")
        p, q = _int_be(obj.p), _int_be(obj.q)  # type: ignore[attr-defined]
        if not (1 < p < q and p * q == s.pq):
            raise _bad_query("req_DH_params: p * q is not our pq, or p >= q")

        # §5.4: legacy envelope or RSA_PAD; decrypt_inner_data tries both.
        try:
            inner_bytes = rsa.decrypt_inner_data(obj.encrypted_data, key)  # type: ignore[attr-defined]
            inner = tl.Reader(inner_bytes).read_object()
        except Exception as exc:  # any failure to open the envelope is a bad query
            raise _bad_query(f"req_DH_params: encrypted_data does not decrypt: {exc}") from exc
        variants = (
            mtproto.PQInnerData, mtproto.PQInnerDataDc,
            mtproto.PQInnerDataTemp, mtproto.PQInnerDataTempDc,
        )
        if not isinstance(inner, variants):
            raise _bad_query(f"encrypted_data holds {_qualname(inner)}, not p_q_inner_data*")
        # §5.5: the inner data must repeat pq/p/q/nonce/server_nonce.
        if (_int_be(inner.pq), _int_be(inner.p), _int_be(inner.q)) != (s.pq, p, q):
            raise _bad_query("p_q_inner_data: pq/p/q differ from the request")
        self._check_nonces(inner, s)
        dc = inner.dc if isinstance(inner, (mtproto.PQInnerDataDc, mtproto.PQInnerDataTempDc)) else None
        temp = (
            inner.expires_in
            if isinstance(inner, (mtproto.PQInnerDataTemp, mtproto.PQInnerDataTempDc))
            else None
        )
        if temp is not None and temp <= 0:
            raise _bad_query(f"p_q_inner_data_temp: expires_in {temp} is not positive")
        if dc is not None:
            is_test = abs(dc) > 10000
            if is_test != self._test_mode:
                # §5.4: a test dc id at a production DC, or the other way round -> -444.
                raise _bad_query(f"dc {dc} is for the {'test' if is_test else 'production'} "
                                 "network", code=-444)
            plain_dc = abs(dc) - (10000 if is_test else 0)
            if self._expected_dc is not None and plain_dc != self._expected_dc:
                raise _bad_query(f"dc {dc} is not this DC ({self._expected_dc})", code=-444)
        s.new_nonce, s.dc, s.temp_expires_in = inner.new_nonce, dc, temp
        s.tmp_key, s.tmp_iv = kdf.tmp_aes_key_iv(s.server_nonce, s.new_nonce)
        self._state = ServerHandshakeState.WAIT_SET_CLIENT_DH_PARAMS

        m = self.misbehave
        if Misbehavior.PARAMS_FAIL in m or Misbehavior.PARAMS_FAIL_BAD_HASH in m:
            good = _sha1(s.new_nonce)[4:20]
            # server_DH_params_fail#79cb045d nonce:int128 server_nonce:int128
            #     new_nonce_hash:int128 = Server_DH_Params;
            return mtproto.ServerDHParamsFail(
                nonce=s.nonce, server_nonce=s.server_nonce,
                new_nonce_hash=_flip(good) if Misbehavior.PARAMS_FAIL_BAD_HASH in m else good,
            ).to_bytes()

        # §5.6-§5.7: our half of DH.
        dh_prime, g = self._dh_prime, self._g
        if Misbehavior.UNSAFE_PRIME in m:
            dh_prime = _UNSAFE_PRIME
        if Misbehavior.SHORT_PRIME in m:
            dh_prime = _SHORT_PRIME
        if Misbehavior.G_OUT_OF_RANGE in m:
            g = 1
        if Misbehavior.G_NOT_RESIDUE in m:
            g = next(c for c in range(2, 8) if not _is_residue_generator(c, dh_prime))
        s.dh_prime = dh_prime
        s.a, g_a = self._generate_a(g, dh_prime, strict=not (m & _DH_FAULTS))
        if Misbehavior.G_A_OUT_OF_RANGE in m:
            g_a = dh_prime - 1
        if Misbehavior.G_A_OUTSIDE_WINDOW in m:
            s.a = 5
            g_a = pow(g, s.a, dh_prime)

        # server_DH_inner_data#b5890dba nonce:int128 server_nonce:int128 g:int dh_prime:string
        #     g_a:string server_time:int = Server_DH_inner_data;
        answer = mtproto.ServerDHInnerData(
            nonce=_flip(s.nonce) if Misbehavior.WRONG_INNER_NONCE in m else s.nonce,
            server_nonce=s.server_nonce,
            g=g,
            dh_prime=_be_min(dh_prime),
            g_a=g_a.to_bytes(max(256, (g_a.bit_length() + 7) // 8), "big"),
            server_time=int(now),
        ).to_bytes()
        pad = _padding_len(len(answer)) + (16 if Misbehavior.LONG_ANSWER_PADDING in m else 0)
        answer_with_hash = _sha1(answer) + answer + self._rng(pad)
        if Misbehavior.CORRUPT_ANSWER_HASH in m:
            answer_with_hash = _flip(answer_with_hash)
        encrypted = aes.ige_encrypt(answer_with_hash, s.tmp_key, s.tmp_iv)
        # server_DH_params_ok#d0e8075c nonce:int128 server_nonce:int128
        #     encrypted_answer:string = Server_DH_Params;
        return mtproto.ServerDHParamsOk(
            nonce=s.nonce,
            server_nonce=_flip(s.server_nonce) if Misbehavior.WRONG_SERVER_NONCE in m else s.server_nonce,
            encrypted_answer=encrypted,
        ).to_bytes()

    def _on_set_client_dh_params(self, obj: object) -> tuple[bytes, ServerHandshakeResult | None]:
        from ..tl import mtproto

        s = self._require(ServerHandshakeState.WAIT_SET_CLIENT_DH_PARAMS, obj)
        # set_client_DH_params#f5045f1f nonce:int128 server_nonce:int128
        #     encrypted_data:string = Set_client_DH_params_answer;
        self._check_nonces(obj, s)
        try:
            inner, _ = _open_aes_with_hash(obj.encrypted_data, s.tmp_key, s.tmp_iv)  # type: ignore[attr-defined]
        except AnswerHashMismatch as exc:
            raise _bad_query(f"set_client_DH_params: {exc}") from exc
        # client_DH_inner_data#6643b654 nonce:int128 server_nonce:int128 retry_id:long
        #     g_b:string = Client_DH_Inner_Data;
        if not isinstance(inner, mtproto.ClientDHInnerData):
            raise _bad_query(f"encrypted_data holds {_qualname(inner)}, not client_DH_inner_data")
        self._check_nonces(inner, s)
        if inner.retry_id != s.expected_retry_id:
            raise _bad_query(f"retry_id {inner.retry_id} is not {s.expected_retry_id}")
        g_b = _int_be(inner.g_b)
        try:
            dh.check_g_x(g_b, s.dh_prime)  # §5.7 items 3-4, applied by the server to g_b
        except BadDhValue as exc:
            raise _bad_query(f"client_DH_inner_data: {exc}") from exc

        # §5.9: auth_key = g_b^a, unique by key id, else dh_gen_retry.
        auth_key = AuthKey.from_bytes(pow(g_b, s.a, s.dh_prime).to_bytes(256, "big"))
        m = self.misbehave
        collision = self._key_exists(auth_key.key_id) or Misbehavior.ALWAYS_RETRY in m
        if collision and s.retries < _SERVER_MAX_RETRIES:
            s.retries += 1
            s.expected_retry_id = _le_long(auth_key.aux_hash)
            # dh_gen_retry#46dc1fb9 nonce:int128 server_nonce:int128 new_nonce_hash2:int128
            return mtproto.DhGenRetry(
                nonce=s.nonce, server_nonce=s.server_nonce,
                new_nonce_hash2=kdf.new_nonce_hash(s.new_nonce, 2, auth_key.aux_hash),
            ).to_bytes(), None
        if collision or Misbehavior.DH_GEN_FAIL in m:
            self._state = ServerHandshakeState.FAILED
            self._secrets = None
            # dh_gen_fail#a69dae02 nonce:int128 server_nonce:int128 new_nonce_hash3:int128
            return mtproto.DhGenFail(
                nonce=s.nonce, server_nonce=s.server_nonce,
                new_nonce_hash3=kdf.new_nonce_hash(s.new_nonce, 3, auth_key.aux_hash),
            ).to_bytes(), None

        hash1 = kdf.new_nonce_hash(s.new_nonce, 1, auth_key.aux_hash)
        result = ServerHandshakeResult(
            auth_key=auth_key,
            server_salt=_server_salt(s.new_nonce, s.server_nonce),
            dc=s.dc,
            temp_expires_in=s.temp_expires_in,
        )
        self._state = ServerHandshakeState.DONE
        self._secrets = None
        self.completed += 1
        # dh_gen_ok#3bcbf734 nonce:int128 server_nonce:int128 new_nonce_hash1:int128
        return mtproto.DhGenOk(
            nonce=s.nonce,
            server_nonce=_flip(s.server_nonce) if Misbehavior.WRONG_DH_GEN_NONCE in m else s.server_nonce,
            new_nonce_hash1=_flip(hash1) if Misbehavior.BAD_NEW_NONCE_HASH in m else hash1,
        ).to_bytes(), result

    # ------------------------------------------------------------------ helpers

    def _generate_a(self, g: int, dh_prime: int, *, strict: bool) -> tuple[int, int]:
        # §5.7 item 4: regenerate a until g_a lies in the window the client will demand.
        while True:
            a = _int_be(self._rng(256))
            g_a = pow(g, a, dh_prime)
            if not strict:
                return a, g_a
            try:
                dh.check_g_x(g_a, dh_prime)
            except BadDhValue:
                continue
            return a, g_a

    def _require(self, state: ServerHandshakeState, obj: object) -> _ServerSecrets:
        if self._state is not state or self._secrets is None:
            raise _bad_query(f"{_qualname(obj)} is out of order (handshake is {self._state.value})")
        return self._secrets

    @staticmethod
    def _check_nonces(obj: object, s: _ServerSecrets) -> None:
        if obj.nonce != s.nonce or obj.server_nonce != s.server_nonce:  # type: ignore[attr-defined]
            raise _bad_query(f"{_qualname(obj)}: nonce or server_nonce is not this handshake's")

    def _reply(self, now: float, request: bytes, reply: bytes) -> bytes:
        self._last_request, self._last_reply = request, reply
        return self._pack(now, reply)

    def _pack(self, now: float, body: bytes) -> bytes:
        if self._msg_ids is not None:
            msg_id = self._msg_ids(now)
        else:
            msg_id = next_plain_msg_id(now, self._last_msg_id, server=True)
        self._last_msg_id = msg_id
        return pack_plain(msg_id, body)

    def _reset(self) -> None:
        self._state = ServerHandshakeState.WAIT_REQ_PQ
        self._secrets = None
        self._last_request = self._last_reply = None

    def _fail(self, message: str) -> HandshakeError:
        self._state = ServerHandshakeState.FAILED
        self._secrets = None
        return _bad_query(message)


def _is_residue_generator(g: int, dh_prime: int) -> bool:
    try:
        dh.check_dh_params(g, dh_prime)
    except DcPoolError:
        return False
    return True
