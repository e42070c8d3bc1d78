"""The asyncio client: the threaded client's twin, over asyncio streams.

    import dlm.aio

    async with dlm.aio.Client("web-1") as client:   # or await dlm.aio.connect()
        async with client.lock("invoices"):
            ...
        lk = client.lock("cache")
        if await lk.acquire(timeout=5):
            ...
            await lk.release()

One task reads every reply and notification; another pings at a third of
the lease. Cancelling a task that waits in ``acquire`` cancels the wait in
dlmd too (and gives back a grant that crossed the cancel), so the next
waiter is served at once. Tasks of one client take turns at a lock name,
as threads do at the threaded client.
"""

import asyncio
import os
import socket

import msgpack

from . import _common
from ._common import name_key, timeout_ms, wire_name
from .errors import (AlreadyHeld, ClientClosed, ConnectError,
                     ConnectionLost, DlmError, Forked, LockTimeout,
                     NotActive, NotFound, NotHeld, ProtocolError, WouldBlock,
                     error_from_wire)

__all__ = ["Client", "Lock", "RLock", "Semaphore", "Watch", "Election",
           "connect"]


async def connect(name=None, address=None, **kwargs):
    """Open a :class:`Client` and its session."""
    c = Client(name, address, **kwargs)
    await c.connect()
    return c


