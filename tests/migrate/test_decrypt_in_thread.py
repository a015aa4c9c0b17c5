"""Large frames decrypted in a worker thread (issue 18 item 3, ``PoolConfig.decrypt_in_thread``),
over loopback against the emulator: downloads stay byte-identical, the thread path is really
taken (counted per DC in ``pool.statistics()``), small answers stay on the event loop, and a
cancellation while a frame is being decrypted in a thread leaves nothing behind."""

from __future__ import annotations

import hashlib
import threading
import time

import trio

import dcpool
from dcpool.mtproto.session import ClientSession
from dcpool.testing import Cluster, StoredFile

from migrate_helpers import CODE_DC2, PHONE_DC2, pool_args

KIB = 1024
PART = 128 * KIB


async def fetch(pool: dcpool.Pool, f: StoredFile, parallel: int = 8) -> str:
    h = hashlib.sha256()
    async for chunk in pool.download(f.input_location(), dc_id=f.dc_id, size=f.size,
                                     part_size=PART, parallel=parallel):
        h.update(chunk)
    return h.hexdigest()


def thread_decryptions(pool: dcpool.Pool) -> int:
    return sum(dc.thread_decryptions for dc in pool.statistics().dcs.values())


async def test_downloads_are_identical_and_large_frames_take_the_thread(cluster: Cluster) -> None:
    home = cluster.add_file(2, size=20 * PART + 333)
    foreign = cluster.add_file(4, size=12 * PART + 7)
    with trio.fail_after(60):
        async with dcpool.open_pool(home_dc=2, decrypt_in_thread=64 * KIB,
                                    **pool_args(cluster)) as pool:
            await pool.sign_in(PHONE_DC2, CODE_DC2)
            before = thread_decryptions(pool)
            assert before == 0  # sign-in answers are small: all on the event loop
            assert await fetch(pool, home) == home.sha256
            st = pool.statistics()
            # every part but the last short one (333 bytes) came in a frame above 64 KiB; the
            # emulator may pack several answers in one container (a frame of at most 1 MiB)
            assert 20 * PART // (1024 * KIB) <= st[2].thread_decryptions <= 20
            assert await fetch(pool, foreign) == foreign.sha256
            st = pool.statistics()
            assert 12 * PART // (1024 * KIB) <= st[4].thread_decryptions <= 12
            assert st.in_flight == 0
        assert cluster.statistics().total("bytes_served") == home.size + foreign.size


async def test_off_by_default_and_above_the_threshold_only(cluster: Cluster) -> None:
    f = cluster.add_file(2, size=6 * PART)
    with trio.fail_after(60):
        async with dcpool.open_pool(home_dc=2, **pool_args(cluster)) as pool:
            assert pool.config.decrypt_in_thread is None
            await pool.sign_in(PHONE_DC2, CODE_DC2)
            assert await fetch(pool, f) == f.sha256
            assert thread_decryptions(pool) == 0
        # a threshold above every frame (a container of answers is under 2 MiB): nothing goes
        # to a thread either
        async with dcpool.open_pool(home_dc=2, decrypt_in_thread=2048 * KIB,
                                    **pool_args(cluster)) as pool:
            await pool.sign_in(PHONE_DC2, CODE_DC2)
            assert await fetch(pool, f) == f.sha256
            assert thread_decryptions(pool) == 0


async def test_cancel_while_a_frame_is_decrypted_in_a_thread(cluster: Cluster, monkeypatch) -> None:
    # The decryption step is slowed down (in its worker thread) so that the cancellation lands
    # while a thread is decrypting: the download must end at once with nothing in flight, the
    # thread must have finished before the cancelled scope is left (trio does not abandon it),
    # and the pool must keep working with byte-identical results.
    f = cluster.add_file(3, size=40 * PART)
    running = 0
    entered = 0
    lock = threading.Lock()
    original = ClientSession.decrypt_frame

    def slow_decrypt(self: ClientSession, payload: bytes) -> memoryview:
        nonlocal running, entered
        with lock:
            running += 1
            entered += 1
        try:
            time.sleep(0.05)
            return original(self, payload)
        finally:
            with lock:
                running -= 1

    with trio.fail_after(60):
        async with dcpool.open_pool(home_dc=2, decrypt_in_thread=64 * KIB,
                                    **pool_args(cluster)) as pool:
            await pool.sign_in(PHONE_DC2, CODE_DC2)
            assert await fetch(pool, f) == f.sha256  # key, transfer and connections in place
            monkeypatch.setattr(ClientSession, "decrypt_frame", slow_decrypt)
            for cut_after in (1, 3, 7):
                mark = entered
                received = 0
                with trio.CancelScope() as scope:
                    async with trio.open_nursery() as nursery:

                        async def cut(n: int = cut_after) -> None:
                            while entered < mark + n or running == 0:
                                await trio.sleep(0)
                            scope.cancel()

                        nursery.start_soon(cut)
                        dl = pool.download(f.input_location(), dc_id=3, size=f.size,
                                           part_size=PART, parallel=8)
                        async with dl as chunks:
                            async for chunk in chunks:
                                received += len(chunk)
                assert scope.cancelled_caught
                assert received < f.size
                assert pool.statistics().in_flight == 0 and dl.buffered_bytes == 0  # at once
                for state in pool.dc_states():
                    assert all(not c.calls and not c.backlog for c in state.connections())
                # The connection outlives the download: its reader finishes the frame it was
                # decrypting (an answer nobody waits for any more, dropped) and goes on.
                while running:
                    await trio.sleep(0.01)
            monkeypatch.setattr(ClientSession, "decrypt_frame", original)
            done = pool.statistics()[3].thread_decryptions
            assert await fetch(pool, f) == f.sha256
            assert done + 40 * PART // (1024 * KIB) <= pool.statistics()[3].thread_decryptions <= done + 40

        # Cancelling the whole pool while a thread decrypts: the reader's cancellation waits
        # for the thread, so nothing runs once the pool is left.
        monkeypatch.setattr(ClientSession, "decrypt_frame", slow_decrypt)
        mark = entered
        with trio.CancelScope() as outer:
            async with dcpool.open_pool(home_dc=2, decrypt_in_thread=64 * KIB,
                                        **pool_args(cluster)) as pool:
                await pool.sign_in(PHONE_DC2, CODE_DC2)
                async with trio.open_nursery() as nursery:

                    async def cancel_when_decrypting() -> None:
                        while entered == mark or running == 0:
                            await trio.sleep(0)
                        outer.cancel()

                    nursery.start_soon(cancel_when_decrypting)
                    await fetch(pool, f)
        assert outer.cancelled_caught
        assert entered > mark
        assert running == 0
