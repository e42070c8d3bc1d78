"""The asyncio client against a real dlmd: locks, timeouts, cancellation
of a waiting acquire (withdrawn in dlmd), lost notices, resume."""

import asyncio

import pytest

import dlm
import dlm.aio
from conftest import wait_until


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))


async def nwaiters(c, name):
    info = await c.info(name)
    return info["nwaiters"] if info else 0


def test_basic(dlmd):
    async def main():
        async with dlm.aio.Client("a", dlmd.address) as a:
            b = await dlm.aio.connect("b", dlmd.tcp_address)
            async with a.lock("x") as lk:
                assert lk.token > 0 and await lk.check()
                assert not await b.lock("x").acquire(blocking=False)
                assert not await b.lock("x").acquire(timeout=0.1)
                assert await b.lock("x").locked()
            assert await b.lock("x").acquire(blocking=False)
            r = a.rlock("r")
            async with r:
                async with r:
                    assert r.count == 2
            assert r.count == 0
            with pytest.raises(dlm.NotHeld):
                await a.lock("nope").release()
            with pytest.raises(dlm.KindMismatch):
                await a.rlock("x").acquire(blocking=False)
            await b.close()
    run(main())


def test_fifo_and_tasks_take_turns(dlmd):
    async def main():
        async with dlm.aio.Client("h", dlmd.address) as h, \
                dlm.aio.Client("w", dlmd.address) as w:
            await h.lock("q").acquire()
            order = []

            async def worker(i):
                lk = w.lock("q")
                async with lk:
                    order.append(i)
                    await asyncio.sleep(0.01)
            tasks = []
            for i in range(3):
                tasks.append(asyncio.ensure_future(worker(i)))
                await asyncio.sleep(0.05)
            await h.lock("q").release()
            await asyncio.gather(*tasks)
            assert order == [0, 1, 2]
    run(main())


def test_cancel_withdraws_the_wait(dlmd):
    async def main():
        async with dlm.aio.Client("a", dlmd.address) as a, \
                dlm.aio.Client("b", dlmd.address) as b, \
                dlm.aio.Client("c", dlmd.address) as c:
            holder = a.lock("x")
            await holder.acquire()
            task = asyncio.ensure_future(b.lock("x").acquire())
            for _ in range(200):
                if await nwaiters(a, "x") == 1:
                    break
                await asyncio.sleep(0.01)
            assert await nwaiters(a, "x") == 1
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert await nwaiters(a, "x") == 0
            await holder.release()
            # c gets it at once: nobody waits ahead of it.
            assert await c.lock("x").acquire(blocking=False)
            assert not b.lock("x").held()
    run(main())


def test_wait_for_timeout_cancels(dlmd):
    async def main():
        async with dlm.aio.Client("a", dlmd.address) as a, \
                dlm.aio.Client("b", dlmd.address) as b:
            await a.lock("x").acquire()
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(b.lock("x").acquire(), 0.2)
            assert await nwaiters(a, "x") == 0
    run(main())


def test_lost_and_event(dlmd):
    async def main():
        async with dlm.aio.Client("a", dlmd.address) as a, \
                dlm.aio.Client("admin", dlmd.address) as admin:
            seen = []
            lk = a.lock("f", on_lost=lambda l, why: seen.append(why))
            await lk.acquire()
            await admin.call("force_release", lock="f")
            await asyncio.wait_for(lk.lost_event.wait(), 5)
            assert seen == ["forced"] and lk.lost_reason == "forced"
            assert lk.token is None
            await lk.release()
            assert await lk.acquire(blocking=False)
    run(main())


def test_keepalive_task(dlmd):
    async def main():
        async with dlm.aio.Client("a", dlmd.address, lease_ms=1000) as a:
            lk = a.lock("x")
            await lk.acquire()
            await asyncio.sleep(2.2)
            assert await lk.check()
    run(main())


