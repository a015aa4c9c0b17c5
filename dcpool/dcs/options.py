"""``DcOption``: one endpoint of one DC, as Telegram describes it in ``config.dc_options``.

Pure data; see :mod:`dcpool.dcs` for how endpoints are chosen.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable
from typing import Any

import attrs

from ..errors import ConfigError

__all__ = ["DcOption", "dc_options_from_config"]

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
    a long-lived address, safe to cache; ``this_port_only`` do not try other ports; ``secret``
    the obfuscation secret to use with this endpoint.
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
