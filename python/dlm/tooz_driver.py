"""A tooz driver for dlm: services that coordinate through tooz take their
locks from dlmd by changing their backend URL to ``dlm://...``.

URLs::

    dlm://                          $DLM_SERVER, else the default socket
    dlm:///run/dlmd/dlmd.sock       a Unix socket (the path)
    dlm://HOST:PORT                 TCP
    dlm://HOST1:PORT1,HOST2:PORT2   several servers of a cluster, in order
    dlm://HOST:PORT?tls=true        TLS
    dlm://?address=unix:/a.sock,tcp:h:7000   any list of dlm addresses

Options in the query string (or as keyword arguments of
``get_coordinator``, which take precedence):

``lease_ms``, ``linger_ms``
    The session's lease and linger, as dlm.Client takes them.
``token`` / ``token_file``
    The client token for dlmd's ``hello`` (a file is better: a URL ends up
    in logs and configuration dumps).
``tls_ca``, ``tls_cert``, ``tls_key``
    TLS files; by default $DLM_TLS_CA, $DLM_TLS_CERT, $DLM_TLS_KEY.
``prefix``
    Put before every lock name (for access rules on a prefix, or to keep
    tooz's locks apart from others); none by default, so the names tooz
    is given are the names ``dlmctl locks`` shows.

What it does: ``get_lock(name)`` gives a :class:`DlmLock`, exclusive or
shared (``acquire(shared=True)``), waiting in dlmd's FIFO queue rather than
polling; ``is_still_owner()`` asks dlmd whether the hold's fencing token
is current; ``break_()`` force-releases the lock (an admin right of dlmd);
``heartbeat()`` pings. The dlm client keeps its session alive by itself,
so the driver does not need tooz's heart (``requires_beating`` is false).
A holder's locks end when its process dies (its connection closes) or, for
a host gone silent, when its lease runs out. When the session ends under a
started coordinator (dlmd restarted, say), its holds are gone and the next
call opens a new session. dlm errors become tooz's: ToozConnectionError
when dlmd cannot be reached or the session is over, else ToozError with
dlmd's sentence. Group membership and leader election are not
implemented: tooz raises ``tooz.NotImplemented`` for them.
"""

import itertools
import logging
import os
import threading
import time

import tooz
from tooz import coordination
from tooz import locking
from tooz import utils

import dlm
from dlm import errors as dlm_errors

LOG = logging.getLogger(__name__)

__all__ = ["DlmDriver", "DlmLock"]

# The dlm errors that mean the server cannot be reached or the session is
# gone; tooz callers catch ToozConnectionError for those.
_CONNECTION_ERRORS = (dlm_errors.ConnectError, dlm_errors.ConnectionLost,
                      dlm_errors.ClientClosed, dlm_errors.ShuttingDown,
                      dlm_errors.NotActive, OSError)

_TRUE = ("1", "true", "yes", "on")


def _translated(exc):
    """Raise a dlm error as the tooz error a tooz user catches."""
    if isinstance(exc, _CONNECTION_ERRORS):
        utils.raise_with_cause(coordination.ToozConnectionError, str(exc),
                               cause=exc)
    utils.raise_with_cause(tooz.ToozError, str(exc), cause=exc)


def _text(value):
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    return str(value)


# A lock name's state within one coordinator.
_IDLE, _BUSY, _SHARED, _EXCLUSIVE = "idle", "busy", "shared", "exclusive"


class _NameState(object):
    """What one coordinator holds of one lock name.

    dlmd gives a session at most one hold of a name (a second acquire of a
    mutex is ALREADY_HELD), while tooz lets any number of Lock objects and
    threads of one coordinator ask for the same name and expects them to
    exclude each other as other coordinators do. So the coordinator's
    threads settle among themselves here first, and only the one that wins
    talks to dlmd; shared holders of one coordinator share its one shared
    hold, which is let go when the last of them releases.
    """

    __slots__ = ("cond", "state", "sharers", "held_by", "exclusive_waiting",
                 "dlm_lock", "dlm_locks")

    def __init__(self):
        self.cond = threading.Condition(threading.Lock())
        self.state = _IDLE
        self.sharers = 0
        # The DlmLock holding it exclusively.
        self.held_by = None
        # Exclusive acquires of this coordinator waiting: new local sharers
        # wait behind them, as dlmd queues shared requests behind an
        # exclusive waiter, so that they are not starved.
        self.exclusive_waiting = 0
        # The dlm lock object of the current hold.
        self.dlm_lock = None
        # dlm lock objects of this name, by shared, made once.
        self.dlm_locks = {}


