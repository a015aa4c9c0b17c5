"""Scripting a running emulator from any language: JSON-lines commands (``dcpool emulator
--json --control``).

Theory of operation
-------------------
After its first stdout line (the cluster description, :func:`dcpool.cli.emulator_info`), an
emulator started with ``--control`` reads one JSON object per line on stdin and writes exactly
one JSON line on stdout for each, in order::

    -> {"cmd": "add_user", "phone": "15550001", "dc_id": 3, "id": 7}
    <- {"ok": true, "cmd": "add_user", "id": 7, "result": {"user_id": 1000001, ...}}
    -> {"cmd": "nope"}
    <- {"ok": false, "cmd": "nope", "error": "unknown command 'nope' (try {\\"cmd\\": \\"help\\"})"}

``"id"`` is optional and echoed back (any JSON value), so a client may pipeline.  ``{"cmd":
"help"}`` lists every command with its parameters.  End of stdin, or ``{"cmd": "quit"}``, stops
the emulator (a parent that dies never leaves one behind).

The command table is a registry: :data:`COMMANDS`, filled by :func:`control_command`.  Any
module may add commands (messages, channels, login tokens...) by decorating a function
``fn(ctl: Controller, **params) -> JSON value``, declared with :class:`Param` objects, and being
imported before the emulator starts — the emulator imports :mod:`dcpool.testing`, so a one-line
import in a module it already imports is enough.  Parameters are checked against their
declaration (type, required) before ``fn`` runs; any :class:`dcpool.errors.DcPoolError` or
``ValueError``/``KeyError`` raised by ``fn`` becomes ``{"ok": false, "error": ...}``: a bad
command never stops the emulator.

Faults (``arm_fault``) are the methods of :class:`dcpool.testing.faults.DcFaults`, named as
there (``flood_wait``, ``forget_key``, ``lose_session``, ...; ``latency`` and ``clock_offset``
set those values), on one DC or on every DC when ``dc_id`` is omitted.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import attrs

from ..errors import DcPoolError

__all__ = [
    "COMMANDS",
    "ControlCommand",
    "Controller",
    "Param",
    "control_command",
    "file_info",
    "photo_info",
    "stats_json",
]

_TYPES: dict[str, tuple[type, ...]] = {
    "int": (int,),
    "float": (int, float),
    "str": (str,),
    "bool": (bool,),
    "object": (dict,),
    "list": (list,),
    "any": (object,),
}


@attrs.frozen
class Param:
    """One parameter of a control command: its JSON type (``int``, ``float``, ``str``,
    ``bool``, ``object``, ``list``, ``any``), whether it is required, and what it means."""

    name: str
    type: str
    help: str
    required: bool = False

    def check(self, value: Any) -> Any:
        kinds = _TYPES[self.type]
        if isinstance(value, bool) and bool not in kinds and object not in kinds:
            raise ValueError(f"parameter {self.name!r} must be {self.type}, got a bool")
        if not isinstance(value, kinds):
            raise ValueError(f"parameter {self.name!r} must be {self.type}, got {type(value).__name__}")
        return value

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "required": self.required, "help": self.help}


@attrs.frozen
class ControlCommand:
    name: str
    help: str
    params: tuple[Param, ...]
    fn: Callable[..., Any]

    def describe(self) -> dict[str, Any]:
        return {"cmd": self.name, "help": self.help, "params": [p.describe() for p in self.params]}


#: name -> command, in registration order (the order of ``help``)
COMMANDS: dict[str, ControlCommand] = {}


def control_command(
    name: str, help: str, *params: Param
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register ``fn(ctl, **params)`` as the control command ``name`` (see the module doc)."""

    def register(fn: Callable[..., Any]) -> Callable[..., Any]:
        if name in COMMANDS:
            raise ValueError(f"control command {name!r} registered twice")
        COMMANDS[name] = ControlCommand(name, help, tuple(params), fn)
        return fn

    return register