def test_resume(dlmd, relay):
    async def main():
        async with dlm.aio.Client("l", relay.address, linger_ms=5000) as c, \
                dlm.aio.Client("o", dlmd.address) as o:
            lk = c.lock("keep")
            await lk.acquire()
            token = lk.token
            relay.cut()
            for _ in range(300):
                if relay.accepted == 2 and c._state == "ready":
                    break
                await asyncio.sleep(0.01)
            assert await o.check("keep", token)
            assert await lk.check()
            assert not lk.lost_event.is_set()
            await lk.release()
            assert await o.lock("keep").acquire(blocking=False)
    run(main())


def test_no_linger_drop(dlmd, relay):
    async def main():
        c = await dlm.aio.connect("brief", relay.address)
        lk = c.lock("gone")
        await lk.acquire()
        relay.cut()
        await asyncio.wait_for(lk.lost_event.wait(), 5)
        assert lk.lost_reason == "session"
        with pytest.raises(dlm.ClientClosed):
            await lk.acquire()
        await c.close()
    run(main())


def test_semaphore(dlmd):
    async def main():
        async with dlm.aio.Client("a", dlmd.address) as a, \
                dlm.aio.Client("b", dlmd.address) as b:
            sa, sb = a.semaphore("p", 2, permits=2), b.semaphore("p", 2)
            assert await sa.acquire()
            assert not await sb.acquire(blocking=False)
            await sa.release(permits=1)
            assert await sb.acquire(timeout=2)
    run(main())


def test_watch_and_election(dlmd):
    """The asyncio twin's watch and election, as the threaded client's."""
    async def main():
        async with dlm.aio.Client("a", dlmd.address) as a, \
                dlm.aio.Client("b", dlmd.address) as b, \
                dlm.aio.Client("c", dlmd.address) as c:
            states = []
            w = await c.watch("w", lambda st: states.append(st["nholders"]))
            assert w.state["nholders"] == 0 and w.holders == []
            serial = w._serial
            lk = a.lock("w")
            await lk.acquire()
            st = await w.wait(10, serial=serial)
            assert st is not None and w.holders[0]["client"] == "a"
            await lk.release()
            while w.holders:
                assert await w.wait(10) is not None
            assert states[0] == 0 and 1 in states and states[-1] == 0
            with pytest.raises(dlm.AlreadyHeld):
                await c.watch("w")
            await w.unwatch()

            leaders = []
            seen = asyncio.Event()

            async def observed(leader):
                # An async callback runs as a task: it may use the client.
                leaders.append(leader and (leader["client"],
                                           leader.get("value")))
                await c.ping()
                seen.set()
            ob = await c.election("boss").observe(observed)
            ea, eb = a.election("boss"), b.election("boss")
            assert await ea.campaign(b"10.0.0.1:80")
            assert ea.token > 0 and ea.lock is not None
            assert not await eb.campaign(b"10.0.0.2:80", blocking=False)
            assert (await eb.leader())["client"] == "a"
            while ("a", b"10.0.0.1:80") not in leaders:
                seen.clear()
                await asyncio.wait_for(seen.wait(), 10)
            await ea.resign()
            with pytest.raises(dlm.NotHeld):
                await ea.resign()
            assert await eb.campaign(b"10.0.0.2:80", timeout=5)
            while ("b", b"10.0.0.2:80") not in leaders:
                seen.clear()
                await asyncio.wait_for(seen.wait(), 10)
            await ob.unwatch()
    run(main())


def test_watch_survives_a_resume(dlmd, relay):
    async def main():
        async with dlm.aio.Client("lw", relay.address, linger_ms=5000) as c, \
                dlm.aio.Client("h", dlmd.address) as h:
            w = await c.watch("k")
            relay.cut()
            while relay.accepted < 2:
                await asyncio.sleep(0.01)
            await c.ping()
            await h.lock("k").acquire()
            while not w.holders:
                assert await w.wait(10) is not None
            assert w.holders[0]["client"] == "h"
    run(main())