class DlmLock(locking.Lock):
    """A tooz lock held in dlmd.

    Ownership is the Lock object's, as with tooz's other drivers: the
    object that acquired releases, from any thread, and ``release()`` of an
    object that holds nothing returns False.
    """

    def __init__(self, coord, name):
        super(DlmLock, self).__init__(name)
        self._coord = coord
        self._wire_name = coord._prefixed(name)
        # This object's holds (guarded by the name state's cond): the
        # number of shared acquires it made, or whether it holds
        # exclusively; of the coordinator's session numbered _session.
        self._shared = 0
        self._exclusive = False
        self._session = coord._session

    @property
    def _state(self):
        # The state of the coordinator's current session: holds of a
        # session that stop() ended are forgotten.
        coord = self._coord
        if self._session != coord._session:
            self._shared, self._exclusive = 0, False
            self._session = coord._session
        return coord._name_state(self._wire_name)

    def __repr__(self):
        return "<DlmLock %r of %s>" % (self.name, self._coord._client_name)

    def acquire(self, blocking=True, shared=False):
        """Take the lock; True when taken, False when not (busy, or the wait
        ran out).

        ``blocking``: True waits until granted, False tries once, a number
        waits at most that many seconds. ``shared``: a shared hold, which
        other shared holders may have at the same time.
        """
        blocking, timeout = utils.convert_blocking(blocking)
        # Before the name's state: a session found over is replaced (and
        # the state with it) here.
        client = self._coord._live_client()
        deadline = None
        if blocking and timeout is not None and timeout >= 0:
            deadline = time.monotonic() + timeout
        st = self._state
        with st.cond:
            if not shared:
                st.exclusive_waiting += 1
            try:
                while True:
                    if (shared and st.state == _SHARED and
                            not st.exclusive_waiting):
                        # Join this coordinator's shared hold.
                        st.sharers += 1
                        self._shared += 1
                        return True
                    if st.state == _IDLE:
                        st.state = _BUSY
                        break
                    if not blocking:
                        return False
                    left = None
                    if deadline is not None:
                        left = deadline - time.monotonic()
                        if left <= 0:
                            return False
                    st.cond.wait(left)
            finally:
                if not shared:
                    st.exclusive_waiting -= 1
                    st.cond.notify_all()
        # This thread now speaks for the coordinator: ask dlmd, outside the
        # condition, since the wait may be long.
        granted = False
        try:
            lock = st.dlm_locks.get(shared)
            if lock is None or lock.client is not client:
                lock = st.dlm_locks[shared] = client.lock(self._wire_name,
                                                          shared=shared)
            if not blocking:
                granted = lock.acquire(blocking=False)
            elif deadline is None:
                granted = lock.acquire()
            else:
                granted = lock.acquire(
                    timeout=max(0.0, deadline - time.monotonic()))
        except dlm_errors.DlmError as e:
            self._settle(st, False, shared, None)
            _translated(e)
        except BaseException:
            self._settle(st, False, shared, None)
            raise
        self._settle(st, granted, shared, lock if granted else None)
        return granted

    def _settle(self, st, granted, shared, lock):
        with st.cond:
            if granted:
                st.dlm_lock = lock
                if shared:
                    st.state = _SHARED
                    st.sharers = 1
                    self._shared += 1
                else:
                    st.state = _EXCLUSIVE
                    st.held_by = self
                    self._exclusive = True
            else:
                st.state = _IDLE
            st.cond.notify_all()

    def release(self):
        """Give the lock back; True when released, False when this object
        did not hold it, or dlmd says the hold had ended (lost: broken or
        expired)."""
        st = self._state
        with st.cond:
            if self._exclusive:
                self._exclusive = False
                st.held_by = None
            elif self._shared:
                self._shared -= 1
                st.sharers -= 1
                if st.sharers > 0:
                    return True
            else:
                return False
            lock, st.dlm_lock = st.dlm_lock, None
            st.state = _BUSY
        try:
            lock.release()
            # The client lets go quietly of a hold dlmd said was lost (a
            # `lost` notice comes before the answer to a later request, so
            # by now lost_event tells): tooz's caller is told False.
            if lock.lost_event.is_set():
                LOG.warning("lock %r had been lost (%s) before its release",
                            self.name, lock.lost_reason)
                return False
            return True
        except dlm_errors.NotHeld:
            LOG.warning("lock %r was no longer held in dlmd", self.name)
            return False
        except dlm_errors.DlmError as e:
            if isinstance(e, _CONNECTION_ERRORS):
                # The session, and with it the hold, is gone or going.
                LOG.warning("lock %r: %s", self.name, e)
                return False
            _translated(e)
        finally:
            with st.cond:
                st.state = _IDLE
                st.cond.notify_all()

    @property
    def acquired(self):
        """Whether this object holds the lock, as far as it knows."""
        with self._state.cond:
            return bool(self._exclusive or self._shared)

    def is_still_owner(self):
        """Whether this object's hold is current in dlmd: the fencing token
        it was granted is asked about (dlm's ``check``)."""
        st = self._state
        with st.cond:
            if not (self._exclusive or self._shared):
                return False
            lock = st.dlm_lock
        if lock is None:
            return False
        try:
            return bool(lock.check())
        except dlm_errors.ClientClosed:
            # The session is over, and its holds with it.
            return False
        except dlm_errors.DlmError as e:
            _translated(e)

    def heartbeat(self):
        """True when this object holds the lock. The dlm client renews its
        session (and so every hold) by itself; nothing is sent per lock."""
        return self.acquired

    @property
    def token(self):
        """The fencing token of the current hold, or None: pass it to the
        resource the lock protects, which refuses any older one."""
        st = self._state
        with st.cond:
            if not (self._exclusive or self._shared) or st.dlm_lock is None:
                return None
            return st.dlm_lock.token

    def break_(self):
        """Force-release the lock from every holder (dlm's admin
        ``force_release``); True when someone held it. Needs admin rights
        in dlmd (the server's own user over its Unix socket, root, or the
        admin token)."""
        try:
            return self._coord._force_release(self._wire_name) > 0
        except dlm_errors.NotFound:
            return False
        except dlm_errors.DlmError as e:
            _translated(e)


