"""dcpool.testing: an emulated multi-DC Telegram cluster on loopback.

It speaks real MTProto (key exchange, MTProto 2.0 encryption, every transport) on top of the same
sans-IO core the client uses, and behaves like Telegram where a DC-aware client cares: config,
reserved test numbers, migrations, files per DC, authorization export/import, faults on demand.
Use it to test dcpool, or your own client, offline.
"""

from .cluster import Cluster, fixed_test_key, open_cluster
from .files import StoredFile
from .world import World

__all__ = ["open_cluster", "Cluster", "World", "StoredFile", "fixed_test_key"]
