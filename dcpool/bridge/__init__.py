"""``dcpool bridge``: accounts' updates and pools' events delivered to other programs.

Modules (sans-IO cores first, then their trio shells):

* :mod:`.source`      the seam to the updates manager (contract shapes, ``open_account_updates``)
* :mod:`.events`      updates and pool events → outbox events (pure)
* :mod:`.pusher`      Pusher protocol v7 server state machine and channel auth (pure)
* :mod:`.webhook`     webhook scheduler (pure) and its delivery loop (trio + httpx)
* :mod:`.outbox`      the durable outbox on SQLite or PostgreSQL, leases
* :mod:`.httpserver`  HTTP/1.1 + WebSocket on h11/wsproto over trio streams
* :mod:`.app`         the bridge: routes, account loops, fleets (``open_bridge``)
* :mod:`.cli`         ``dcpool bridge``
* :mod:`.emulated`    accounts on an emulated cluster (the ``--emulator`` demo, fleets, tests)
* :mod:`.memsource`   in-memory and simulated sources (deterministic tests, simulated fleets)
* :mod:`.pgserver`    a throwaway PostgreSQL server (tests, demos)
"""