class DlmDriver(coordination.CoordinationDriver):
    """tooz's coordinator over a dlm session.

    One dlm session (dlm.Client) per coordinator, named after the member
    id with the process id and a count added, so that coordinators that
    share a member id (one per worker process, say) do not collide: dlmd
    keeps session names unique. Locks wait in dlmd's FIFO queue, get
    fencing tokens, and are released by dlmd the moment the coordinator's
    process dies (its connection closes) or, for a host gone silent, when
    its lease runs out.
    """

    CHARACTERISTICS = (
        # A dead holder's locks go when its connection closes; only a
        # silent host waits out its lease.
        coordination.Characteristics.NON_TIMEOUT_BASED,
        coordination.Characteristics.DISTRIBUTED_ACROSS_THREADS,
        coordination.Characteristics.DISTRIBUTED_ACROSS_PROCESSES,
        coordination.Characteristics.DISTRIBUTED_ACROSS_HOSTS,
        # One dlmd (the active one of a cluster) decides every grant and
        # release in one order, and answers after it took effect.
        coordination.Characteristics.LINEARIZABLE,
        coordination.Characteristics.SEQUENTIAL,
    )

    _counter = itertools.count(1)

    def __init__(self, member_id, parsed_url, options):
        super(DlmDriver, self).__init__(member_id, parsed_url, options)
        # The dlm client pings by itself: tooz's heart is not needed.
        self.requires_beating = False
        self._options = utils.collapse(options)
        self._client_args = self._parse(parsed_url, self._options)
        self._prefix = self._options.get("prefix", "")
        self._client = None
        self._client_name = None
        self._names = {}
        self._names_mu = threading.Lock()
        # Counts the sessions: a Lock's holds belong to one of them.
        self._session = 0

    @staticmethod
    def _parse(parsed_url, options):
        """dlm.Client's keyword arguments from the URL and options."""
        args = {}
        tls = (parsed_url.scheme.endswith("+tls") or
               str(options.get("tls", "")).lower() in _TRUE)
        if options.get("address"):
            args["address"] = options["address"]
        elif parsed_url.netloc:
            hosts = parsed_url.netloc.rsplit("@", 1)[-1]
            scheme = "tls:" if tls else "tcp:"
            args["address"] = ",".join(scheme + h for h in hosts.split(",")
                                       if h)
        elif parsed_url.path:
            args["address"] = "unix:" + parsed_url.path
        # else: dlm.Client's default ($DLM_SERVER, then the default socket)
        for key in ("lease_ms", "linger_ms"):
            if options.get(key) not in (None, ""):
                args[key] = int(options[key])
        if options.get("token"):
            args["token"] = options["token"]
        elif options.get("token_file"):
            args["token_file"] = options["token_file"]
        for key in ("tls_ca", "tls_cert", "tls_key"):
            if options.get(key):
                args[key] = options[key]
        return args

    def _prefixed(self, name):
        if not self._prefix:
            return name
        if isinstance(name, bytes):
            return self._prefix.encode("utf-8") + name
        return self._prefix + name

    def _name_state(self, wire_name):
        with self._names_mu:
            st = self._names.get(wire_name)
            if st is None:
                st = self._names[wire_name] = _NameState()
            return st

    def _live_client(self):
        client = self._client
        if client is None:
            raise tooz.ToozError("the dlm coordinator is not started")
        if client.closed:
            client = self._reopen(client)
        return client

    def _reopen(self, dead):
        # The session ended without stop(): dlmd restarted, or the
        # connection dropped and could not be resumed within the linger.
        # Its holds are gone (their Lock objects forget them); a new
        # session serves what comes next, as tooz's other drivers
        # reconnect.
        with self._names_mu:
            if self._client is dead:
                LOG.warning("dlm session %s ended; opening a new one",
                            dead.name)
                self._names = {}
                self._session += 1
                self._client = None
                self._connect()
            return self._client

    def _connect(self):
        # A name of its own each time: the old session may linger on.
        self._client_name = "%s:%d:%d" % (_text(self._member_id),
                                          os.getpid(), next(self._counter))
        try:
            self._client = dlm.Client(self._client_name, **self._client_args)
        except dlm_errors.DlmError as e:
            _translated(e)

    def _force_release(self, wire_name):
        result = self._live_client().call("force_release", lock=wire_name)
        return result.get("released", 0)

    def _start(self):
        self._connect()

    def _stop(self):
        client, self._client = self._client, None
        with self._names_mu:
            self._names = {}
            self._session += 1
        if client is not None:
            # Ending the session releases every hold of it in dlmd at once.
            try:
                client.close()
            except dlm_errors.DlmError as e:
                LOG.warning("closing the dlm session: %s", e)

    # Group membership is not built on dlm (dlmd keeps no data but holds):
    # watching a group is refused at once, as etcd3gw's driver does, rather
    # than registered and never run.

    def watch_join_group(self, group_id, callback):
        raise tooz.NotImplemented

    unwatch_join_group = watch_join_group
    watch_leave_group = watch_join_group
    unwatch_leave_group = watch_join_group
    watch_elected_as_leader = watch_join_group
    unwatch_elected_as_leader = watch_join_group

    def get_lock(self, name):
        """A :class:`DlmLock` of that name (str or bytes)."""
        return DlmLock(self, name)

    def heartbeat(self):
        """Ping dlmd (renewing the session's lease, as the client's own
        keepalive does) and return the seconds until the next ping is due:
        a third of the lease."""
        client = self._live_client()
        try:
            client.ping()
        except dlm_errors.DlmError as e:
            _translated(e)
        return client.lease_ms / 3000.0
