"""DC options, the DC table, and the endpoint policy (the pure part of DC handling).

Nothing here does I/O or imports trio: time comes in as ``now: float``.

Where endpoints come from
-------------------------
:class:`DcOption` mirrors TL ``dcOption`` field by field (spec §11.1); :meth:`DcOption.from_tl`
and :func:`dc_options_from_config` read them from any object with those attribute names.
:func:`builtin_dc_options` gives the bootstrap list of one network: production (spec §16: the
tdlib/tdesktop IPv4 addresses plus IPv6, port 443) or test (spec §15: DCs 1-3, IPv4 and IPv6,
ports 443 and 80).  The two lists are never mixed.  :func:`dc_options_from_user` reads what a
user passes as ``open_pool(dc_list=...)``: a list of options or ``{dc_id: (host, port)}``;
:meth:`DcTable.for_user` builds the starting table from it (or from the built-in list).

:class:`DcTable` is the current view.  **A fetched config replaces the table; builtin entries
for DCs the config lacks are dropped.**  Telegram's config is authoritative (spec §16: "the
authoritative list is always the help.getConfig answer"): a DC it omits is one we should not
dial, and keeping stale built-ins would send a loopback emulator's clients to the real Telegram
for any DC the emulator does not list.  A config from the other network (``config.test_mode``)
or with no usable endpoint is refused with :class:`~dcpool.errors.ConfigError` and the table
stays as it was.

The endpoint policy
-------------------
:meth:`EndpointPolicy.candidates` returns the endpoints of a DC for a *lane* (``"main"``: API
calls; ``"download"``: file transfer; ``"cdn"``: a CDN DC), best first.  First the filter, then
the order.

Filter, one rule per flag:

* ``cdn``: CDN endpoints are used only by the ``cdn`` lane, and that lane uses only them
  (spec §11.4: a CDN DC answers only ``upload.getCdnFile``).  Never for the normal lanes.
* ``media_only``: never on the ``main`` lane; allowed (and preferred, below) on ``download``.
* ``ipv6``: ``allow_ipv6=False`` removes IPv6 endpoints, whatever the preference.
* ``tcpo_only``: the endpoint accepts only obfuscated TCP (spec §7.5); the dialer must
  obfuscate and pass the option's ``secret`` (:attr:`DcOption.requires_obfuscation` is true for
  ``tcpo_only`` or a secret).  A policy built with ``allow_obfuscated=False`` removes them.
* ``this_port_only``: do not try other ports on that address (spec §7.8).  dcpool never
  substitutes ports: it dials exactly the ``(ip_address, port)`` pairs listed, so every option
  is already treated as "this port only" and the flag needs no action.  It is kept on the
  option for callers that care.
* ``static``: no filtering; an order key below.  The flag means "use this address when
  connecting through a proxy" (spec §11.1, the official text; tdlib's ``DcOptionsSet`` uses static
  options only through a proxy or when nothing else is left), *not* "a stable address".
* Duplicated entries are kept once.  If nothing is left,
  :class:`~dcpool.errors.UnknownDc` is raised (also when the DC exists but no endpoint suits
  the lane and flags).

Order (each key only breaks ties of the ones before it):

1. health: endpoints in cool-down (see :class:`EndpointHealth`) go last, the one whose
   cool-down ends first leading them.  A failing endpoint is retried, but never before one that
   is not cooling;
2. ``static``: on a direct connection (``via_proxy=False``, the default and the only route the
   pool dials today) every non-static endpoint comes before every static one, which are only a
   fallback; through a proxy (``via_proxy=True``) static endpoints come first;
3. ``media_only`` first on the ``download`` lane;
4. the preferred address family: IPv6 first if ``prefer_ipv6`` (default: the config's
   ``force_try_ipv6``, spec §7.8), else IPv4 first;
5. plain TCP before endpoints that require obfuscation;
6. known good (last result a success) before never tried, before failed-but-cooled-down;
7. the order of the list itself (Telegram's order, or the builtin one).

:class:`EndpointHealth` records the last success and last error per ``(ip, port)``, with the
caller's ``now``.  After ``n`` consecutive errors the endpoint cools down for
``cooldown * 2**(n-1)`` seconds (30 s base, 300 s cap by default); a success clears it.
"""

from __future__ import annotations

from .builtin import PRODUCTION_DCS, TEST_DCS, builtin_dc_options
from .options import DcListSpec, DcOption, dc_options_from_config, dc_options_from_user
from .policy import EndpointHealth, EndpointPolicy, EndpointState, Lane
from .table import DcTable

__all__ = [
    "DcListSpec",
    "DcOption",
    "DcTable",
    "EndpointHealth",
    "EndpointPolicy",
    "EndpointState",
    "Lane",
    "PRODUCTION_DCS",
    "TEST_DCS",
    "builtin_dc_options",
    "dc_options_from_config",
    "dc_options_from_user",
]
