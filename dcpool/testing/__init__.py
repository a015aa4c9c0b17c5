"""dcpool.testing: an emulated multi-DC Telegram cluster on loopback.

It speaks real MTProto (key exchange, MTProto 2.0 encryption, every transport) on top of the same
sans-IO core the client uses, and behaves like Telegram where a DC-aware client cares: config,
reserved test numbers, migrations, files per DC, authorization export/import, faults on demand.
Use it to test dcpool, or your own client, offline.

Emulator semantics the docs leave open
--------------------------------------
Telegram's documentation does not say what a server does in every case a client can meet.
Where it is silent, the emulator makes one choice, states it here, and (where a client could
reasonably expect the other behaviour) makes it an option of :class:`World`
(``World(...)`` keyword or ``world.set_option(name, value)``; ``set_option`` in
``dcpool emulator --control``; ``world.options()`` lists them):

=============================  ============================================================
option (default)               behaviour
=============================  ============================================================
``export_from_former_home``    ``auth.exportAuthorization`` runs on the user's home DC, and
(True)                         also on a DC where the key *logged in* (signIn/signUp) before
                               the user was moved away, so a client can follow a moved user
                               from where it is.  False: home DC only (``USER_MIGRATE_X``).
                               A key authorised by ``importAuthorization`` never exports
                               outside the home DC.
``require_init_connection``    The first API call with an auth key on a DC must contain
(True)                         ``initConnection`` (anywhere in its wrappers), else 400
                               ``CONNECTION_NOT_INITED`` (spec §10 says "may be rejected").
                               The client info is stored with the key on that DC: later
                               calls, on any connection, need no wrapper; a forgotten key
                               must initialise again.  False: a default layer is assumed.
``min_layer`` (133)            ``invokeWithLayer`` below it: 400 ``CONNECTION_LAYER_INVALID``
                               (the layer is not recorded).  A layer above 228 is answered
                               as 228.
``strict_msg_order`` (True)    Client msg_ids (of a message or a container) must strictly
                               increase within a session: otherwise ``bad_msg_notification``
                               16 ("too low"), the code clients already handle by resyncing
                               their clock and re-sending.  A container reusing a received id:
                               19.  An id below the 4096 ids the session remembers: 20.
                               seq_no is compared with the message of the highest msg_id
                               received: 32 if a higher id has a lower (or equal odd) seq_no,
                               33 if a lower id has a higher (or equal odd) one.  Messages
                               re-sent with their original ids inside a new container are
                               accepted.  False: only duplicates are refused.
``test_numbers`` (True)        ``99966XYYYY`` exists on DC X, code ``XXXXX`` (spec §12.3).
``nearest_dc``, ``country``    ``help.getNearestDc``; a new number's ``auth.sendCode`` on
                               another DC answers ``NETWORK_MIGRATE_<nearest>``.
``config_ttl``, ``export_ttl``, Lifetimes (s) of ``config.expires``, export tokens, login codes.
``code_ttl``
``strict`` (False)             An emulator bug raises instead of answering 500
                               ``EMULATOR_INTERNAL_ERROR``.
=============================  ============================================================

Fixed choices (not options):

* **−404** is sent only for an auth key the DC does not know.  The ``forget_key`` fault (and a
  ``transport_error(-404)`` fault) first makes the DC forget the key with its salts, sessions,
  layer, initConnection and authorization.
* **Updates** go to exactly one session: the user's most recently active one on its home DC.
  A session becomes active by running a request *not* wrapped in ``invokeWithoutUpdates``; a
  session whose last request used ``invokeWithoutUpdates`` (download/upload lanes, other DCs)
  gets none until it sends one without.  Moving the user moves the routing with it.
* **Peer photos**: ``inputPeerPhotoFileLocation`` reads size ``"c"`` (big) or ``"a"`` (small) of
  the current photo; another ``photo_id`` is 400 ``LOCATION_INVALID`` (no photo history).
* **upload.getFileHashes** answers SHA-256 hashes of 128 KiB parts from the part holding
  ``offset``, up to 8 parts (1 MiB) per call.
* **Salts** last 3600 s; the previous one is accepted for 1800 s more.  Sessions keep 4096
  received ids and 4096 sent messages for re-sending.
* Methods without a handler answer 400 ``METHOD_NOT_SUPPORTED_BY_EMULATOR``.
* **Uploads** (:mod:`.uploads`): parts are kept per (DC, permanent auth key, file_id) and
  stay after use; a file of zero parts is ``FILE_PARTS_INVALID`` (Telegram refuses empty
  files); an uploaded photo is stored as its only size ``"x"`` (images are not decoded).
  ``sendMedia`` answers ``updates`` with ``seq = 0`` (ordered by pts).
* **CDN DCs** (``open_cluster(cdn_dcs=[203])``, ``dcpool emulator --cdn-dcs 203``) answer
  400 ``CDN_METHOD_INVALID`` to everything but ``upload.getCdnFile``; ``fileHash`` values are
  SHA-256 of the plaintext; a request_token the CDN did not issue is ``RSA_DECRYPT_FAILED``.
* **Temp keys** (:mod:`.pfs`): a bound temp key expires at ``min(created + expires_in,
  bind expires_at)``; binding a second temp key to a permanent key unbinds the first (its
  calls then get 401 ``AUTH_KEY_PERM_EMPTY``); ``auth.bindTempAuthKey`` needs no
  ``initConnection``.
"""

from . import rpc as rpc  # every RPC handler and control command, registered at import
from .cluster import Cluster, fixed_test_key, open_cluster
from .files import StoredFile
from .world import World

__all__ = ["open_cluster", "Cluster", "World", "StoredFile", "fixed_test_key"]