class Client(_common.ClientBase):
    """A dlmd session for asyncio programs. Takes the arguments of
    :class:`dlm.Client` (name, address, lease_ms, linger_ms, token,
    token_file, label, connect_timeout, tls_ca/cert/key, on_lost,
    on_contended); the connection opens in :meth:`connect` or ``async
    with``. Callbacks run in the event loop and must not block."""

    def __init__(self, name=None, address=None, lease_ms=None, linger_ms=0,
                 token=None, token_file=None, label=None,
                 connect_timeout=_common.CONNECT_TIMEOUT, tls_ca=None,
                 tls_cert=None, tls_key=None, on_lost=None,
                 on_contended=None):
        self._setup(name, address, lease_ms, linger_ms, token, token_file,
                    label, connect_timeout, tls_ca, tls_cert, tls_key,
                    on_lost, on_contended)
        self._packer = msgpack.Packer(use_bin_type=True)
        self._state = "new"
        self._ready = None
        self._writer = None
        self._reader_task = None
        self._keeper_task = None
        self._last_send = 0.0

    # -- the session ------------------------------------------------------

    def _loop_time(self):
        return asyncio.get_running_loop().time()

    async def connect(self):
        """Connect and open the session (once)."""
        self._check()
        if self._state != "new":
            return self
        self._ready = asyncio.Event()
        reader, writer = await self._open(False, self._loop_time() +
                                          self._connect_timeout)
        self._writer = writer
        self._state = "ready"
        self._ready.set()
        self._reader_task = asyncio.ensure_future(self._read_loop(reader))
        self._keeper_task = asyncio.ensure_future(self._keepalive())
        return self

    async def _open(self, resume, deadline):
        tries = _common.Dialling(self, resume, deadline, self._loop_time)
        for addr, step in tries:
            if addr is None:
                await asyncio.sleep(step)
                continue
            try:
                return await asyncio.wait_for(self._hello_on(addr, resume),
                                              step)
            except (NotActive, OSError, asyncio.TimeoutError, ConnectError,
                    ConnectionLost, ProtocolError) as e:
                tries.failed(e)
        raise self._cannot_connect(tries.last)

    async def _hello_on(self, addr, resume):
        try:
            if addr.scheme == "unix":
                reader, writer = await asyncio.open_unix_connection(
                    addr.path)
            else:
                reader, writer = await asyncio.open_connection(
                    addr.host, addr.port,
                    ssl=self._tls if addr.scheme == "tls" else None,
                    server_hostname=addr.host if addr.scheme == "tls"
                    else None)
                sock = writer.get_extra_info("socket")
                if sock is not None:
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError as e:
            raise _common.dial_error(addr, e)
        try:
            unpacker = _common.new_unpacker()
            reclaiming = bool(resume and self._cluster and self._secret)
            if reclaiming:
                result = await self._handshake(reader, writer, unpacker,
                                               "reclaim",
                                               self._reclaim_params())
                if isinstance(result, NotActive):
                    raise result
                if isinstance(result, DlmError):
                    reclaiming = False
            if not reclaiming:
                result = await self._handshake(reader, writer, unpacker,
                                               "hello",
                                               self._hello_params(resume))
                if isinstance(result, DlmError):
                    raise result
        except BaseException:
            writer.close()
            raise
        self._opened(addr, result, resume, reclaiming)
        return _Stream(reader, unpacker), writer

    async def _handshake(self, reader, writer, unpacker, method, params):
        msgid = self._next_msgid()
        writer.write(self._packer.pack([0, msgid, method, [params]]))
        self._early = []
        while True:
            result = _common.handshake_answer(unpacker, msgid, method,
                                              self._early)
            if result is not None:
                return result
            data = await reader.read(65536)
            if not data:
                raise _common.closed_before(method)
            unpacker.feed(data)

    def _opened(self, addr, result, resume, reclaimed):
        gone = self._note_opened(addr, result, resume, reclaimed)
        self._last_send = self._loop_time()
        for h, reason in gone:
            self._hold_lost(h, reason)

    async def _read_loop(self, stream):
        while True:
            for msg in self._early:
                self._dispatch(msg)
            self._early = []
            try:
                while True:
                    data = await stream.reader.read(262144)
                    if not data:
                        break
                    stream.unpacker.feed(data)
                    for msg in stream.unpacker:
                        self._dispatch(msg)
            except (OSError, ValueError, msgpack.ExtraData,
                    msgpack.FormatError, msgpack.StackError):
                pass
            stream = await self._connection_lost()
            if stream is None:
                return

    def _dispatch(self, msg):
        if not isinstance(msg, list) or not msg:
            return
        if msg[0] == _common.RESPONSE and len(msg) == 4 and \
                isinstance(msg[1], int):
            entry = self._pending.pop(msg[1], None)
            if entry is None:
                return
            fut, on_reply = entry
            if msg[2] is not None:
                err, res = error_from_wire(msg[2]), None
            else:
                err, res = None, msg[3]
            if on_reply is not None:
                on_reply(err, res)
            if not fut.done():
                if err is not None:
                    fut.set_exception(err)
                else:
                    fut.set_result(res)
            elif err is None and fut.cancelled() and on_reply is not None:
                pass
        elif msg[0] == _common.NOTIFY and len(msg) == 3:
            params = _common.notice_params(msg)
            if params is None:
                return
            if msg[1] == "changed":
                w = self._watches.get(name_key(params.get("lock")))
                if w is not None:
                    w._changed(params)
                return
            h = self._holder(params)
            if h is None:
                return
            if msg[1] == "lost":
                self._hold_lost(h, params.get("reason") or "unknown")
            elif msg[1] == "contended":
                for lk in list(h.owners):
                    if lk.on_contended is not None:
                        lk.on_contended(lk, params.get("waiters", 0))
                if self.on_contended is not None:
                    self.on_contended(h.name, h.token,
                                      params.get("waiters", 0))

    def _hold_lost(self, h, reason):
        for lk in self._forget_hold(h):
            lk._lost(reason)
        if self.on_lost is not None:
            try:
                self.on_lost(h.name, h.token, reason)
            except Exception:
                pass

    async def _connection_lost(self):
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        closing = self._state in ("closing", "closed")
        pending, self._pending = self._pending, {}
        for fut, _ in pending.values():
            if not fut.done():
                fut.set_exception(ClientClosed("the client was closed")
                                  if closing else ConnectionLost(
                                      "the connection to dlmd was lost with "
                                      "the request in flight"))
        window = self._resume_window()
        if closing or window <= 0:
            self._end(None if closing else ClientClosed(
                "the connection to dlmd was lost, and the session with it "
                "(no linger)"))
            return None
        self._state = "reconnecting"
        self._ready.clear()
        try:
            stream, writer = await self._open(True, self._loop_time() +
                                              window)
        except Exception as e:
            self._end(ClientClosed("the session could not be resumed "
                                   "within its linger: %s" % (e,)))
            return None
        if self._state != "reconnecting":
            writer.close()
            return None
        self._writer = writer
        self._state = "ready"
        self._ready.set()
        # Watches belong to a connection: ask again, and tell the watchers
        # the state now.
        for w in list(self._watches.values()):
            msgid = self._next_msgid()
            fut = asyncio.get_running_loop().create_future()
            self._pending[msgid] = (fut, w._rewatched)
            self._send([0, msgid, "watch", [{"lock": wire_name(w.name)}]])
        return stream

    def _end(self, exc):
        self._state = "closed"
        self._closed_exc = exc or ClientClosed("the client is closed")
        if exc is not None:
            for h in list(self._holds.values()):
                self._hold_lost(h, "session")
        self._holds.clear()
        if self._ready is not None:
            self._ready.set()

    async def _keepalive(self):
        try:
            while self._state not in ("closed", "closing"):
                every = self._ping_every()
                wait = self._last_send + every - self._loop_time()
                if self._state == "ready" and wait <= 0:
                    self._send([0, self._next_msgid(), "ping", []])
                    wait = every
                await asyncio.sleep(max(wait, 0.05))
        except asyncio.CancelledError:
            pass

    # -- requests ---------------------------------------------------------

    def _check(self):
        if self._pid != os.getpid():
            raise Forked("this dlm client was made by the parent process; "
                         "connect again after fork()")

    def _send(self, frame):
        if self._writer is None:
            return False
        try:
            self._writer.write(self._packer.pack(frame))
        except (OSError, RuntimeError):
            return False
        self._last_send = self._loop_time()
        return True

    async def _start(self, method, params, on_reply=None):
        """Send a request: its future and msgid."""
        self._check()
        if self._state == "new":
            await self.connect()
        while self._state != "ready":
            if self._state in ("closed", "closing"):
                raise self._closed_exc or ClientClosed("the client is "
                                                       "closed")
            await self._ready.wait()
        msgid = self._next_msgid()
        fut = asyncio.get_running_loop().create_future()
        self._pending[msgid] = (fut, on_reply)
        self._send([0, msgid, method, [params]])
        return fut, msgid

    async def call(self, method, **params):
        """Call any method by name; its result, or its error raised."""
        fut, _ = await self._start(method, params)
        return await fut

    # -- public -----------------------------------------------------------

    @property
    def closed(self):
        """True once closed or the session is over."""
        return self._state in ("closed", "closing")

    def lock(self, name, shared=False, timeout=None, **kw):
        """A :class:`Lock` (mutex); see :meth:`dlm.Client.lock`."""
        return Lock(self, name, "mutex", shared, timeout, **kw)

    def rlock(self, name, shared=False, timeout=None, **kw):
        """An :class:`RLock`, reentrant in the task that holds it."""
        return RLock(self, name, "rlock", shared, timeout, **kw)

    mklock = lock
    mkrlock = rlock

    def semaphore(self, name, capacity, permits=1, timeout=None, **kw):
        """A :class:`Semaphore` of ``capacity``, taking ``permits``."""
        return Semaphore(self, name, capacity, permits, timeout, **kw)

    async def watch(self, name, callback=None):
        """Watch the holders of ``name``: a :class:`Watch`, whose
        ``callback(state)`` runs in the event loop with the state now and
        after each change of its holders (see :meth:`dlm.Client.watch`).
        A callback that returns an awaitable (an ``async def``) has it run
        as a task, so it may use the client."""
        key = name_key(name)
        w = Watch(self, name, callback)
        self._add_watch(key, w)
        try:
            fut, _ = await self._start("watch", {"lock": wire_name(name)},
                                       w._rewatched)
            await fut
        except BaseException:
            self._drop_watch(key, w)
            raise
        return w

    def election(self, name):
        """An :class:`Election` on the lock ``name``."""
        return Election(self, name)

    async def check(self, name, token):
        """Whether (name, token) is a current hold, asking dlmd."""
        r = await self.call("check", lock=wire_name(name), token=token)
        return bool(r.get("held"))

    async def info(self, name):
        """dlmd's listing of one lock, or None when nobody has it."""
        try:
            return await self.call("lock", lock=wire_name(name))
        except NotFound:
            return None

    async def ping(self):
        """Renew the lease now."""
        return await self.call("ping")

    async def close(self):
        """End the session (bye) and close the connection."""
        if self._pid != os.getpid() or self._state in ("closed", "closing"):
            return
        was_ready = self._state == "ready"
        self._state = "closing"
        if was_ready:
            msgid = self._next_msgid()
            fut = asyncio.get_running_loop().create_future()
            self._pending[msgid] = (fut, None)
            if self._send([0, msgid, "bye", []]):
                try:
                    await asyncio.wait_for(fut, 2)
                except (asyncio.TimeoutError, DlmError):
                    pass
        self._end(None)
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        for t in (self._keeper_task, self._reader_task):
            if t is not None and t is not asyncio.current_task():
                t.cancel()
                try:
                    await t
                except (asyncio.CancelledError, Exception):
                    pass

    async def __aenter__(self):
        await self.connect()
        return self

    async def __aexit__(self, *exc):
        await self.close()

    # -- turns among tasks ------------------------------------------------

    async def _take_turn(self, key, reentrant, blocking, deadline):
        me = asyncio.current_task()
        t = self._turns.get(key)
        if t is None:
            self._turns[key] = _common.Turn(me)
            return True
        if t.owner is me:
            if reentrant or t.lost:
                return True
            raise AlreadyHeld("lock %r is held by this task already" % (key,))
        if not blocking:
            return False
        fut = asyncio.get_running_loop().create_future()
        t.queue.append((me, fut))
        try:
            if deadline is None:
                await fut
            else:
                await asyncio.wait_for(asyncio.shield(fut),
                                       max(0, deadline - self._loop_time()))
            return True
        except (asyncio.TimeoutError, asyncio.CancelledError) as e:
            if fut.done() and not fut.cancelled():
                if isinstance(e, asyncio.TimeoutError):
                    return True
                self._pass_turn(key)
            else:
                fut.cancel()
                try:
                    t.queue.remove((me, fut))
                except ValueError:
                    pass
            if isinstance(e, asyncio.CancelledError):
                raise
            return False

    def _pass_turn(self, key):
        t = self._turns.get(key)
        if t is None:
            return
        while t.queue:
            owner, fut = t.queue.popleft()
            if fut.done():
                continue
            t.owner, t.lost = owner, False
            fut.set_result(True)
            return
        del self._turns[key]


