"""MTProto cryptography, sans-IO: no sockets, no clocks, randomness only through ``rng`` arguments.

Submodules (import them explicitly: ``from dcpool.crypto import aes, kdf, rsa, factorize, dh``):

* :mod:`~dcpool.crypto.aes` — AES-256-IGE behind the fastest installed backend (cryptg,
  tgcrypto, or a ``cryptography`` fallback; ``DCPOOL_AES_BACKEND`` forces one) and AES-256-CTR.
* :mod:`~dcpool.crypto.kdf` — auth_key_id, msg_key and the MTProto 2.0/1.0 key derivations,
  handshake tmp_aes_key/iv, new_nonce_hash, initial salt (spec §4, §5.6-§5.10).
* :mod:`~dcpool.crypto.rsa` — RSA keys and fingerprints, the RSA_PAD and legacy envelopes,
  server-side envelope detection, Telegram's known public keys (spec §5.4, §6).
* :mod:`~dcpool.crypto.factorize` — pq factorisation (Pollard-Brent) and Miller-Rabin (§5.3).
* :mod:`~dcpool.crypto.dh` — Telegram's DH prime and the security-guideline checks (§5.7).
"""

from collections.abc import Callable

#: A source of random bytes, ``rng(n) -> n bytes``: the only way randomness enters the sans-IO
#: layers (``os.urandom`` in production, a scripted one in known-answer tests).
Rng = Callable[[int], bytes]

__all__ = ["Rng"]
