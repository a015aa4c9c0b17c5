"""``DcTable``: the endpoints we currently believe in, per DC.

It starts from the built-in list (or endpoints the user gives, e.g. an emulator's loopback
ports) and is *replaced*, not merged, by each ``help.getConfig`` answer; see the
:mod:`dcpool.dcs` docstring for why.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import attrs

from ..errors import ConfigError
from .builtin import builtin_dc_options
from .options import DcListSpec, DcOption, dc_options_from_config, dc_options_from_user

__all__ = ["DcTable"]


def _group(options: Iterable[DcOption]) -> dict[int, tuple[DcOption, ...]]:
    groups: dict[int, list[DcOption]] = {}
    for opt in options:
        groups.setdefault(opt.id, []).append(opt)
    return {dc_id: tuple(opts) for dc_id, opts in groups.items()}


def _as_tuple(options: Iterable[DcOption]) -> tuple[DcOption, ...]:
    return tuple(options)


@attrs.define(repr=False)
class DcTable:
    """The merged view of DC endpoints for one network (test or production).

    ``DcTable.builtin(test_mode)`` starts from :func:`~dcpool.dcs.builtin_dc_options`;
    ``DcTable(options, test_mode=...)`` from any list.  :meth:`apply_config` swaps in a fetched
    config's ``dc_options``.  Synchronous and pure: the config fetcher calls it between awaits.
    """

    _options: tuple[DcOption, ...] = attrs.field(converter=_as_tuple, alias="options")
    test_mode: bool = attrs.field(kw_only=True)
    #: "builtin", "custom" (given by the user) or "config"
    source: str = attrs.field(default="custom", kw_only=True)
    #: from the last applied config (None before one)
    config_date: int | None = attrs.field(default=None, kw_only=True)
    config_expires: float | None = attrs.field(default=None, kw_only=True)
    this_dc: int | None = attrs.field(default=None, kw_only=True)
    #: ``config.force_try_ipv6`` (spec §7.8): the default for ``prefer_ipv6``
    force_try_ipv6: bool = attrs.field(default=False, kw_only=True)
    #: bumped on every change, so callers can cache per generation
    generation: int = attrs.field(default=0, kw_only=True)
    _by_dc: dict[int, tuple[DcOption, ...]] = attrs.field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        self._by_dc = _group(self._options)

    def __repr__(self) -> str:
        network = "test" if self.test_mode else "production"
        return (
            f"<DcTable {network} source={self.source} dcs={self.dc_ids()}"
            f" options={len(self._options)} generation={self.generation}>"
        )

    @classmethod
    def builtin(cls, test_mode: bool) -> DcTable:
        return cls(builtin_dc_options(test_mode), test_mode=test_mode, source="builtin")

    @classmethod
    def for_user(cls, dc_list: DcListSpec | None, *, test_mode: bool) -> DcTable:
        """The table ``open_pool(dc_list=..., test_mode=...)`` starts from: the built-in list
        when ``dc_list`` is None, else any form :func:`~dcpool.dcs.dc_options_from_user`
        accepts (raises :class:`~dcpool.errors.ConfigError` on a bad one)."""
        if dc_list is None:
            return cls.builtin(test_mode)
        return cls(dc_options_from_user(dc_list), test_mode=test_mode)

    # ----------------------------------------------------------------------- queries

    @property
    def options(self) -> tuple[DcOption, ...]:
        """Every endpoint, in the order Telegram (or the builtin list) gives them."""
        return self._options

    def options_for(self, dc_id: int) -> tuple[DcOption, ...]:
        """Every endpoint of ``dc_id`` (all flags; :class:`EndpointPolicy` filters), or ()."""
        return self._by_dc.get(dc_id, ())

    def dc_ids(self, *, cdn: bool = False) -> list[int]:
        """The DC ids that have at least one non-CDN endpoint (``cdn=True``: CDN ones)."""
        return sorted(
            dc_id for dc_id, opts in self._by_dc.items() if any(o.cdn == cdn for o in opts)
        )

    def knows(self, dc_id: int) -> bool:
        return dc_id in self._by_dc

    def is_expired(self, now: float) -> bool:
        """True when the config should be fetched again: none applied yet, or past expiry."""
        return self.config_expires is None or now >= self.config_expires

    # ----------------------------------------------------------------------- updates

    def apply_config(self, config: Any) -> set[int]:
        """Replace the endpoints with ``config.dc_options`` (duck-typed ``config`` object).

        Raises :class:`~dcpool.errors.ConfigError`, leaving the table unchanged, when the
        config comes from the other network (``config.test_mode``; spec §15/§16: never mix) or
        lists no usable (non-CDN) endpoint.  Returns the ids of the DCs whose endpoints changed.
        """
        test_mode = getattr(config, "test_mode", None)
        if test_mode is not None and bool(test_mode) != self.test_mode:
            theirs = "test" if test_mode else "production"
            ours = "test" if self.test_mode else "production"
            raise ConfigError(f"a {theirs} config cannot update the {ours} DC table")
        options = dc_options_from_config(config)
        changed = self._replace(options, source="config")
        self.config_date = _opt_int(getattr(config, "date", None))
        expires = getattr(config, "expires", None)
        self.config_expires = None if expires is None else float(expires)
        self.this_dc = _opt_int(getattr(config, "this_dc", None))
        self.force_try_ipv6 = bool(getattr(config, "force_try_ipv6", False))
        return changed

    def replace_options(self, options: Iterable[DcOption], *, source: str = "custom") -> set[int]:
        """Replace every endpoint (same checks as :meth:`apply_config`, minus the mode)."""
        return self._replace(list(options), source=source)

    def _replace(self, options: list[DcOption], *, source: str) -> set[int]:
        if not any(not o.cdn for o in options):
            raise ConfigError("the DC list has no usable (non-CDN) endpoint")
        new = _group(options)
        old = self._by_dc
        changed = {dc for dc in old.keys() | new.keys() if old.get(dc) != new.get(dc)}
        self._options = tuple(options)
        self._by_dc = new
        self.source = source
        self.generation += 1
        return changed


def _opt_int(value: Any) -> int | None:
    return None if value is None else int(value)
