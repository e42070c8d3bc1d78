"""The threaded client: :class:`Client` and the locks it makes.

One :class:`Client` is one dlmd session. Any number of threads may use it
at once: each request goes out under the client's mutex, and the replies
and notifications are read by one thread at a time, the holder of the
"read role". A thread waiting for its answer takes the role itself when
nobody has it, and reads until its answer is in (dispatching whatever else
comes: other threads' answers wake those threads); a thread that finds the
role taken sleeps until its answer is dispatched or the role is handed to
it. The client's reader thread takes the role only when the callers have
left the socket alone for _IDLE (so that notices and the keepalive's
answers are read within about that long) or when a caller saw the
connection end (the reader thread alone reconnects). A background thread
pings the server when the client has been quiet for a third of the lease
(a sixth in a cluster), as libdlm does.

User callbacks (on_lost, on_contended, a watch's callback) never run in
the thread that reads: the reading thread updates the client's state (the
holds, Lock.lost_event, Watch.state) at once and queues the callbacks for
one "events" thread per client, which runs them in order. A callback may
therefore call back into the client (acquire again, say) without
deadlocking; a callback that blocks delays only later callbacks.

A thread's read is interruptible (a signal handler that raises, in the
main thread): the bytes received are fed to the decoder, and the decoded
messages kept in the client's inbox, by C calls with no Python code in
between, and a message leaves the inbox only once dispatched, so the next
reader carries on where the interrupted one stopped (dispatching a reply
twice is harmless).

The threads of one client take turns at a lock name, first come first
served, before asking dlmd: dlmd counts holds per session, not per thread,
so without turns a second thread's acquire of a mutex this client holds
would be refused ALREADY_HELD instead of waiting as threading.Lock's does.
"""

import _thread
import collections
import functools
import itertools
import os
import select
import socket
import ssl
import threading
import time
import weakref

import msgpack

from . import _common
from ._common import name_key, timeout_ms, wire_name
from .errors import (AlreadyHeld, Cancelled, ClientClosed, ConnectError,
                     ConnectionLost, DlmError, Forked, LockTimeout, NotActive,
                     NotFound, NotHeld, ProtocolError, WouldBlock,
                     error_from_wire)

__all__ = ["Client", "Lock", "RLock", "Semaphore", "Watch", "Election",
           "connect"]

_allocate = _thread.allocate_lock
_monotonic = time.monotonic

# How long the callers must have left the socket alone before the reader
# thread reads it (notices and the keepalive's answers wait no longer).
_IDLE = 0.05

# What _pump says besides how many answers it dispatched.
_EOF = -1
_TIMEOUT = -2

# The read role's holder when it is the reader thread.
_READER = object()

# Every live client, so that a fork() child can mark its copies unusable.
_clients = weakref.WeakSet()


def _after_fork_in_child():
    # Only flags and file descriptors here: another thread of the parent
    # may have held a client's mutex at fork(), and it stays held forever
    # in the child.
    for c in list(_clients):
        c._forked = True
        sock = c._sock
        if sock is not None:
            try:
                # The parent's connection lives on: this drops only the
                # child's reference to it.
                os.close(sock.detach())
            except OSError:
                pass


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _wake(call):
    """Release call's waiter; waking it twice is waking it once."""
    try:
        call.waiter.release()
    except RuntimeError:
        pass


class _Token(object):
    """A thread's claim in _await, held by weak reference in _reading and
    _readq: once the thread has left _await, by a return or by an
    exception (a signal's) that struck where no cleanup could run, the
    claim dies with its frame, and the reader thread takes back a role so
    orphaned."""

    __slots__ = ("call", "__weakref__")

    def __init__(self, call):
        self.call = call


class _Call(object):
    """A request waiting for its reply. Its waiter is released when the
    reply is dispatched, and also when the read role is handed to the
    waiting thread (which then finds done still False)."""

    __slots__ = ("waiter", "error", "result", "done", "on_reply", "acquire")

    def __init__(self, on_reply=None):
        self.waiter = _allocate()
        self.waiter.acquire()
        self.error = None
        self.result = None
        self.done = False
        # Run by the reading thread with the client's mutex held, so that
        # the holds are up to date before any later notification is read.
        self.on_reply = on_reply
        # For an acquire: (name, kind), to give back a grant whose answer
        # a dropped connection swallowed.
        self.acquire = None


class _TLSConn(object):
    """A TLS connection that several threads use at once. OpenSSL forbids
    two threads inside one SSL object at once (SSL_read in one, SSL_write
    in another), and CPython's ssl module takes no lock of its own around
    them (_ssl.c releases the GIL for each call). So every SSL call here
    goes under one lock, with the socket non-blocking so that the lock is
    never held while a thread waits for the network: a reader waiting for
    bytes does not hold up a writer."""

    def __init__(self, ssock):
        ssock.setblocking(False)
        self._s = ssock
        self._mu = _allocate()

    def fileno(self):
        return self._s.fileno()

    def pending(self):
        with self._mu:
            return self._s.pending()

    def _wait(self, want_write, timeout):
        s = self._s
        if want_write:
            select.select([], [s], [], timeout)
        else:
            select.select([s], [], [], timeout)

    def recv(self, n):
        s = self._s
        while True:
            with self._mu:
                try:
                    return s.recv(n)
                except ssl.SSLWantReadError:
                    want_write = False
                except ssl.SSLWantWriteError:
                    want_write = True
            # Bounded: a writer's SSL call may have consumed what select
            # would have waited for.
            self._wait(want_write, 0.5)

    def sendall(self, data):
        s = self._s
        view = memoryview(data)
        while view:
            with self._mu:
                try:
                    view = view[s.send(view):]
                    continue
                except ssl.SSLWantReadError:
                    want_write = False
                except ssl.SSLWantWriteError:
                    want_write = True
            self._wait(want_write, 0.05)

    def shutdown(self, how):
        # socket.socket's, not SSLSocket's, which drops the SSL object
        # under a thread that may be reading it.
        socket.socket.shutdown(self._s, how)

    def close(self):
        with self._mu:
            self._s.close()

    def detach(self):
        return socket.socket.detach(self._s)


