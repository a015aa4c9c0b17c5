"""``DcOption``: one endpoint of one DC, as Telegram describes it in ``config.dc_options``.

Pure data; see :mod:`dcpool.dcs` for how endpoints are chosen.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeAlias

import attrs

from ..errors import ConfigError

__all__ = ["DcListSpec", "DcOption", "dc_options_from_config", "dc_options_from_user"]

log = logging.getLogger("dcpool.dcs")

_FLAGS = ("ipv6", "media_only", "tcpo_only", "cdn", "static", "this_port_only")


def _hide_secret(secret: bytes | None) -> str:
    # The secret is an MTProxy-style key for the obfuscation layer: keep it out of reprs/logs.
    return "None" if secret is None else f"<{len(secret)} bytes hidden>"


def _check_port(instance: DcOption, attribute: attrs.Attribute[int], value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value < 65536:
        raise ConfigError(f"DC {instance.id}: port {value!r} is not a TCP port")


def _check_address(instance: DcOption, attribute: attrs.Attribute[str], value: str) -> None:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"DC {instance.id}: empty or non-text ip_address")
    try:
        addr = ipaddress.ip_address(value)
    except ValueError:
        return  # a host name (tests, custom setups): the dialer resolves it
    if (addr.version == 6) != instance.ipv6:
        raise ConfigError(
            f"DC {instance.id}: address {value} does not match its ipv6={instance.ipv6} flag"
        )


def _check_id(instance: DcOption, attribute: attrs.Attribute[int], value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ConfigError(f"DC id {value!r} is not an int")


@attrs.frozen(kw_only=True, repr=False)
class DcOption:
    """One endpoint of a DC.

    ``dcOption#18b7a10d flags:# ipv6:flags.0?true media_only:flags.1?true tcpo_only:flags.2?true
    cdn:flags.3?true static:flags.4?true this_port_only:flags.5?true id:int ip_address:string
    port:int secret:flags.10?bytes = DcOption;``

    The field names are the TL ones, so :meth:`from_tl` copies them one to one.  Meanings
    (spec §11.1, §7.8): ``ipv6`` the address is IPv6; ``media_only`` use it only for file
    transfer; ``tcpo_only`` only obfuscated TCP is accepted there; ``cdn`` a CDN DC; ``static``
    use this address when connecting through a proxy (not "a stable address"); ``this_port_only``
    do not try other ports; ``secret`` the obfuscation secret to use with this endpoint.
    """

    id: int = attrs.field(validator=_check_id)
    ip_address: str = attrs.field(validator=_check_address)
    port: int = attrs.field(validator=_check_port)
    ipv6: bool = False
    media_only: bool = False
    tcpo_only: bool = False
    cdn: bool = False
    static: bool = False
    this_port_only: bool = False
    secret: bytes | None = None

    def __repr__(self) -> str:
        # Short and readable (it shows up in logs and pool statistics); the secret stays hidden.
        host = f"[{self.ip_address}]" if self.ipv6 else self.ip_address
        parts = [str(self.id), f"{host}:{self.port}"]
        parts += [flag for flag in _FLAGS if getattr(self, flag)]
        if self.secret is not None:
            parts.append(f"secret={_hide_secret(self.secret)}")
        return f"DcOption({', '.join(parts)})"

    @property
    def endpoint(self) -> tuple[str, int]:
        """``(ip_address, port)``: what :class:`~dcpool.dcs.EndpointHealth` keys on."""
        return (self.ip_address, self.port)

    @property
    def requires_obfuscation(self) -> bool:
        """True when the dialer must wrap the transport in obfuscation (spec §7.5): the option
        is ``tcpo_only``, or carries a secret (which only the obfuscated handshake can use)."""
        return self.tcpo_only or self.secret is not None

    @classmethod
    def from_tl(cls, obj: Any) -> DcOption:
        """Build from any object with the ``dcOption`` field names (duck-typed: the TL object,
        a Telethon/Pyrogram one, or a test double).  Raises :class:`ConfigError` on a field
        that is missing or cannot be right."""
        try:
            fields: dict[str, Any] = {
                "id": obj.id,
                "ip_address": obj.ip_address,
                "port": obj.port,
            }
        except AttributeError as exc:
            raise ConfigError(f"not a dcOption: {type(obj).__name__} lacks {exc.name}") from exc
        for flag in _FLAGS:
            fields[flag] = bool(getattr(obj, flag, False))
        secret = getattr(obj, "secret", None)
        if secret is not None:
            if not isinstance(secret, (bytes, bytearray, memoryview)):
                raise ConfigError(f"DC {fields['id']}: secret is not bytes")
            secret = bytes(secret)
        fields["secret"] = secret
        return cls(**fields)


def dc_options_from_config(config: Any) -> list[DcOption]:
    """The ``dc_options`` of a ``config`` object (duck-typed), in Telegram's order.

    An entry that cannot be right is skipped with a warning rather than failing the whole list:
    one bad endpoint should not cost us every DC.  Raises :class:`ConfigError` if the object has
    no ``dc_options`` at all.
    """
    try:
        raw: Iterable[Any] = config.dc_options
    except AttributeError as exc:
        raise ConfigError(f"{type(config).__name__} has no dc_options") from exc
    options = []
    for item in raw:
        try:
            options.append(DcOption.from_tl(item))
        except ConfigError as exc:
            log.warning("ignoring a bad dcOption in the config: %s", exc)
    return options


#: What ``open_pool(dc_list=...)`` accepts: a list of :class:`DcOption` (or of objects with the
#: TL ``dcOption`` field names), or ``{dc_id: (host, port)}`` -- one endpoint per DC -- where the
#: value may also be a list of ``(host, port)`` pairs or of :class:`DcOption`.
DcListSpec: TypeAlias = Iterable[Any] | Mapping[int, Any]


def dc_options_from_user(spec: DcListSpec) -> list[DcOption]:
    """Turn any accepted ``dc_list=`` form into a list of :class:`DcOption`, in the given order.

    ``{2: ("127.0.0.1", 4430), 4: ("::1", 4434)}`` gives one plain endpoint per DC (``ipv6`` set
    when the host is an IPv6 literal); a host name is kept as it is (the dialer resolves it).
    Pure and synchronous: the pool calls it once, when it is built.  Anything else, an empty
    list, or a pair that cannot be an endpoint raises :class:`~dcpool.errors.ConfigError`
    naming the offending entry -- never a late failure at dial time.
    """
    if isinstance(spec, (str, bytes, bytearray)):
        raise ConfigError("dc_list must be a list of DcOption or a {dc_id: (host, port)} mapping")
    options: list[DcOption] = []
    if isinstance(spec, Mapping):
        for dc_id, where in spec.items():
            if not isinstance(dc_id, int) or isinstance(dc_id, bool):
                raise ConfigError(f"dc_list key {dc_id!r} is not a DC id (int)")
            options.extend(_endpoints_of(dc_id, where))
    else:
        try:
            items = list(spec)
        except TypeError:
            raise ConfigError(
                f"dc_list must be a list of DcOption or a {{dc_id: (host, port)}} mapping,"
                f" not {type(spec).__name__}"
            ) from None
        options.extend(_as_option(item) for item in items)
    if not options:
        raise ConfigError("dc_list is empty")
    return options


def _as_option(item: Any) -> DcOption:
    return item if isinstance(item, DcOption) else DcOption.from_tl(item)


def _endpoints_of(dc_id: int, where: Any) -> list[DcOption]:
    """The endpoints of one mapping entry: a ``(host, port)`` pair, or a list of pairs or
    :class:`DcOption` (whose id must be ``dc_id``)."""
    if _is_pair(where):
        return [_from_pair(dc_id, where)]
    if isinstance(where, DcOption):
        where = [where]
    if isinstance(where, (str, bytes, bytearray)) or not isinstance(where, Iterable):
        raise ConfigError(f"DC {dc_id}: {where!r} is not a (host, port) pair")
    out: list[DcOption] = []
    for item in where:
        if _is_pair(item):
            out.append(_from_pair(dc_id, item))
        elif isinstance(item, DcOption):
            if item.id != dc_id:
                raise ConfigError(f"DC {dc_id}: its list holds an option of DC {item.id}")
            out.append(item)
        else:
            raise ConfigError(f"DC {dc_id}: {item!r} is not a (host, port) pair")
    if not out:
        raise ConfigError(f"DC {dc_id}: no endpoint given")
    return out


def _is_pair(value: Any) -> bool:
    return (
        isinstance(value, Sequence)
        and not isinstance(value, (str, bytes, bytearray))
        and len(value) == 2
        and isinstance(value[0], str)
    )


def _from_pair(dc_id: int, pair: Sequence[Any]) -> DcOption:
    host, port = pair
    host = host.strip("[]")  # "[::1]" is how people write IPv6 hosts next to a port
    try:
        ipv6 = ipaddress.ip_address(host).version == 6
    except ValueError:
        ipv6 = False  # a host name
    return DcOption(id=dc_id, ip_address=host, port=port, ipv6=ipv6)