class _Stream(object):
    __slots__ = ("reader", "unpacker")

    def __init__(self, reader, unpacker):
        self.reader = reader
        self.unpacker = unpacker


class Lock(_common.LockBase):
    """A dlmd lock for asyncio (``client.lock(name)``): ``await
    acquire(blocking=True, timeout=None)`` -> bool, ``await release()``,
    ``async with``. ``token``, ``lost_event`` (an asyncio.Event) and
    ``on_lost(lock, reason)`` as in the threaded client."""

    def __init__(self, client, name, kind="mutex", shared=False,
                 timeout=None, value=None, lock_delay_ms=0,
                 notify_contended=False, deadlock_check=True, on_lost=None,
                 on_contended=None):
        self._setup(client, name, kind, shared, timeout, value,
                    lock_delay_ms, notify_contended, deadlock_check, on_lost,
                    on_contended, asyncio.Event())

    def _granted(self, err, r):
        if err is not None:
            return
        h = self._note_grant(r)
        if self.kind == "semaphore":
            h.capacity = self.capacity

    async def acquire(self, blocking=True, timeout=None):
        """Take the lock: True when taken, False when the wait ran out (or
        ``blocking=False`` found it taken). Cancelling the awaiting task
        withdraws the wait from dlmd."""
        tmo = timeout_ms(blocking, timeout)
        c = self.client
        c._check()
        loop_time = asyncio.get_running_loop().time
        deadline = None if tmo < 0 else loop_time() + tmo / 1000.0
        if not await c._take_turn(self._key, self.kind == "rlock", blocking,
                                  deadline):
            return False
        try:
            if deadline is not None and tmo > 0:
                tmo = max(0, int((deadline - loop_time()) * 1000))
            fut, msgid = await c._start("acquire", self._params(tmo),
                                        self._granted)
            try:
                r = await asyncio.shield(fut)
            except asyncio.CancelledError:
                await self._withdraw(fut, msgid)
                raise
        except (WouldBlock, LockTimeout):
            self._turn_back()
            return False
        except BaseException:
            self._turn_back()
            raise
        self.lost_event.clear()
        self.lost_reason = None
        return r is not None

    async def _withdraw(self, fut, msgid):
        # The task was cancelled while dlmd had it waiting: cancel there,
        # and give back a grant that crossed the cancel.
        c = self.client
        c._send([0, c._next_msgid(), "cancel", [{"id": msgid}]])
        try:
            r = await asyncio.wait_for(asyncio.shield(fut), 5)
        except (DlmError, asyncio.TimeoutError, asyncio.CancelledError):
            return
        h = c._holds.get(self._key)
        if h is not None and h.token == r.get("token"):
            if h.count <= 1:
                del c._holds[self._key]
            c._send([0, c._next_msgid(), "release",
                     [{"lock": wire_name(self.name), "token": h.token}]])

    def _turn_back(self):
        if self._key not in self.client._holds:
            self.client._pass_turn(self._key)

    async def release(self, permits=None):
        """Give the lock back (one level of an rlock); NotHeld when this
        client does not hold it. A hold already lost only ends the turn."""
        c = self.client
        c._check()
        h = c._holds.get(self._key)
        if h is None:
            t = c._turns.get(self._key)
            if t is not None and t.lost:
                c._pass_turn(self._key)
                return
            raise self._not_held()
        token = h.token
        params = {"lock": wire_name(self.name), "token": token}
        if permits:
            params["permits"] = permits

        def let_go(err, r):
            if err is None and self._note_release(token, r):
                c._pass_turn(self._key)
        fut, _ = await c._start("release", params, let_go)
        try:
            await fut
        except NotHeld:
            cur = c._holds.get(self._key)
            if cur is not None and cur.token == token:
                c._hold_lost(cur, "unknown")
            c._pass_turn(self._key)
            raise

    def _lost(self, reason):
        self.lost_reason = reason
        self.lost_event.set()
        if self.on_lost is not None:
            try:
                self.on_lost(self, reason)
            except Exception:
                pass

    @property
    def token(self):
        """The fencing token of this client's hold, or None."""
        h = self.client._holds.get(self._key)
        return h.token if h is not None else None

    @property
    def count(self):
        """This client's depth of the hold (0: not held)."""
        h = self.client._holds.get(self._key)
        return h.count if h is not None else 0

    def held(self):
        """Whether this client holds it, as far as it knows."""
        return self._key in self.client._holds

    async def locked(self):
        """Whether anyone holds it, asking dlmd."""
        info = await self.client.info(self.name)
        return bool(info and info.get("nholders", 0) > 0)

    async def check(self):
        """Whether this client's hold is still current, asking dlmd."""
        token = self.token
        return token is not None and await self.client.check(self.name,
                                                             token)

    async def __aenter__(self):
        if not await self.acquire(timeout=self.timeout):
            raise self._timed_out()
        return self

    async def __aexit__(self, *exc):
        await self.release()

    def __repr__(self):
        return "<dlm.aio.%s %r %s>" % (type(self).__name__, self._key,
                                       "held" if self.held() else "not held")