class Controller:
    """Runs control commands against one running :class:`~dcpool.testing.Cluster`."""

    def __init__(self, cluster: Any, *, info: dict[str, Any] | None = None) -> None:
        self.cluster = cluster
        self.world = cluster.world
        #: the first line the emulator printed (``info`` answers it again)
        self.info = info or {}
        #: set by ``quit``: the serving loop stops after answering
        self.stopping = False

    def handle_line(self, line: str) -> str:
        """One request line -> one answer line (without the newline)."""
        try:
            request = json.loads(line)
        except ValueError as exc:
            return json.dumps({"ok": False, "error": f"not JSON: {exc}"})
        return json.dumps(self.handle(request))

    def handle(self, request: Any) -> dict[str, Any]:
        """One request object -> the answer object."""
        if not isinstance(request, dict):
            return {"ok": False, "error": "a command is a JSON object with a \"cmd\" key"}
        name = request.get("cmd")
        answer: dict[str, Any] = {"cmd": name}
        if "id" in request:
            answer["id"] = request["id"]
        command = COMMANDS.get(name) if isinstance(name, str) else None
        if command is None:
            answer.update(ok=False, error=f"unknown command {name!r} (try {{\"cmd\": \"help\"}})")
            return answer
        try:
            kwargs = self._arguments(command, request)
            result = command.fn(self, **kwargs)
        except (DcPoolError, ValueError, KeyError, TypeError) as exc:
            answer.update(ok=False, error=f"{type(exc).__name__}: {exc}")
            return answer
        answer.update(ok=True, result=result)
        return answer

    @staticmethod
    def _arguments(command: ControlCommand, request: dict[str, Any]) -> dict[str, Any]:
        known = {p.name: p for p in command.params}
        unknown = sorted(set(request) - set(known) - {"cmd", "id"})
        if unknown:
            raise ValueError(f"unknown parameter(s) {', '.join(unknown)} for {command.name!r}")
        kwargs = {}
        for p in command.params:
            if p.name in request and request[p.name] is not None:
                kwargs[p.name] = p.check(request[p.name])
            elif p.required:
                raise ValueError(f"missing parameter {p.name!r} for {command.name!r}")
        return kwargs


# --------------------------------------------------------------------------- JSON shapes


def file_info(f: Any) -> dict[str, Any]:
    """A stored document as JSON (what a client needs to build its input location)."""
    return {
        "dc_id": f.dc_id,
        "id": f.id,
        "access_hash": f.access_hash,
        "file_reference": f.file_reference.hex(),
        "size": f.size,
        "sha256": f.sha256,
    }


def stats_json(cluster: Any, dc_id: int | None = None) -> dict[str, Any]:
    """Per-DC counters as JSON: ``{"<dc>": {handshakes, exports, imports, requests, errors,
    bytes_served, connections_live, connections_total, duplicates}}``."""
    snap = cluster.statistics()
    out: dict[str, Any] = {}
    for dc, s in snap.dcs.items():
        if dc_id is not None and dc != dc_id:
            continue
        out[str(dc)] = {
            "handshakes": s.handshakes,
            "exports": s.exports,
            "imports": s.imports,
            "requests": dict(s.requests),
            "errors": dict(s.errors),
            "bytes_served": s.bytes_served,
            "connections_live": s.connections_live,
            "connections_total": s.connections_total,
            "duplicates": len(s.duplicates()),
        }
    return out


# --------------------------------------------------------------------------- built-in commands

_DC = Param("dc_id", "int", "DC id", required=True)
_ANY_DC = Param("dc_id", "int", "DC id (omitted: every DC)")
_COUNT = Param("count", "int", "how many times it fires (omitted: the fault's default; "
               "null/omitted for rpc faults: until cleared)")


@control_command("help", "list every command with its parameters")
def _help(ctl: Controller) -> list[dict[str, Any]]:
    return [c.describe() for c in COMMANDS.values()]


@control_command("ping", "answer {\"ok\": true} (liveness)")
def _ping(ctl: Controller) -> None:
    return None


@control_command("info", "the cluster description printed on the first line")
def _info(ctl: Controller) -> dict[str, Any]:
    return ctl.info


@control_command("quit", "stop the emulator after answering (end of stdin does the same)")
def _quit(ctl: Controller) -> None:
    ctl.stopping = True


