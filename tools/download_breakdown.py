"""Where a client's CPU goes per downloaded 512 KiB part, stage by stage (no network).

Theory of operation
-------------------
A sampling profile of a real download (``tools/bench.py --profile``) says *which functions*
are hot; this script says *how much each step of the receive path costs* and how that compares
with the work no client can avoid: AES-256-IGE decryption and the SHA-256 ``msg_key`` check
(MTProto 2.0, spec §4).  It builds real encrypted ``rpc_result(upload.file)`` messages the way
a DC would (``envelope.encrypt`` with x=8, the server-to-client direction), then times, with ``time.process_time`` over many
iterations:

* the whole client receive path as dcpool runs it: transport framing from 64 KiB reads
  (``ClientTransport.receive_data``), ``ClientSession.receive`` (decrypt, checks, decode) and
  ``migrate.download._file_bytes`` (the part's bytes out of ``upload.file``);
* each step of that path on its own: the ciphertext copy, KDF, IGE, msg_key, padding trim,
  body slice, ``rpc_result`` slice, ``upload.file`` slice, the transport buffer copies;
* the floor: IGE (dcpool's backend and tgcrypto) + SHA-256 only.

Run ``python tools/download_breakdown.py [--json PATH]``; ``tools/bench.py --profile`` prints
the same table.  Numbers are µs per 512 KiB part and % of the whole measured path.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

PART = 512 * 1024
READ = 64 * 1024  # a typical loopback read size seen by trio's receive_some


def _pin_malloc() -> bool:
    """Stop glibc from returning freed 512 KiB blocks to the OS between iterations.

    A tight loop that allocates and frees two large temporaries makes glibc trim the heap (or
    unmap) each time, so every copy pays fresh page faults: the numbers would show the
    allocator's churn, not the copy.  A long-running client's heap rarely behaves like that
    (a real download had ~15 minor faults per part), so the steps are timed in steady state.
    """
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        ok = libc.mallopt(m_trim_threshold, 256 << 20) and libc.mallopt(m_mmap_threshold, 64 << 20)
        return bool(ok)
    except (OSError, AttributeError):
        return False


def _timeit(fn: Callable[[], Any], min_seconds: float) -> float:
    """µs per call (process time), at least ``min_seconds`` of calls after one warm-up."""
    fn()
    n, t0 = 0, time.process_time()
    while True:
        fn()
        n += 1
        dt = time.process_time() - t0
        if dt >= min_seconds and n >= 5:
            return dt / n * 1e6


def breakdown(min_seconds: float = 0.3, read: int = PART + 1024) -> dict[str, Any]:
    from dcpool import tl
    from dcpool.crypto import aes, kdf
    from dcpool.transfers.download import file_bytes
    from dcpool.mtproto import AuthKey, envelope
    from dcpool.mtproto import session as session_mod
    from dcpool.mtproto.session import ClientSession
    from dcpool.testing.files import serialize_file_part
    from dcpool.transport import ClientTransport, Frame, TransportKind
    from dcpool.transport.codecs import encode_abridged

    pinned = _pin_malloc()
    key = AuthKey.from_bytes(os.urandom(256))
    session_id, salt = 0x1234, 0x5678
    content = os.urandom(PART)
    body = tl.pack_uint(tl.ids.RPC_RESULT) + tl.pack_long(42) + serialize_file_part(content, 0)

    def messages(count: int) -> list[bytes]:
        base = (int(time.time()) << 32) & ~3
        return [
            envelope.encrypt(key, envelope.pack_plaintext(salt, session_id, base + 4 * i + 1, 2 * i + 1, body),
                             x=8, rng=os.urandom)
            for i in range(count)
        ]

    batch = 16
    msgs = messages(batch)
    one = msgs[0]
    framed = encode_abridged(one) + one
    small_reads = [framed[i:i + READ] for i in range(0, len(framed), READ)]
    framed_array = bytearray(framed)

    # ---- the whole path, as dcpool runs it.  The reads are prepared beforehand (the socket's
    # own copy is not dcpool's doing); ``read`` bytes per read: on loopback trio usually gets a
    # whole 512 KiB frame in one read, over a real (or delayed) link reads of ~64-100 KiB.
    all_reads = []
    for m in msgs:
        f = encode_abridged(m) + m
        all_reads.append([f[i:i + read] for i in range(0, len(f), read)])

    def full_path() -> None:
        transport = ClientTransport(TransportKind.ABRIDGED)
        transport.data_to_send()  # the 0xef tag; not part of receiving
        sess = ClientSession(key, session_id=session_id, server_salt=salt, rng=os.urandom)
        for chunks in all_reads:
            payload = None
            for chunk in chunks:
                for ev in transport.receive_data(chunk):
                    if isinstance(ev, Frame):
                        payload = ev.payload
            assert payload is not None
            sess.receive(payload, time.time())

    path_total = _timeit(full_path, min_seconds) / batch
    result_bytes = session_mod._decode(envelope.parse_plaintext(envelope.decrypt(key, one, x=8)).body)[2]
    file_bytes_cost = _timeit(lambda: _file_bytes(result_bytes), min_seconds)
    total = path_total + file_bytes_cost

    # ---- steps
    view = memoryview(one)
    mk = bytes(view[8:24])
    aes_key, aes_iv = kdf.aes_key_iv(key.key, mk, 8)
    cipher = bytes(view[24:])
    plain = aes.ige_decrypt(cipher, aes_key, aes_iv)
    length = int.from_bytes(plain[28:32], "little")
    trimmed = plain[: 32 + length]

    def transport_only(reads: list[bytes]) -> None:
        t = ClientTransport(TransportKind.ABRIDGED)
        t.data_to_send()
        for r in reads:
            t.receive_data(r)

    steps: list[tuple[str, str, float, bool]] = []

    def step(name: str, where: str, fn: Callable[[], Any], unavoidable: bool = False) -> None:
        steps.append((name, where, _timeit(fn, min_seconds), unavoidable))

    step("transport framing, 1 read per frame", "dcpool/transport/_buffer.py:ReceiveBuffer.append/take",
         lambda: transport_only([framed]))
    step("transport framing, 64 KiB reads", "dcpool/transport/_buffer.py:ReceiveBuffer.append/take",
         lambda: transport_only(small_reads))
    step("  take(): bytearray slice + bytes() = 2 copies", "dcpool/transport/_buffer.py:ReceiveBuffer.take",
         lambda: bytes(framed_array[4:]))
    step("ciphertext copy bytes(view[24:])", "dcpool/mtproto/envelope.py:_decrypt_checked",
         lambda: bytes(view[24:]))
    step("KDF (aes_key_iv)", "dcpool/crypto/kdf.py:aes_key_iv", lambda: kdf.aes_key_iv(key.key, mk, 8))
    step(f"AES-256-IGE decrypt ({aes.BACKEND})", "dcpool/crypto/aes.py", lambda: aes.ige_decrypt(cipher, aes_key, aes_iv),
         True)
    step("SHA-256 msg_key check", "dcpool/crypto/kdf.py:msg_key_large", lambda: kdf.msg_key(key.key, plain, 8), True)
    step("padding trim plaintext[:32+length]", "dcpool/mtproto/envelope.py:decrypt", lambda: plain[: 32 + length])
    step("body slice (parse_plaintext)", "dcpool/mtproto/envelope.py:parse_plaintext",
         lambda: envelope.parse_plaintext(trimmed))
    step("rpc_result decode (Reader.rest copy)", "dcpool/mtproto/session.py:_decode",
         lambda: session_mod._decode(trimmed[32:]))
    step("upload.file bytes (file_bytes)", "dcpool/transfers/download.py:file_bytes",
         lambda: file_bytes(result_bytes))
    step("one plain 512 KiB memcpy (reference)", "-", lambda: cipher[1:])

    floor_backend = _timeit(lambda: (aes.ige_decrypt(cipher, aes_key, aes_iv), kdf.msg_key(key.key, plain, 8)),
                            min_seconds)
    floors = {f"{aes.BACKEND} + sha256": floor_backend}
    try:
        import tgcrypto

        floors["tgcrypto + sha256"] = _timeit(
            lambda: (tgcrypto.ige256_decrypt(cipher, aes_key, aes_iv), hashlib.sha256(plain).digest()), min_seconds)
    except ImportError:  # pragma: no cover
        pass
    return {
        "part_bytes": PART,
        "read_bytes": read,
        "malloc_pinned": pinned,
        "path_us": total,
        "path_mb_per_cpu_s": PART / total,
        "steps": [{"step": n, "where": w, "us": us, "share_of_path": us / total, "unavoidable": u}
                  for n, w, us, u in steps],
        "floors_us": floors,
        "floor_mb_per_cpu_s": {k: PART / v for k, v in floors.items()},
        "avoidable_share": 1 - floor_backend / total,
    }


def print_table(res: dict[str, Any], console: Any = None) -> None:
    rows = [[s["step"], s["where"], f"{s['us']:,.0f}", f"{100 * s['share_of_path']:.1f}%",
             "yes" if s["unavoidable"] else ""] for s in res["steps"]]
    caption = (
        f"whole receive path (transport with {res['read_bytes'] // 1024} KiB reads + ClientSession.receive + "
        f"_file_bytes): {res['path_us']:,.0f} µs per "
        f"512 KiB part = {res['path_mb_per_cpu_s']:,.0f} MB per CPU-s; floor: "
        + ", ".join(f"{k} {v:,.0f} µs" for k, v in res["floors_us"].items())
        + f"; everything above the {next(iter(res['floors_us']))} floor: {100 * res['avoidable_share']:.0f}% "
          "of the path. Steps overlap (a step's time includes its own copies); the reference memcpy row "
          "is the price of one extra copy (in cache, allocator pinned"
          + ("" if res.get("malloc_pinned") else " -- mallopt failed: page-fault noise included")
          + "; in a real run a copy of cold data costs more)."
    )
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:  # pragma: no cover
        for r in rows:
            print(" | ".join(r))
        print(caption)
        return
    t = Table(title="Client receive path per 512 KiB part (µs, process time)", caption=caption,
              caption_justify="left")
    for i, c in enumerate(["step", "file:function", "µs", "% of path", "unavoidable"]):
        t.add_column(c, justify="left" if i < 2 else "right")
    for r in rows:
        t.add_row(*r)
    (console or Console()).print(t)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", metavar="PATH")
    parser.add_argument("--seconds", type=float, default=0.3, help="minimum timing per step")
    parser.add_argument("--read-kib", type=int, default=0,
                        help="read size for the whole-path timing (default: one read per frame)")
    args = parser.parse_args(argv)
    res = breakdown(args.seconds, args.read_kib * 1024 or PART + 1024)
    print_table(res)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(res, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
