"""CDN chunk decryption and hash checks (spec §11.4, §19 V7): dcpool.crypto.cdn."""

from __future__ import annotations

import hashlib
import zlib

import pytest

from dcpool.crypto import cdn
from dcpool.crypto.aes import AesCtr
from dcpool.errors import CdnHashMismatch, LocalProtocolError

# §19 V7, tdlib AesCtrState: crc32 of the CTR ciphertext per length
CTR_KAT = {1: 1141589763, 31: 596296607, 32: 3673001485, 33: 2302125528, 9999: 330967191,
           10000: 2047392231, 10001: 3537459563}


def tdlib_gen(length: int, extra: int) -> tuple[bytes, bytes, bytes]:
    seed = length
    out = bytearray(length + 32 + extra)
    for i in range(len(out)):
        seed = (seed * 123457567 + 987651241) & 0xFFFFFFFF
        out[i] = (seed >> 23) & 255
    return bytes(out[:length]), bytes(out[length : length + 32]), bytes(out[length + 32 :])


@pytest.mark.parametrize("length", sorted(CTR_KAT))
def test_crypt_chunk_known_answer(length: int) -> None:
    # The chunk whose offset // 16 equals the IV's last 4 bytes uses the IV unchanged, so
    # tdlib's CTR vectors apply to crypt_chunk as they are.
    data, key, iv = tdlib_gen(length, 16)
    offset = int.from_bytes(iv[12:], "big") * 16
    assert cdn.chunk_iv(iv, offset) == iv
    assert zlib.crc32(cdn.crypt_chunk(data, key, iv, offset)) == CTR_KAT[length]


def test_chunk_iv_replaces_last_four_bytes() -> None:
    iv = bytes(range(16))
    assert cdn.chunk_iv(iv, 0) == bytes(range(12)) + b"\0\0\0\0"
    assert cdn.chunk_iv(iv, 131072) == bytes(range(12)) + (8192).to_bytes(4, "big")
    with pytest.raises(LocalProtocolError):
        cdn.chunk_iv(iv, 8)
    with pytest.raises(LocalProtocolError):
        cdn.chunk_iv(iv[:15], 0)


def test_chunks_are_slices_of_one_keystream() -> None:
    # offset/16 is the block counter: decrypting any chunk equals slicing one CTR stream that
    # starts at counter iv[:12] + 0 (spec §11.4).
    key, iv = bytes(range(32)), bytes(range(100, 116))
    data = bytes(range(256)) * 2048  # 512 KiB
    whole = AesCtr(key, iv[:12] + bytes(4)).update(data)
    for offset in (0, 4096, 131072, 262144):
        assert cdn.crypt_chunk(whole[offset : offset + 131072], key, iv, offset) == data[offset : offset + 131072]


def _hashes(data: bytes) -> dict[int, cdn.CdnHash]:
    return {
        o: cdn.CdnHash(o, cdn.HASH_PART, hashlib.sha256(data[o : o + cdn.HASH_PART]).digest())
        for o in range(0, len(data), cdn.HASH_PART)
    }


def test_open_chunk_checks_every_part_and_never_returns_bad_bytes() -> None:
    key, iv = bytes(32), bytes(16)
    data = bytes(range(251)) * 2000  # 502000 bytes: 4 parts, the last one short
    known = _hashes(data)
    enc = cdn.crypt_chunk(data[262144:], key, iv, 262144)
    assert cdn.open_chunk(enc, 262144, key, iv, known, at_end=True) == data[262144:]
    bad = bytearray(enc)
    bad[131072 + 10] ^= 1  # absolute offset 393226: the part at 393216
    with pytest.raises(CdnHashMismatch) as info:
        cdn.open_chunk(bytes(bad), 262144, key, iv, known, at_end=True)
    assert info.value.offset == 393216
    # a short final part needs at_end (the CDN returned less than asked)
    with pytest.raises(LocalProtocolError):
        cdn.open_chunk(enc, 262144, key, iv, known)


def test_hashes_needed_and_missing_hash() -> None:
    data = bytes(1 << 20)
    known = _hashes(data)
    partial = {o: h for o, h in known.items() if o < 524288}
    assert cdn.hashes_needed(0, 1 << 20, partial) == [524288, 655360, 786432, 917504]
    assert cdn.hashes_needed(0, 524288, partial) == []
    with pytest.raises(LocalProtocolError):
        cdn.check_chunk(data, 0, partial)
    with pytest.raises(LocalProtocolError):  # a chunk that starts inside a part
        cdn.check_chunk(data[4096:135168], 4096, known)


def test_hash_table_from_tl() -> None:
    from dcpool import tl

    t = cdn.hash_table([tl.api.FileHash(offset=0, limit=131072, hash=b"x" * 32)])
    assert t == {0: cdn.CdnHash(0, 131072, b"x" * 32)}