@control_command(
    "add_user",
    "register an account (spec §12: its login code is the home DC's digit x5 unless 'code')",
    Param("phone", "str", "digits only", required=True),
    Param("dc_id", "int", "home DC (default: the DC of a 99966X number, else the nearest DC)"),
    Param("first_name", "str", "default 'Test'"),
    Param("last_name", "str", "default ''"),
    Param("username", "str", "optional"),
    Param("code", "str", "fixed login code for this phone"),
)
def _add_user(
    ctl: Controller,
    phone: str,
    dc_id: int | None = None,
    first_name: str = "Test",
    last_name: str = "",
    username: str | None = None,
    code: str | None = None,
) -> dict[str, Any]:
    account = ctl.world.add_user(
        phone, dc_id, first_name=first_name, last_name=last_name, username=username
    )
    if code is not None:
        ctl.world.fixed_codes[phone] = code
    return {
        "user_id": account.id,
        "access_hash": account.access_hash,
        "phone": account.phone,
        "home_dc": account.home_dc,
        "code": ctl.world.login_code(phone, account.home_dc),
    }


@control_command(
    "move_user",
    "move an account's home DC (account methods elsewhere then answer USER_MIGRATE_X)",
    Param("user_id", "int", "the account", required=True),
    _DC,
)
def _move_user(ctl: Controller, user_id: int, dc_id: int) -> None:
    ctl.world.move_user(user_id, dc_id)


@control_command(
    "add_file",
    "store a document on a DC: 'size' pseudo-random bytes, or 'data_hex'",
    _DC,
    Param("size", "int", "bytes of deterministic pseudo-random content"),
    Param("data_hex", "str", "the content, hex-encoded"),
)
def _add_file(
    ctl: Controller, dc_id: int, size: int | None = None, data_hex: str | None = None
) -> dict[str, Any]:
    data = bytes.fromhex(data_hex) if data_hex is not None else None
    return file_info(ctl.world.add_file(dc_id, data, size=size))


def photo_info(photo: Any) -> dict[str, Any]:
    """A stored photo as JSON."""
    return {
        "dc_id": photo.dc_id,
        "id": photo.id,
        "access_hash": photo.access_hash,
        "file_reference": photo.file_reference.hex(),
        "sizes": {kind: {"size": f.size, "sha256": f.sha256} for kind, f in photo.sizes.items()},
    }


def _sizes(sizes: dict[str, Any] | None) -> dict[str, bytes | int] | None:
    if sizes is None:
        return None
    out: dict[str, bytes | int] = {}
    for kind, spec in sizes.items():
        if isinstance(spec, int) and not isinstance(spec, bool) and spec >= 0:
            out[kind] = spec
        elif isinstance(spec, str):
            out[kind] = bytes.fromhex(spec)
        else:
            raise ValueError(f"size {kind!r}: a byte count or hex content, got {spec!r}")
    return out


@control_command(
    "add_photo",
    "store a photo on a DC (inputPhotoFileLocation with thumb_size = a size type)",
    _DC,
    Param("sizes", "object", "size type -> byte count or hex content (default s, m, x, a, c)"),
)
def _add_photo(ctl: Controller, dc_id: int, sizes: dict[str, Any] | None = None) -> dict[str, Any]:
    return photo_info(ctl.world.add_photo(dc_id, _sizes(sizes)))


@control_command(
    "set_profile_photo",
    "give a user a profile photo (inputPeerPhotoFileLocation: big = size 'c', small = 'a')",
    Param("user_id", "int", "the account", required=True),
    Param("dc_id", "int", "the DC storing it (default: the user's home DC)"),
    Param("sizes", "object", "size type -> byte count or hex content"),
)
def _set_profile_photo(
    ctl: Controller, user_id: int, dc_id: int | None = None, sizes: dict[str, Any] | None = None
) -> dict[str, Any]:
    return photo_info(ctl.world.set_profile_photo(user_id, dc_id, _sizes(sizes)))


#: fault name -> the DcFaults arguments it accepts (besides count)
_FAULTS: dict[str, tuple[str, ...]] = {
    "refuse_connections": (),
    "drop_connections": ("after_messages",),
    "transport_error": ("code",),
    "forget_key": (),
    "lose_session": (),
    "rotate_salt": (),
    "drop_after_ack": ("method",),
    "fail": ("method", "code", "message"),
    "flood_wait": ("method", "seconds"),
    "auth_bytes_invalid": (),
}