def _dial(addr, timeout, tls):
    """A connected socket to addr, or OSError/ssl errors."""
    if addr.scheme == "unix":
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.settimeout(timeout)
            s.connect(addr.path)
        except BaseException:
            s.close()
            raise
        return s
    s = socket.create_connection((addr.host, addr.port), timeout=timeout)
    try:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if addr.scheme == "tls":
            s = tls.wrap_socket(s, server_hostname=addr.host)
    except BaseException:
        s.close()
        raise
    return s


class Client(_common.ClientBase):
    """A session with dlmd, shared by all the threads of a program.

    ``Client("web-1")`` connects at once and opens a session named web-1.

    :param name: the client name, unique among dlmd's sessions (None: the
        library makes one, HOST:PID:N, as libdlm does).
    :param address: ``unix:PATH``, ``tcp:HOST:PORT``, ``tls:HOST:PORT``, a
        comma-separated list of them or a Python list (the members of a
        cluster, tried in turn). None: ``$DLM_SERVER``, else the default
        socket.
    :param lease_ms: the lease asked for (None: the server's default).
    :param linger_ms: how long the session outlives a dropped connection;
        within it, this client reconnects and resumes the session with its
        holds. 0 (the default): the holds end with the connection.
    :param token: a client token for hello's ``auth`` (or ``token_file``,
        a file whose first line is the token, as dlmctl reads it).
    :param label: free text shown by ``dlmctl clients``.
    :param connect_timeout: seconds connecting (and each reconnect attempt)
        may take.
    :param tls_ca, tls_cert, tls_key: files for ``tls:`` addresses (None:
        ``$DLM_TLS_CA``, ``$DLM_TLS_CERT``, ``$DLM_TLS_KEY``).
    :param on_lost: called as ``on_lost(name, token, reason)`` when a hold
        is lost. Callbacks (this, ``on_contended``, a lock's and a watch's)
        run in one "events" thread per client, in the order of the notices,
        never in the thread that read the notice: a callback may use the
        client (acquire again, say); one that blocks delays only the
        callbacks after it. The client's state (``held()``,
        ``lost_event``, ``Watch.state``) is updated before the callback
        runs.
    :param on_contended: called as ``on_contended(name, token, waiters)``
        when a hold acquired with ``notify_contended`` gets waiters.

    A Client is a context manager; leaving it closes the session.
    """

    def __init__(self, name=None, address=None, lease_ms=None, linger_ms=0,
                 token=None, token_file=None, label=None,
                 connect_timeout=_common.CONNECT_TIMEOUT, tls_ca=None,
                 tls_cert=None, tls_key=None, on_lost=None,
                 on_contended=None):
        if (lease_ms is not None and lease_ms < 0) or linger_ms < 0:
            raise ValueError("a negative lease or linger")
        self._setup(name, address, lease_ms, linger_ms, token, token_file,
                    label, connect_timeout, tls_ca, tls_cert, tls_key,
                    on_lost, on_contended)
        self._forked = False
        self._mu = threading.Lock()
        self._cv = threading.Condition(self._mu)
        self._state = "connecting"
        self._sock = None
        self._packer = msgpack.Packer(use_bin_type=True)
        self._uncertain = []
        self._last_send = _monotonic()
        self._server = None
        self._stop = threading.Event()
        # The read role (see the module's docstring), all under _mu: who
        # has it (a _Call, _READER or None), the calls whose threads sleep
        # for want of it, whether a reader saw the connection end (then
        # only the reader thread may take it), when a caller last let it
        # go; the socket and decoder it reads, and the messages decoded
        # but not yet dispatched.
        self._reading = None
        self._readq = collections.deque()
        self._broken = False
        self._active_at = 0.0
        self._rcv = threading.Condition(self._mu)
        self._rsock = None
        self._unpacker = None
        self._inbox = collections.deque()
        # Callbacks waiting for the events thread.
        self._events = collections.deque()
        self._ev_cv = threading.Condition(_allocate())
        self._ev_thread = None

        sock, unpacker, early = self._open(resume=False,
                                           deadline=_monotonic() +
                                           connect_timeout)
        self._sock = self._rsock = sock
        self._unpacker = unpacker
        self._inbox.extend(early)
        self._state = "ready"
        _clients.add(self)
        self._reader = threading.Thread(target=self._read_loop,
                                        name="dlm-reader %s" % self._name,
                                        daemon=True)
        self._keeper = threading.Thread(target=self._keepalive,
                                        name="dlm-keepalive %s" % self._name,
                                        daemon=True)
        self._reader.start()
        self._keeper.start()

    # -- the session ------------------------------------------------------

    def _open(self, resume, deadline):
        """Dial the servers in turn and open (or resume, or reclaim) the
        session: the socket, its unpacker and any notifications read before
        the answer. Raises the last reason when no server would do."""
        tries = _common.Dialling(self, resume, deadline, _monotonic)
        for addr, step in tries:
            if addr is None:
                time.sleep(step)
                continue
            try:
                return self._hello_on(addr, resume, _monotonic() + step)
            except (NotActive, OSError, ConnectError, ConnectionLost,
                    ProtocolError) as e:
                tries.failed(e)
        raise self._cannot_connect(tries.last)

    def _hello_on(self, addr, resume, deadline):
        try:
            sock = _dial(addr, max(0.001, deadline - _monotonic()),
                         self._tls)
        except OSError as e:
            raise _common.dial_error(addr, e)
        try:
            unpacker = _common.new_unpacker()
            early = []
            reclaiming = resume and self._cluster and self._secret
            if reclaiming:
                # Other threads may give up holds meanwhile: the claims
                # are read under the mutex.
                with self._mu:
                    params = self._reclaim_params()
                result = self._handshake(sock, unpacker, "reclaim", params,
                                         deadline, early)
                if isinstance(result, DlmError):
                    if isinstance(result, NotActive):
                        raise result
                    reclaiming = False
                    # Refused whole: the session is here already (resume
                    # it) or cannot be reclaimed (a new one).
            if not reclaiming:
                result = self._handshake(sock, unpacker, "hello",
                                         self._hello_params(resume),
                                         deadline, early)
                if isinstance(result, DlmError):
                    raise result
            sock.settimeout(None)
            if isinstance(sock, ssl.SSLSocket):
                sock = _TLSConn(sock)
        except BaseException:
            sock.close()
            raise
        self._opened(addr, result, resume, reclaiming)
        return sock, unpacker, early

    def _handshake(self, sock, unpacker, method, params, deadline, early):
        """Send hello or reclaim and read its answer: the result, or the
        server's error as an exception object."""
        msgid = self._next_msgid()
        sock.sendall(self._packer.pack([0, msgid, method, [params]]))
        while True:
            result = _common.handshake_answer(unpacker, msgid, method, early)
            if result is not None:
                return result
            left = deadline - _monotonic()
            if left <= 0:
                raise ConnectError("no answer to %s in time" % method)
            sock.settimeout(left)
            try:
                data = sock.recv(65536)
            except socket.timeout:
                raise ConnectError("no answer to %s in time" % method)
            if not data:
                raise _common.closed_before(method)
            unpacker.feed(data)

    def _opened(self, addr, result, resume, reclaimed):
        """A session is open on a new connection: note what the server said
        of it, and settle the holds. Runs with nobody else using the
        socket (the constructor, or the reader thread reconnecting with
        the read role)."""
        with self._mu:
            gone = self._note_opened(addr, result, resume, reclaimed)
            self._server = result.get("server", self._server)
            self._last_send = _monotonic()
            lost = [self._hold_lost(h, reason) for h, reason in gone]
            if reclaimed or (resume and not result.get("resumed")):
                # Grants the old server gave unheard died with it.
                self._uncertain = []
        for note in lost:
            self._tell_lost(*note)

    def _settle_uncertain_locked(self, uncertain):
        # An acquire answered on the connection that dropped may have been
        # granted unheard: give such a lock back unless this client holds
        # it (it does not know of such a grant, so nobody would release it).
        # An rlock's re-entry may have been granted unheard too: ask dlmd
        # for the hold's depth and give back the levels this client does
        # not know of.
        # The mutex is held.
        for name, kind in uncertain:
            if kind == "rlock":
                self._send_internal_locked(
                    "lock", {"lock": wire_name(name)},
                    on_reply=functools.partial(self._settle_rlock, name))
            elif name_key(name) not in self._holds:
                self._send_internal_locked("release",
                                           {"lock": wire_name(name)})

    def _settle_rlock(self, name, call):
        # Dispatching, the mutex held: the depth dlmd gave is as of the
        # query, and every answer to what this client sent before it has
        # been dispatched (re-entries and releases are answered at once).
        if call.error is not None or not isinstance(call.result, dict):
            return
        h = self._holds.get(name_key(name))
        for holder in call.result.get("holders") or []:
            if holder.get("client") != self._name:
                continue
            token = holder.get("token")
            extra = holder.get("count", 1)
            if h is not None and h.token == token:
                extra -= h.count
            for _ in range(max(0, extra)):
                msgid = self._next_msgid()
                self._send_locked([0, msgid, "release",
                                   [{"lock": wire_name(name),
                                     "token": token}]])

    # -- reading ----------------------------------------------------------

    def _pump(self, deadline):
        """With the read role: dispatch what the inbox holds, else read
        the socket once (waiting until deadline at most) and dispatch what
        came. How many answers to waiting calls it dispatched; _EOF when
        the connection ended or sent garbage, _TIMEOUT when nothing came
        before the deadline."""
        inbox = self._inbox
        if not inbox:
            sock = self._rsock
            if deadline is not None:
                left = deadline - _monotonic()
                if left <= 0:
                    return _TIMEOUT
                pending = getattr(sock, "pending", None)
                if not (pending is not None and pending()) and \
                        not select.select([sock], [], [], left)[0]:
                    return _TIMEOUT
            # recv and feed in one C call chain: a signal's exception can
            # come before (nothing read) or after (all fed), never between.
            fed, seen = itertools.tee(map(sock.recv, (262144,)))
            try:
                collections.deque(map(self._unpacker.feed, fed), 0)
            except (OSError, ValueError, msgpack.UnpackException):
                return _EOF
            if not next(seen):
                return _EOF
            try:
                inbox.extend(self._unpacker)
            except (ValueError, msgpack.UnpackException):
                # Garbage: what came before it still counts; the reader
                # thread then sees the end of the connection.
                self._dispatch_inbox()
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except (OSError, ValueError):
                    pass
                return _EOF
        return self._dispatch_inbox()

    def _dispatch_inbox(self):
        inbox = self._inbox
        answered = 0
        while inbox:
            if self._dispatch(inbox[0]):
                answered += 1
            inbox.popleft()
        return answered

    def _wake_next_locked(self):
        """The role is free: wake the first thread that sleeps for want
        of it (one whose answer is still to come)."""
        dead = False
        for ref in self._readq:
            t = ref()
            if t is None:
                dead = True
            elif not t.call.done:
                _wake(t.call)
                break
        if dead:
            self._readq = collections.deque(
                r for r in self._readq if r() is not None)

    def _someone_waits_locked(self):
        for ref in self._readq:
            t = ref()
            if t is not None and not t.call.done:
                return True
        return False

    def _role_free_locked(self):
        r = self._reading
        return r is None or (r is not _READER and r() is None)

    def _may_read_locked(self):
        return (self._role_free_locked() and not self._broken and
                self._state in ("ready", "closing"))

    def _drop_role(self, ref, eof):
        with self._mu:
            if self._reading is ref:
                self._reading = None
            self._active_at = _monotonic()
            if eof:
                # The reader thread alone ends or resumes the connection.
                self._broken = True
                self._rcv.notify()
            else:
                self._wake_next_locked()

    def _await(self, call, timeout=None):
        """Until call is answered (True) or timeout seconds pass (False):
        reading the socket while nobody else does, else sleeping until
        the answer is dispatched or the read role handed over."""
        deadline = None if timeout is None else _monotonic() + timeout
        me = _Token(call)
        ref = weakref.ref(me)
        with self._mu:
            if call.done:
                return True
            mine = self._may_read_locked()
            if mine:
                self._reading = ref
            else:
                self._readq.append(ref)
        while True:
            if mine:
                r = _EOF
                try:
                    r = 0
                    while not call.done and r >= 0:
                        r = self._pump(deadline)
                finally:
                    self._drop_role(ref, r == _EOF)
                if call.done:
                    return True
                if r == _TIMEOUT:
                    return False
                # The connection ended: the reader thread fails the call.
                with self._mu:
                    if call.done:
                        return True
                    self._readq.append(ref)
            ok = False
            try:
                if deadline is None:
                    call.waiter.acquire()
                else:
                    left = deadline - _monotonic()
                    if left > 0:
                        call.waiter.acquire(timeout=left)
                ok = True
            finally:
                if not ok:
                    with self._mu:
                        try:
                            self._readq.remove(ref)
                        except ValueError:
                            pass
                        if self._may_read_locked():
                            self._wake_next_locked()
            with self._mu:
                try:
                    self._readq.remove(ref)
                except ValueError:
                    pass
                expired = deadline is not None and _monotonic() >= deadline
                mine = not call.done and not expired and \
                    self._may_read_locked()
                if mine:
                    self._reading = ref
                    continue
                if self._may_read_locked():
                    # Woken for the role, perhaps, but leaving: hand it on.
                    self._wake_next_locked()
                if call.done:
                    return True
                if expired:
                    return False
                self._readq.append(ref)

    def _read_loop(self):
        rcv = self._rcv
        while True:
            with self._mu:
                while True:
                    if self._role_free_locked():
                        # (Or a caller's, orphaned by a signal.)
                        if self._broken:
                            break
                        left = self._active_at + _IDLE - _monotonic()
                        if left <= 0:
                            break
                    else:
                        # A caller reads; look again for an orphaned role.
                        left = _IDLE
                    rcv.wait(left)
                self._reading = _READER
                eof = self._broken
            while True:
                if not eof:
                    r = self._pump(None)
                    eof = r == _EOF
                if eof:
                    got = self._connection_lost(self._rsock)
                    if got is None:
                        return
                    sock, unpacker, early = got
                    with self._mu:
                        self._rsock, self._unpacker = sock, unpacker
                        self._inbox.extend(early)
                        self._broken = False
                    eof = False
                    continue
                with self._mu:
                    if self._broken:
                        # close() cut the connection.
                        eof = True
                        continue
                    if self._someone_waits_locked():
                        # A caller waits: let it read its own answers.
                        self._reading = None
                        self._wake_next_locked()
                        break
                    if r > 0:
                        # Callers are about: the next reads its own.
                        self._reading = None
                        self._active_at = _monotonic()
                        break

    # -- callbacks ----------------------------------------------------------

    def _post(self, fn, *args):
        """Run fn(*args) in the events thread, after what was posted
        before."""
        with self._ev_cv:
            self._events.append((fn, args))
            if self._ev_thread is None:
                self._ev_thread = threading.Thread(
                    target=self._run_events,
                    name="dlm-events %s" % self._name, daemon=True)
                self._ev_thread.start()
            else:
                self._ev_cv.notify()

    def _run_events(self):
        q = self._events
        cv = self._ev_cv
        while True:
            with cv:
                while not q:
                    if not cv.wait(1.0) and not q and \
                            self._state == "closed":
                        self._ev_thread = None
                        return
                fn, args = q.popleft()
            try:
                fn(*args)
            except Exception:
                pass

    def _dispatch(self, msg):
        """Act on one message; True when it answered a waiting call.
        Dispatching a message twice is harmless (see the module's
        docstring): an answer is taken off _pending only after its call
        is woken."""
        if not isinstance(msg, list) or not msg:
            return False
        if msg[0] == _common.RESPONSE and len(msg) == 4 and \
                isinstance(msg[1], int):
            with self._mu:
                call = self._pending.get(msg[1])
                if call is None:
                    return False
                if not call.done:
                    if msg[2] is not None:
                        call.error = error_from_wire(msg[2])
                    else:
                        call.result = msg[3]
                    if call.on_reply is not None:
                        try:
                            call.on_reply(call)
                        except Exception as e:  # a reply that does not read
                            call.error = ProtocolError(str(e))
                    call.done = True
                _wake(call)
                self._pending.pop(msg[1], None)
            return True
        elif msg[0] == _common.NOTIFY and len(msg) == 3:
            params = _common.notice_params(msg)
            if params is None:
                return False
            if msg[1] == "lost":
                self._on_lost_notice(params)
            elif msg[1] == "changed":
                self._on_changed(params)
            elif msg[1] == "contended":
                self._on_contended(params)
        return False

    def _on_lost_notice(self, params):
        with self._mu:
            h = self._holder(params)
            if h is None:
                return
            note = self._hold_lost(h, params.get("reason") or "unknown")
        self._tell_lost(*note)

    def _hold_lost(self, h, reason):
        """Forget a hold (mutex held); what _tell_lost needs."""
        return h.name, h.token, reason, self._forget_hold(h)

    def _tell_lost(self, name, token, reason, owners):
        for lk in owners:
            lk._lost(reason)
        self._post(self._lost_callbacks, name, token, reason, owners)

    def _lost_callbacks(self, name, token, reason, owners):
        # The events thread.
        for lk in owners:
            cb = lk.on_lost
            if cb is not None:
                try:
                    cb(lk, reason)
                except Exception:
                    pass
        cb = self.on_lost
        if cb is not None:
            cb(name, token, reason)

    def _on_contended(self, params):
        key = name_key(params.get("lock"))
        with self._mu:
            h = self._holder(params)
            if h is None:
                return
            owners = list(h.owners)
        self._post(self._contended_callbacks, key, params.get("token"),
                   params.get("waiters", 0), owners)

    def _contended_callbacks(self, key, token, waiters, owners):
        # The events thread.
        for lk in owners:
            cb = lk.on_contended
            if cb is not None:
                try:
                    cb(lk, waiters)
                except Exception:
                    pass
        if self.on_contended is not None:
            self.on_contended(key, token, waiters)

    def _on_changed(self, params):
        with self._mu:
            w = self._watches.get(name_key(params.get("lock")))
        if w is not None:
            w._changed(params)

    def _connection_lost(self, sock):
        """The reader saw its connection end: fail what was in flight, then
        resume the session within its linger (in a cluster, reclaim it on
        the next active), or end the client. Returns the new connection's
        socket, unpacker and early notifications, or None when over."""
        lost = []
        with self._mu:
            if self._sock is sock:
                self._sock = None
            try:
                sock.close()
            except OSError:
                pass
            closing = self._state == "closing" or self._state == "closed"
            pending, self._pending = self._pending, {}
            for call in pending.values():
                if call.acquire is not None:
                    self._uncertain.append(call.acquire)
                call.error = (ClientClosed("the client was closed")
                              if closing else ConnectionLost(
                                  "the connection to dlmd was lost with "
                                  "the request in flight"))
                call.done = True
                _wake(call)
            window = self._resume_window()
            if closing or self._forked or window <= 0:
                self._state = "closed"
                if not closing:
                    self._closed_exc = ClientClosed(
                        "the connection to dlmd was lost, and the session "
                        "with it (no linger)")
                    for h in list(self._holds.values()):
                        lost.append(self._hold_lost(h, "session"))
                self._cv.notify_all()
            else:
                self._state = "reconnecting"
        for note in lost:
            self._tell_lost(*note)
        if self._state == "closed":
            self._stop.set()
            return None
        deadline = _monotonic() + window
        try:
            sock2, unpacker, early = self._open(resume=True,
                                                deadline=deadline)
        except Exception as e:
            with self._mu:
                self._state = "closed"
                self._closed_exc = ClientClosed(
                    "the session could not be resumed within its linger: %s"
                    % (e,))
                for h in list(self._holds.values()):
                    lost.append(self._hold_lost(h, "session"))
                self._cv.notify_all()
            for note in lost:
                self._tell_lost(*note)
            self._stop.set()
            return None
        with self._mu:
            if self._state != "reconnecting":
                # close() came while the session was being resumed: end
                # it here too, or its holds would outlive the client by
                # the linger.
                try:
                    sock2.sendall(msgpack.packb([0, 0, "bye", []],
                                                use_bin_type=True))
                except (OSError, ValueError):
                    pass
                sock2.close()
                return None
            uncertain, self._uncertain = self._uncertain, []
            self._sock = sock2
            self._state = "ready"
            # Before any other thread may send (they wait for the mutex):
            # an unheard grant is given back ahead of a new acquire of the
            # same lock, which would otherwise find it held (AlreadyHeld).
            self._settle_uncertain_locked(uncertain)
            # Watches belong to a connection: ask again, and tell the
            # watchers the state now.
            for w in list(self._watches.values()):
                self._send_internal_locked(
                    "watch", {"lock": wire_name(w.name)},
                    on_reply=w._rewatched)
            self._cv.notify_all()
        return sock2, unpacker, early

    def _keepalive(self):
        while True:
            with self._mu:
                if self._state == "closed" or self._forked:
                    return
                every = self._ping_every()
                wait = self._last_send + every - _monotonic()
                if self._state != "ready":
                    wait = 0.1
                elif wait <= 0:
                    msgid = self._next_msgid()
                    self._send_locked([0, msgid, "ping", []])
                    wait = every
            if self._stop.wait(max(wait, 0.01)):
                return

    # -- sending ----------------------------------------------------------

    def _check(self):
        if self._forked or self._pid != os.getpid():
            raise Forked("this dlm client was made by the parent process; "
                         "connect again after fork()")

    def _send_locked(self, frame):
        sock = self._sock
        if sock is None:
            return False
        try:
            sock.sendall(self._packer.pack(frame))
        except (OSError, ValueError):
            # The reader sees the connection end and fails what waits.
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except (OSError, ValueError):
                pass
            return False
        self._last_send = _monotonic()
        return True

    def _wait_ready(self, deadline):
        """With the mutex held: until the session is open; raises when the
        client is closed or the deadline passes first."""
        while self._state != "ready":
            if self._state in ("closed", "closing"):
                raise self._closed_exc or ClientClosed("the client is "
                                                       "closed")
            if deadline is None:
                self._cv.wait()
            else:
                left = deadline - _monotonic()
                if left <= 0:
                    raise LockTimeout("timed out waiting for the session "
                                      "to be resumed")
                self._cv.wait(left)

    def _start(self, method, params, on_reply=None, deadline=None,
               acquire=None):
        """Send a request; the _Call to wait on, and its msgid."""
        self._check()
        call = _Call(on_reply)
        call.acquire = acquire
        with self._mu:
            self._wait_ready(deadline)
            msgid = self._next_msgid()
            self._pending[msgid] = call
            self._send_locked([0, msgid, method, [params]])
        return call, msgid

    def _send_internal(self, method, params, on_reply=None):
        """A request whose answer nobody waits for."""
        with self._mu:
            self._send_internal_locked(method, params, on_reply)

    def _send_internal_locked(self, method, params, on_reply=None):
        if self._state != "ready":
            return
        msgid = self._next_msgid()
        if on_reply is not None:
            self._pending[msgid] = _Call(on_reply)
        self._send_locked([0, msgid, method, [params]])

    def _finish(self, call):
        if call.error is not None:
            raise call.error
        return call.result

    def _wait(self, call, msgid):
        """Wait for call's reply; an interrupted wait cancels an acquire in
        dlmd and gives back what was granted meanwhile."""
        try:
            self._await(call)
        except BaseException:
            if call.acquire is not None:
                self._abandon(call, msgid)
            raise
        return self._finish(call)

    def _abandon(self, call, msgid):
        self._send_internal("cancel", {"id": msgid})
        self._await(call, 5)
        name, kind = call.acquire
        if call.done and call.error is None:
            # Granted before the cancel arrived: nobody will use the hold.
            token = call.result.get("token")
            with self._mu:
                h = self._holds.get(name_key(name))
                if h is not None and h.token == token:
                    del self._holds[name_key(name)]
            self._send_internal("release", {"lock": wire_name(name),
                                            "token": token})

    def call(self, method, **params):
        """Call any method of the protocol by name (``locks``, ``lock``,
        ``clients``, ``stats``, ``force_release``...) and return its result;
        a server error is raised as its exception."""
        call, msgid = self._start(method, params)
        return self._wait(call, msgid)

    # -- public -----------------------------------------------------------

    @property
    def session(self):
        """The server's number for the session."""
        return self._session

    @property
    def lease_ms(self):
        """The lease the server gave."""
        return self._lease_ms

    @property
    def linger_ms(self):
        """The linger the server gave."""
        return self._linger_ms

    @property
    def server(self):
        """The server's version string ("dlmd 0.1.0")."""
        return self._server

    @property
    def closed(self):
        """True once the client is closed or its session is over."""
        return self._state in ("closed", "closing")

    def lock(self, name, shared=False, timeout=None, value=None,
             lock_delay_ms=0, notify_contended=False, deadlock_check=True,
             on_lost=None, on_contended=None):
        """A :class:`Lock` (a mutex) named ``name``; nothing is asked of
        dlmd until it is acquired. ``shared`` takes it in shared mode;
        ``timeout`` (seconds) is how long ``with lock:`` waits."""
        return Lock(self, name, "mutex", shared, timeout, value,
                    lock_delay_ms, notify_contended, deadlock_check,
                    on_lost, on_contended)

    def rlock(self, name, shared=False, timeout=None, value=None,
              lock_delay_ms=0, notify_contended=False, deadlock_check=True,
              on_lost=None, on_contended=None):
        """An :class:`RLock` named ``name``: reentrant, as threading.RLock
        is, in the thread that holds it; dlmd counts each level."""
        return RLock(self, name, "rlock", shared, timeout, value,
                     lock_delay_ms, notify_contended, deadlock_check,
                     on_lost, on_contended)

    def mklock(self, name):
        """The seed's name for :meth:`lock`."""
        return self.lock(name)

    def mkrlock(self, name):
        """The seed's name for :meth:`rlock`."""
        return self.rlock(name)

    def semaphore(self, name, capacity, permits=1, timeout=None,
                  lock_delay_ms=0, on_lost=None):
        """A :class:`Semaphore`: ``permits`` of ``capacity``, which every
        user of the name must give alike."""
        return Semaphore(self, name, capacity, permits, timeout,
                         lock_delay_ms, on_lost)

    def synchronized(self, name, shared=False, timeout=None, rlock=False):
        """A decorator: the function runs holding the lock ``name``.

        ``timeout`` (seconds) bounds the wait; past it the call raises
        :class:`~dlm.errors.LockTimeout` without running the function."""
        lk = (self.rlock if rlock else self.lock)(name, shared=shared,
                                                  timeout=timeout)

        def decorate(fn):
            @functools.wraps(fn)
            def run(*args, **kwargs):
                with lk:
                    return fn(*args, **kwargs)
            run.lock = lk
            return run
        return decorate

    def watch(self, name, callback=None):
        """Watch the holders of ``name``: returns a :class:`Watch`, whose
        ``callback(state)`` runs with the state now and after each change
        of its holders, in the client's events thread (see ``on_lost``);
        ``state`` is set before ``watch`` returns, the first callback may
        come just after."""
        key = name_key(name)
        w = Watch(self, name, callback)
        with self._mu:
            self._add_watch(key, w)
        try:
            call, msgid = self._start("watch", {"lock": wire_name(name)},
                                      w._rewatched)
            self._wait(call, msgid)
        except BaseException:
            with self._mu:
                self._drop_watch(key, w)
            raise
        return w

    def election(self, name):
        """An :class:`Election` on the lock ``name``."""
        return Election(self, name)

    def check(self, name, token):
        """Whether (name, token) is a current hold, asking dlmd (as a
        resource server validating a fencing token would)."""
        return bool(self.call("check", lock=wire_name(name),
                              token=token).get("held"))

    def info(self, name):
        """dlmd's listing of one lock (holders, waiters), or None when
        nobody holds or waits for it."""
        try:
            return self.call("lock", lock=wire_name(name))
        except NotFound:
            return None

    def locks(self, prefix=None):
        """Every lock dlmd lists (with prefix, those whose names start with
        it), all pages of them."""
        out, after = [], None
        while True:
            page = self.call("locks", **_common.locks_params(prefix, after))
            out.extend(page.get("locks", []))
            after = page.get("next")
            if after is None:
                return out

    def stats(self):
        """dlmd's counters and gauges."""
        return self.call("stats")

    def ping(self):
        """Renew the lease now (the keepalive does it anyway)."""
        return self.call("ping")

    def reset(self):
        """Release every hold of this session; how many there were."""
        res = self.call("reset")
        lost = []
        with self._mu:
            for h in list(self._holds.values()):
                self._holds.pop(name_key(h.name), None)
                lost.extend(h.owners)
                h.owners = []
            turns = list(self._turns.values())
            for t in turns:
                t.lost = True
        for lk in lost:
            lk._released()
        return res.get("released", 0)

    def holds(self):
        """The names this client holds, as far as it knows, with tokens."""
        with self._mu:
            return {k: h.token for k, h in self._holds.items()}

    def close(self):
        """End the session (``bye``: every hold is released) and close the
        connection. Calls waiting on other threads raise ClientClosed."""
        if self._forked or self._pid != os.getpid():
            return
        with self._mu:
            if self._state in ("closed", "closing"):
                return
            was_ready = self._state == "ready"
            self._state = "closing"
            self._cv.notify_all()
            call = None
            if was_ready:
                call = _Call()
                msgid = self._next_msgid()
                self._pending[msgid] = call
                if not self._send_locked([0, msgid, "bye", []]):
                    call = None
            sock = self._sock
        if call is not None:
            self._await(call, 2.0)
        with self._mu:
            self._state = "closed"
            self._closed_exc = ClientClosed("the client is closed")
            self._holds.clear()
            self._cv.notify_all()
        self._stop.set()
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except (OSError, ValueError):
                pass
        with self._mu:
            # The reader thread ends the connection now, not when it next
            # finds the socket idle.
            self._broken = True
            self._rcv.notify()
        with self._ev_cv:
            self._ev_cv.notify()
        if threading.current_thread() is not self._reader:
            self._reader.join(5)
        _clients.discard(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return "<dlm.Client %r %s on %s>" % (self._name, self._state,
                                             self.address)

    # -- turns among this client's threads --------------------------------

    def _take_turn(self, key, reentrant, deadline, blocking):
        """Wait for this thread's turn at key: True when it has it, False
        when the time ran out. Reentrant: the owner has it already."""
        me = _thread.get_ident()
        with self._mu:
            t = self._turns.get(key)
            if t is None:
                self._turns[key] = _common.Turn(me)
                return True
            if t.owner == me:
                if reentrant or t.lost:
                    return True
                raise AlreadyHeld("lock %r is held by this thread already "
                                  "(a mutex is not reentrant; use rlock)"
                                  % (key,))
            if not blocking:
                return False
            w = _allocate()
            w.acquire()
            t.queue.append((me, w))
        got = w.acquire() if deadline is None else \
            w.acquire(timeout=max(0, deadline - _monotonic()))
        if got:
            return True
        with self._mu:
            try:
                t.queue.remove((me, w))
                return False
            except ValueError:
                # Handed over just as the time ran out: it is ours.
                return True

    def _pass_turn(self, key):
        with self._mu:
            self._pass_turn_locked(key)

    def _pass_turn_locked(self, key):
        t = self._turns.get(key)
        if t is None:
            return
        if t.queue:
            t.owner, w = t.queue.popleft()
            t.lost = False
            w.release()
        else:
            del self._turns[key]


def connect(name=None, address=None, **kwargs):
    """Open a :class:`Client` (the same as calling it)."""
    return Client(name, address, **kwargs)


class Lock(_common.LockBase):
    """A lock of dlmd, taken through a client; made by
    :meth:`Client.lock` (or ``mklock``).

    ``acquire()`` and ``release()`` have threading.Lock's meaning, and the
    lock is a context manager. While held, ``token`` is the fencing token
    of the hold; ``lost_event`` is set when dlmd says the hold is lost (an
    admin took it, the lease ran out, the session could not be resumed),
    and ``on_lost(lock, reason)`` is called after, from the client's
    events thread (see :class:`Client`'s ``on_lost``).
    """

    def __init__(self, client, name, kind="mutex", shared=False,
                 timeout=None, value=None, lock_delay_ms=0,
                 notify_contended=False, deadlock_check=True, on_lost=None,
                 on_contended=None):
        self._setup(client, name, kind, shared, timeout, value,
                    lock_delay_ms, notify_contended, deadlock_check, on_lost,
                    on_contended, threading.Event())
        self._token = None

    def _granted(self, call):
        # In the reading thread, the client's mutex held: the hold is noted
        # before any notification about it can be read.
        if call.error is not None:
            return
        r = call.result
        h = self._note_grant(r)
        self._extra_grant(h, r)

    def _extra_grant(self, h, r):
        pass

    def acquire(self, blocking=True, timeout=None):
        """Take the lock: True when taken, False when not.

        With threading.Lock's meaning: ``blocking=False`` tries once;
        ``timeout`` (seconds; None or -1: no limit) bounds the wait. Other
        refusals (a deadlock, a permission, a lost connection) raise their
        :class:`~dlm.errors.DlmError`."""
        tmo = timeout_ms(blocking, timeout)
        c = self.client
        c._check()
        deadline = None if tmo < 0 else _monotonic() + tmo / 1000.0
        if not c._take_turn(self._key, self.kind == "rlock", deadline,
                            blocking):
            return False
        try:
            if deadline is not None and tmo > 0:
                tmo = max(0, int((deadline - _monotonic()) * 1000))
            call, msgid = c._start("acquire", self._params(tmo),
                                   self._granted, deadline,
                                   (self.name, self.kind))
            c._wait(call, msgid)
        except (WouldBlock, LockTimeout):
            self._turn_back()
            return False
        except BaseException:
            self._turn_back()
            raise
        self._token = call.result["token"]
        self.lost_event.clear()
        self.lost_reason = None
        return True

    def _turn_back(self):
        # An acquire that failed: the turn goes on unless this thread holds
        # the lock already (an rlock's re-entry that failed).
        c = self.client
        with c._mu:
            if self._key not in c._holds:
                c._pass_turn_locked(self._key)

    def __enter__(self):
        if not self.acquire(timeout=self.timeout):
            raise self._timed_out()
        return self

    def __exit__(self, *exc):
        self.release()

    def release(self):
        """Give the lock back (one level of an rlock). Raises
        :class:`~dlm.errors.NotHeld` when this client does not hold it. A
        hold dlmd has said is lost is already gone: its release only ends
        this thread's turn."""
        c = self.client
        c._check()
        with c._mu:
            h = c._holds.get(self._key)
            t = c._turns.get(self._key)
            if h is None:
                if t is not None and t.lost:
                    c._pass_turn_locked(self._key)
                    return
                raise self._not_held()
            token = h.token
        params = {"lock": wire_name(self.name), "token": token}
        self._release_params(params)
        for attempt in (1, 2):
            try:
                call, msgid = c._start("release", params,
                                       functools.partial(self._let_go,
                                                         token))
                c._wait(call, msgid)
                return
            except ConnectionLost:
                # Resumed within the linger, the release may or may not have
                # been carried out: ask again, by token (an rlock's only if
                # dlmd still has the level it was to give back).
                if attempt == 2:
                    raise
                if self.kind == "rlock" and self._rlock_released(token):
                    return
            except NotHeld:
                with c._mu:
                    h = c._holds.get(self._key)
                    if h is not None and h.token == token:
                        c._hold_lost(h, "unknown")
                    c._pass_turn_locked(self._key)
                if attempt == 2:
                    return
                raise

    def _release_params(self, params):
        pass

    def _rlock_released(self, token):
        """After a release lost with its connection: whether dlmd carried
        it out (this client's depth then follows dlmd's), asking for the
        hold's depth once the session is resumed."""
        c = self.client
        info = c.info(self.name)
        depth = 0
        for holder in (info or {}).get("holders") or []:
            if holder.get("client") == c.name and \
                    holder.get("token") == token:
                depth = holder.get("count", 1)
        with c._mu:
            h = c._holds.get(self._key)
            if h is None or h.token != token:
                return True     # lost meanwhile: nothing to give back
            if depth >= h.count:
                return False
            if depth == 0:
                del c._holds[self._key]
                h.owners = []
                c._pass_turn_locked(self._key)
            else:
                h.count = depth
            return True

    def _let_go(self, token, call):
        # The reading thread, mutex held.
        if call.error is not None:
            return
        if self._note_release(token, call.result):
            self.client._pass_turn_locked(self._key)

    def _released(self):
        pass

    def _lost(self, reason):
        # In the reading thread; on_lost runs later, in the events thread.
        self.lost_reason = reason
        self.lost_event.set()

    @property
    def token(self):
        """The fencing token of this client's hold, or None."""
        c = self.client
        with c._mu:
            h = c._holds.get(self._key)
            return h.token if h is not None else None

    @property
    def count(self):
        """This client's depth of the hold (0: not held)."""
        c = self.client
        with c._mu:
            h = c._holds.get(self._key)
            return h.count if h is not None else 0

    def held(self):
        """Whether this client holds the lock, as far as it knows without
        asking (not reported lost)."""
        with self.client._mu:
            return self._key in self.client._holds

    owned = held

    def locked(self):
        """Whether anyone holds the lock, asking dlmd (threading.Lock's
        ``locked()``)."""
        info = self.client.info(self.name)
        return bool(info and info.get("nholders", 0) > 0)

    def check(self):
        """Whether this client's hold is still current, asking dlmd: False
        when not held or lost."""
        token = self.token
        if token is None:
            return False
        return self.client.check(self.name, token)

    def convert(self, shared, blocking=True, timeout=None):
        """Change the mode of the hold: to shared at once (the token
        stays), to exclusive waiting for the other holders to leave (a new
        token). True when done, False when the wait ran out."""
        tmo = timeout_ms(blocking, timeout)
        c = self.client
        token = self.token
        if token is None:
            raise self._not_held()
        mode = "shared" if shared else "exclusive"

        def converted(call):
            if call.error is not None:
                return
            h = c._holds.get(self._key)
            if h is not None:
                h.token = call.result["token"]
                h.mode = call.result.get("mode", mode)
                if "receipt" in call.result:
                    h.receipt = call.result["receipt"]
                    h.receipt_count = h.count

        try:
            call, msgid = c._start("convert", {"lock": wire_name(self.name),
                                               "mode": mode,
                                               "timeout_ms": tmo,
                                               "token": token}, converted)
            c._wait(call, msgid)
        except (WouldBlock, LockTimeout):
            return False
        self.shared = bool(shared)
        return True

    def __repr__(self):
        return "<dlm.%s %r %s>" % (type(self).__name__, self._key,
                                   "held" if self.held() else "not held")



class RLock(Lock):
    """A reentrant lock (``Client.rlock`` or ``mkrlock``): the thread that
    holds it may acquire it again, and it is free once released as often;
    dlmd counts every level (``count``)."""


class Semaphore(_common.SemaphoreBase, Lock):
    """A counting semaphore of dlmd (``Client.semaphore``): ``permits`` of
    its ``capacity`` per hold; up to capacity permits are held at once,
    across all clients. ``release(permits)`` may give back part."""

    def __init__(self, client, name, capacity, permits=1, timeout=None,
                 lock_delay_ms=0, on_lost=None):
        super().__init__(client, name, "semaphore", False, timeout, None,
                         lock_delay_ms, False, True, on_lost)
        self.capacity = capacity
        self.permits = permits

    def _extra_grant(self, h, r):
        h.capacity = self.capacity
        h.permits = r.get("permits", self.permits)
        h.receipt_permits = h.permits

    def release(self, permits=None):
        """Give back all the permits held, or ``permits`` of them (the
        hold stays with the rest)."""
        self._partial = permits
        return super().release()

    def _release_params(self, params):
        if getattr(self, "_partial", None):
            params["permits"] = self._partial
        self._partial = None

    @property
    def held_permits(self):
        """How many permits this client holds now."""
        with self.client._mu:
            h = self.client._holds.get(self._key)
            return h.permits if h is not None else 0


class Watch(_common.WatchBase):
    """A watch on a lock's holders (``Client.watch``). ``state`` is the
    latest state dlmd sent (``holders``, ``nholders``, ``waiters``);
    ``wait(timeout)`` waits for the next one; ``unwatch()`` ends it."""

    def __init__(self, client, name, callback=None):
        super().__init__(client, name, callback)
        self._cv = threading.Condition()

    def _changed(self, state):
        # The reading thread: the state now, the callback in the events
        # thread (in order with the client's other callbacks).
        with self._cv:
            self.state = state
            self._serial += 1
            self._cv.notify_all()
        if self.callback is not None:
            self.client._post(self._call_back, state)

    def _call_back(self, state):
        cb = self.callback
        if cb is not None:
            cb(state)

    def _rewatched(self, call):
        # The answer to watch (the first, or again on a new connection),
        # dispatched with the client's mutex held: the state it gives
        # comes before any changed notice read after it.
        if call.error is None and isinstance(call.result, dict):
            self._changed(call.result)

    def wait(self, timeout=None, serial=None):
        """Wait for a state newer than the one seen (or than ``serial``);
        the state, or None when the time ran out."""
        with self._cv:
            since = self._serial if serial is None else serial
            if not self._cv.wait_for(lambda: self._serial > since, timeout):
                return None
            return self.state

    def unwatch(self):
        """Stop watching; no callback runs after this returns (except one
        running now)."""
        c = self.client
        with c._mu:
            c._drop_watch(name_key(self.name), self)
        self.callback = None
        try:
            c.call("unwatch", lock=wire_name(self.name))
        except (NotFound, ClientClosed, ConnectionLost):
            pass


class Election(_common.ElectionBase):
    """Leader election on a lock (libdlm's dlm_campaign/dlm_observe): the
    leader holds the lock exclusively, its value (an address, say) shown to
    everyone watching."""

    def campaign(self, value=b"", blocking=True, timeout=None):
        """Become the leader, with ``value``: True when this client leads,
        False when the wait ran out. Waits behind the current leader."""
        lk = self._candidate(value)
        if not lk.acquire(blocking, timeout):
            return False
        self._lock = lk
        return True

    def resign(self):
        """Stop leading (release the lock)."""
        self._resigning().release()

    def leader(self):
        """The current leader, asking dlmd: a dict with client, token and
        value, or None while nobody leads."""
        return _common.leader_of(self.client.info(self.name))

    def observe(self, callback):
        """Watch who leads: ``callback(leader)`` with the holder (dict with
        client, token, value) or None, at once and after each change.
        Returns the :class:`Watch` (``unwatch()`` to stop)."""
        return self.client.watch(self.name, _common.leader_watcher(callback))