class RLock(Lock):
    """A reentrant lock, reentrant in the task holding it."""


class Semaphore(_common.SemaphoreBase, Lock):
    """A counting semaphore: ``permits`` of ``capacity`` per hold."""

    def __init__(self, client, name, capacity, permits=1, timeout=None,
                 **kw):
        super().__init__(client, name, "semaphore", False, timeout, **kw)
        self.capacity = capacity
        self.permits = permits


class Watch(_common.WatchBase):
    """A watch on a lock's holders (``await client.watch(name, cb)``), as
    :class:`dlm.Watch`: ``state`` is the latest state dlmd sent
    (``holders``, ``nholders``, ``waiters``), ``await wait(timeout)`` the
    next one, ``await unwatch()`` ends it."""

    def __init__(self, client, name, callback=None):
        super().__init__(client, name, callback)
        self._cond = asyncio.Condition()
        self._tasks = set()

    def _rewatched(self, err, res):
        # The answer to watch (first, or on a new connection): dispatched
        # before any changed notice read after it.
        if err is None and isinstance(res, dict):
            self._changed(res)

    def _changed(self, state):
        self.state = state
        self._serial += 1
        loop = asyncio.get_running_loop()
        t = loop.create_task(self._notify_waiters())
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)
        cb = self.callback
        if cb is None:
            return
        try:
            r = cb(state)
        except Exception:
            return
        if asyncio.iscoroutine(r) or isinstance(r, asyncio.Future):
            t = asyncio.ensure_future(r)
            self._tasks.add(t)
            t.add_done_callback(self._tasks.discard)

    async def _notify_waiters(self):
        async with self._cond:
            self._cond.notify_all()

    async def wait(self, timeout=None, serial=None):
        """Wait for a state newer than the one seen (or than ``serial``);
        the state, or None when the time ran out."""
        since = self._serial if serial is None else serial

        async def newer():
            async with self._cond:
                await self._cond.wait_for(lambda: self._serial > since)
        try:
            await asyncio.wait_for(newer(), timeout)
        except asyncio.TimeoutError:
            return None
        return self.state

    async def unwatch(self):
        """Stop watching; no callback runs after this returns."""
        c = self.client
        c._drop_watch(name_key(self.name), self)
        self.callback = None
        try:
            await c.call("unwatch", lock=wire_name(self.name))
        except (NotFound, ClientClosed, ConnectionLost):
            pass


class Election(_common.ElectionBase):
    """Leader election on a lock, as :class:`dlm.Election`: the leader
    holds the lock exclusively, its value (an address, say) shown to
    everyone watching."""

    async def campaign(self, value=b"", blocking=True, timeout=None):
        """Become the leader, with ``value``: True when this client leads,
        False when the wait ran out. Waits behind the current leader."""
        lk = self._candidate(value)
        if not await lk.acquire(blocking, timeout):
            return False
        self._lock = lk
        return True

    async def resign(self):
        """Stop leading (release the lock)."""
        await self._resigning().release()

    async def leader(self):
        """The current leader, asking dlmd: a dict with client, token and
        value, or None while nobody leads."""
        return _common.leader_of(await self.client.info(self.name))

    async def observe(self, callback):
        """Watch who leads: ``callback(leader)`` with the holder (dict with
        client, token, value) or None, at once and after each change.
        Returns the :class:`Watch` (``await unwatch()`` to stop)."""
        return await self.client.watch(self.name,
                                       _common.leader_watcher(callback))