@control_command(
    "arm_fault",
    "arm a fault on one DC or all (names and meaning: dcpool.testing.faults.DcFaults; "
    "'latency' takes 'ms', 'clock_offset' takes 'seconds')",
    Param("fault", "str", "one of: " + ", ".join([*_FAULTS, "latency", "clock_offset"]), required=True),
    _ANY_DC,
    _COUNT,
    Param("method", "str", "schema name of the method, e.g. 'upload.getFile' (omitted: any)"),
    Param("code", "int", "rpc error code (fail) or negative transport error code"),
    Param("message", "str", "rpc error message (fail), e.g. 'INTERNAL'"),
    Param("seconds", "float", "FLOOD_WAIT seconds / clock offset"),
    Param("after_messages", "int", "drop_connections: client packets before the close"),
    Param("ms", "float", "latency per packet and direction"),
)
def _arm_fault(ctl: Controller, fault: str, dc_id: int | None = None, **kw: Any) -> dict[str, Any]:
    targets = [dc_id] if dc_id is not None else list(ctl.world.dc_ids)
    if fault == "latency":
        if kw.get("ms") is None or kw["ms"] < 0:
            raise ValueError("latency needs 'ms' >= 0")
        for dc in targets:
            ctl.world.faults(dc).latency = kw["ms"] / 1000.0
        return {"dcs": targets}
    if fault == "clock_offset":
        if kw.get("seconds") is None:
            raise ValueError("clock_offset needs 'seconds'")
        for dc in targets:
            ctl.world.faults(dc).clock_offset = float(kw["seconds"])
        return {"dcs": targets}
    accepted = _FAULTS.get(fault)
    if accepted is None:
        raise ValueError(f"unknown fault {fault!r}")
    args = {k: v for k, v in kw.items() if k in accepted or k == "count"}
    extra = sorted(set(kw) - set(args))
    if extra:
        raise ValueError(f"fault {fault!r} takes no {', '.join(extra)}")
    if fault == "flood_wait" and "seconds" in args:
        args["seconds"] = int(args["seconds"])
    if fault in ("fail", "flood_wait") and "method" not in args:
        args["method"] = None
    for dc in targets:
        getattr(ctl.world.faults(dc), fault)(**args)
    return {"dcs": targets}


@control_command("clear_faults", "disarm every fault (latency and clock offset back to 0)", _ANY_DC)
def _clear_faults(ctl: Controller, dc_id: int | None = None) -> dict[str, Any]:
    targets = [dc_id] if dc_id is not None else list(ctl.world.dc_ids)
    for dc in targets:
        ctl.world.faults(dc).clear()
    return {"dcs": targets}


@control_command("latency", "set the added latency of every DC (per packet and direction)",
                 Param("ms", "float", "milliseconds", required=True))
def _latency(ctl: Controller, ms: float) -> dict[str, Any]:
    return _arm_fault(ctl, "latency", ms=ms)


@control_command("stats", "per-DC counters", _ANY_DC)
def _stats(ctl: Controller, dc_id: int | None = None) -> dict[str, Any]:
    if dc_id is not None:
        ctl.world.dc(dc_id)
    return stats_json(ctl.cluster, dc_id)


@control_command("reset_stats", "zero every counter (live connections stay)")
def _reset_stats(ctl: Controller) -> None:
    ctl.world.cluster_stats.reset()


@control_command("drop_connections", "close live connections abruptly", _ANY_DC)
def _drop_connections(ctl: Controller, dc_id: int | None = None) -> dict[str, Any]:
    return {"dropped": ctl.cluster.drop_connections(dc_id)}


@control_command("set_option", "change a documented emulator option (dcpool.testing docs)",
                 Param("name", "str", "option name", required=True),
                 Param("value", "any", "new value", required=True))
def _set_option(ctl: Controller, name: str, value: Any) -> dict[str, Any]:
    options = ctl.world.options()
    if name not in options:
        raise ValueError(f"unknown option {name!r}; options: {', '.join(sorted(options))}")
    ctl.world.set_option(name, value)
    return {name: ctl.world.options()[name]}


@control_command("options", "every documented emulator option and its value")
def _options(ctl: Controller) -> dict[str, Any]:
    return ctl.world.options()
