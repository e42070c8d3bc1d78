"""What the threaded and the asyncio clients share: addresses, defaults,
the requests' shapes and the bookkeeping of holds. No I/O here but
reading files named by the caller (a token file, TLS files)."""

import itertools
import os
import socket
import ssl
import collections

import msgpack

from .errors import (AddressError, AlreadyHeld, ConnectError,
                     ConnectionLost, DlmError, LockTimeout, NotActive, NotHeld, ProtocolError, error_from_wire)

PROTO = 1
REQUEST, RESPONSE, NOTIFY = 0, 1, 2
MSGID_MAX = 0xFFFFFFFF
# As libdlm: a dial and its hello get this long unless told otherwise.
CONNECT_TIMEOUT = 10.0
# With several servers, one that does not answer is given up this soon.
ATTEMPT_MAX = 2.0
# Back-off between rounds of dialling while a session is resumed.
BACKOFF_FIRST, BACKOFF_MAX = 0.05, 1.0
SYSTEM_SOCKET = "/run/dlmd/dlmd.sock"

Address = collections.namedtuple("Address", "scheme host port path")
Address.__doc__ = """A parsed server address: scheme is "unix", "tcp" or
"tls"; a Unix one has path, the others host and port."""


def format_address(a):
    """The address as dlmd and libdlm write it."""
    if a.scheme == "unix":
        return "unix:" + a.path
    host = "[%s]" % a.host if ":" in a.host else a.host
    return "%s:%s:%d" % (a.scheme, host, a.port)


def _hostport(text, spec):
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise AddressError("'%s': '[' without its ']'" % spec)
        if text[end + 1:end + 2] != ":":
            raise AddressError("'%s': use [V6]:PORT, a colon after ']'"
                               % spec)
        host, port = text[1:end], text[end + 2:]
        if not host or ":" not in host:
            raise AddressError("'%s': brackets hold an IPv6 address" % spec)
    else:
        if ":" not in text:
            raise AddressError("'%s': use HOST:PORT or [V6]:PORT" % spec)
        host, port = text.split(":", 1)
        if ":" in port:
            raise AddressError("'%s': write an IPv6 address in brackets, "
                               "[V6]:PORT" % spec)
    if not host:
        raise AddressError("'%s': the host is missing" % spec)
    for ch in host:
        if ch in " \t[]" or ord(ch) < 0x20 or ord(ch) == 0x7F:
            raise AddressError("'%s': a stray %r in the host" % (spec, ch))
    if not port:
        raise AddressError("'%s': the port is missing" % spec)
    if not port.isdigit() or not port.isascii() or len(port) > 5:
        raise AddressError("'%s': port '%s' is not a decimal number from 1 "
                           "to 65535" % (spec, port))
    n = int(port)
    if not 1 <= n <= 65535:
        raise AddressError("'%s': port %s is out of range 1..65535"
                           % (spec, port))
    return host, n


def parse_address(spec):
    """One address: ``unix:PATH`` (or an absolute path), ``tcp:HOST:PORT``,
    ``tcp:[V6]:PORT`` or ``tls:HOST:PORT``, checked as dlmd checks it."""
    if isinstance(spec, Address):
        return spec
    if not isinstance(spec, str):
        raise AddressError("an address is a string, not %r" % (spec,))
    if spec.startswith("unix:") or spec.startswith("/"):
        path = spec[5:] if spec.startswith("unix:") else spec
        if not path:
            raise AddressError("'%s': the socket path is missing" % spec)
        if len(os.fsencode(path)) > 107:
            raise AddressError("'%s...': the socket path is longer than 107 "
                               "bytes" % spec[:64])
        return Address("unix", None, None, path)
    if spec.startswith("tcp:") or spec.startswith("tls:"):
        host, port = _hostport(spec[4:], spec)
        return Address(spec[:3], host, port, None)
    raise AddressError("'%s': use unix:PATH, tcp:HOST:PORT, tcp:[V6]:PORT "
                       "or tls:HOST:PORT" % spec)


def _split_list(spec):
    # A comma starts a new address only where one begins, as in libdlm, so
    # that a socket path may hold commas.
    items, start, i = [], 0, 0
    while True:
        i = spec.find(",", i)
        if i < 0:
            items.append(spec[start:])
            return items
        rest = spec[i + 1:]
        if (rest.startswith(("unix:", "tcp:", "tls:", "/", ",")) or
                rest == ""):
            items.append(spec[start:i])
            start = i + 1
        i += 1


def default_socket():
    """The default socket of this user's own dlmd: /run/dlmd/dlmd.sock for
    root, else $XDG_RUNTIME_DIR/dlmd.sock, else /tmp/dlmd-UID/dlmd.sock."""
    if os.geteuid() == 0:
        return SYSTEM_SOCKET
    xdg = os.environ.get("XDG_RUNTIME_DIR", "")
    if xdg.startswith("/"):
        return os.path.join(xdg, "dlmd.sock")
    return "/tmp/dlmd-%d/dlmd.sock" % os.geteuid()


def default_client_socket():
    """The socket a client dials when told nothing: the user's own daemon's,
    else the system daemon's when only that one exists."""
    own = default_socket()
    if os.geteuid() == 0 or os.path.exists(own):
        return own
    if os.path.exists(SYSTEM_SOCKET):
        return SYSTEM_SOCKET
    return own


def parse_addresses(address=None):
    """The servers to dial, as a list of :class:`Address`.

    ``address`` is one address, a comma-separated list (as libdlm and
    dlmctl take), or a list of them; None means ``$DLM_SERVER``, else the
    default socket.
    """
    if address is None or address == "":
        address = os.environ.get("DLM_SERVER") or default_client_socket()
    if isinstance(address, (Address, str)):
        items = [address] if isinstance(address, Address) else \
            _split_list(address)
    else:
        items = list(address)
        if not items:
            raise AddressError("an empty list of addresses")
    out = []
    for item in items:
        if item == "":
            raise AddressError("'%s': an empty address in the list"
                               % (address,))
        out.append(parse_address(item))
    return out


def read_token_file(path):
    """The first line of a token file, as dlmctl reads it."""
    with open(path, "r") as f:
        line = f.readline().rstrip("\r\n")
    if not line:
        raise DlmError("%s: it holds no token" % path)
    return line


def tls_context(ca=None, cert=None, key=None):
    """The client's TLS context: the server's certificate must be signed by
    ``ca`` ($DLM_TLS_CA; none: the system's CAs) and name the host dialled;
    ``cert`` and ``key`` ($DLM_TLS_CERT, $DLM_TLS_KEY) are the client's own,
    for a server that asks for one."""
    ca = ca or os.environ.get("DLM_TLS_CA") or None
    cert = cert or os.environ.get("DLM_TLS_CERT") or None
    key = key or os.environ.get("DLM_TLS_KEY") or None
    ctx = ssl.create_default_context(cafile=ca)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if cert:
        ctx.load_cert_chain(cert, key)
    return ctx


_name_counter = itertools.count(1)


def default_client_name():
    """HOST:PID:N, as libdlm makes one: unique per process and client."""
    return "%s:%d:%d" % (socket.gethostname() or "localhost", os.getpid(),
                         next(_name_counter))


def name_key(name):
    """A lock name as str, the form notifications carry it in.

    Bytes that are not UTF-8 keep their bytes through surrogateescape,
    which is also how replies are decoded, so the two match."""
    if isinstance(name, bytes):
        return name.decode("utf-8", "surrogateescape")
    return name


def wire_name(name):
    """A lock name as sent: str, or bytes for names that are not UTF-8."""
    if isinstance(name, bytes):
        return name
    if not isinstance(name, str):
        raise TypeError("a lock name is str or bytes, not %s"
                        % type(name).__name__)
    try:
        name.encode("utf-8")
        return name
    except UnicodeEncodeError:
        return name.encode("utf-8", "surrogateescape")


def timeout_ms(blocking, timeout):
    """acquire()'s arguments, with threading.Lock's meaning, as the
    protocol's timeout_ms: 0 to try once, -1 to wait until granted."""
    if not blocking:
        if timeout is not None and timeout != -1:
            raise ValueError("can't specify a timeout for a non-blocking "
                             "call")
        return 0
    if timeout is None or timeout == -1:
        return -1
    if timeout < 0:
        raise ValueError("timeout value must be a non-negative number, or "
                         "-1 to wait forever")
    ms = int(timeout * 1000 + 0.999)
    return min(ms, 2147483647)


def hello_params(name, lease_ms, linger_ms, auth, label, resume=None):
    """hello's parameters."""
    p = {"proto": PROTO, "client": name,
         "info": {"host": socket.gethostname()[:255], "pid": os.getpid()}}
    if label:
        p["info"]["label"] = label[:255]
    if lease_ms:
        p["lease_ms"] = int(lease_ms)
    if linger_ms:
        p["linger_ms"] = int(linger_ms)
    if auth is not None:
        p["auth"] = auth
    if resume:
        p["resume"] = resume
    return p


class Turn(object):
    """Whose turn it is, among a client's threads (or tasks), at one lock
    name: the owner, those waiting (in order) and whether the hold was
    lost under the owner."""

    __slots__ = ("owner", "queue", "lost")

    def __init__(self, owner):
        self.owner = owner
        self.queue = collections.deque()
        self.lost = False


class Hold(object):
    """What this client holds of one lock, as far as it knows."""

    __slots__ = ("name", "kind", "mode", "token", "count", "permits",
                 "capacity", "receipt", "receipt_count", "receipt_permits",
                 "value", "lock_delay_ms", "notify_contended", "owners")

    def __init__(self, name, kind, mode):
        self.name = name
        self.kind = kind
        self.mode = mode
        self.token = 0
        self.count = 0
        self.permits = 0
        self.capacity = 0
        self.receipt = None
        self.receipt_count = 0
        self.receipt_permits = 0
        self.value = None
        self.lock_delay_ms = 0
        self.notify_contended = False
        # The lock objects to tell when the hold is lost.
        self.owners = []

    def claim(self):
        """The hold as reclaim claims it after a fail-over."""
        c = {"lock": wire_name(self.name), "kind": self.kind,
             "mode": self.mode, "token": self.token, "count": self.count,
             "receipt_count": self.receipt_count or self.count,
             "receipt": self.receipt}
        if self.kind == "semaphore":
            c.update(capacity=self.capacity, permits=self.permits,
                     receipt_permits=self.receipt_permits or self.permits,
                     mode="exclusive", count=1, receipt_count=1)
        if self.value:
            c["value"] = self.value
        if self.lock_delay_ms:
            c["lock_delay_ms"] = self.lock_delay_ms
        if self.notify_contended:
            c["notify_contended"] = True
        return c


LOST_REASONS = ("forced", "reset", "expired", "failover", "session")


# -- what both clients read and write, with no I/O and no waiting --------


class ClientBase(object):
    """The state both clients keep of a session, and what they make of the
    server's answers; the threaded and the asyncio client add the I/O and
    the waiting."""

    def _setup(self, name, address, lease_ms, linger_ms, token, token_file,
               label, connect_timeout, tls_ca, tls_cert, tls_key, on_lost,
               on_contended):
        if name is not None and (not isinstance(name, str) or not name):
            raise ValueError("a client name is a non-empty str")
        self._addrs = parse_addresses(address)
        self._tls = None
        if any(a.scheme == "tls" for a in self._addrs):
            self._tls = tls_context(tls_ca, tls_cert, tls_key)
        if token is None and token_file is not None:
            token = read_token_file(token_file)
        self._name = name or default_client_name()
        self._lease_asked = lease_ms
        self._linger_asked = linger_ms
        self._auth = token
        self._label = label
        self._connect_timeout = connect_timeout
        self.on_lost = on_lost
        self.on_contended = on_contended
        self._pid = os.getpid()
        self._closed_exc = None
        self._msgid = 0
        self._pending = {}
        self._holds = {}
        self._turns = {}
        self._watches = {}
        self._session = self._secret = self._receipt = None
        self._cluster = False
        self._lease_ms = self._linger_ms = 0
        self._next_addr = 0
        self._address = None

    def _next_msgid(self):
        self._msgid = self._msgid + 1 if self._msgid < MSGID_MAX else 1
        return self._msgid

    def _hello_params(self, resume):
        return hello_params(self._name, self._lease_asked,
                            self._linger_asked, self._auth, self._label,
                            self._secret if resume else None)

    def _reclaim_params(self):
        p = {"proto": PROTO, "client": self._name,
             "secret": self._secret, "receipt": self._receipt,
             "holds": [h.claim() for h in self._holds.values()
                       if h.receipt is not None],
             "lease_ms": self._lease_ms, "linger_ms": self._linger_ms}
        if self._auth is not None:
            p["auth"] = self._auth
        return p

    def _note_opened(self, addr, result, resume, reclaimed):
        """A session is open on a new connection: note what the server said
        of it; the holds it no longer has, as (hold, reason) pairs."""
        self._address = addr
        self._session = result.get("session")
        self._lease_ms = result.get("lease_ms", self._lease_ms)
        self._linger_ms = result.get("linger_ms", self._linger_ms)
        if not reclaimed:
            self._secret = result.get("secret", self._secret)
            self._cluster = "receipt" in result
        if result.get("receipt") is not None:
            self._receipt = result["receipt"]
        gone = []
        if reclaimed:
            for outcome in result.get("holds") or []:
                if not outcome.get("kept"):
                    h = self._holds.get(name_key(outcome.get("lock")))
                    if (h is not None and h.token == outcome.get("token") and
                            all(h is not g for g, _ in gone)):
                        gone.append((h, "failover"))
        elif resume and not result.get("resumed"):
            # The server no longer had the session: every hold went with it.
            gone = [(h, "session") for h in list(self._holds.values())]
        return gone

    def _add_watch(self, key, w):
        if key in self._watches:
            raise AlreadyHeld("lock %r is watched by this client already"
                              % (key,))
        self._watches[key] = w

    def _drop_watch(self, key, w):
        if self._watches.get(key) is w:
            del self._watches[key]

    def _forget_hold(self, h):
        """Forget a hold the server says is lost; its lock objects."""
        self._holds.pop(name_key(h.name), None)
        turn = self._turns.get(name_key(h.name))
        if turn is not None:
            turn.lost = True
        owners, h.owners = h.owners, []
        return owners

    def _holder(self, params):
        """The hold a notice's params speak of, or None when stale."""
        h = self._holds.get(name_key(params.get("lock")))
        if h is None or h.token != params.get("token"):
            return None
        return h

    def _resume_window(self):
        """How long a dropped connection's session may be resumed."""
        window = self._linger_ms / 1000.0
        if self._cluster and window < 60.0:
            # A dropped connection may be a dead active: its holds wait
            # for this client to reclaim them on the next one.
            window = 60.0
        return window

    def _ping_every(self):
        """The keepalive's period: a third of the lease, a sixth in a
        cluster."""
        return (self._lease_ms or 10000) / 1000.0 / \
            (6 if self._cluster else 3)

    @property
    def name(self):
        """The client name of the session."""
        return self._name

    @property
    def address(self):
        """The address of the server the session is on."""
        return format_address(self._address) if self._address else None

    def _cannot_connect(self, last):
        """What _open raises when no server would do."""
        if isinstance(last, DlmError):
            return last
        return ConnectError("cannot connect to %s: %s" % (
            ", ".join(format_address(a) for a in self._addrs),
            last or "no time left"))


class Dialling(object):
    """The servers _open tries, in turn, with the time each may take and
    the pauses between rounds: iterating gives (address, seconds) for a
    try, (None, seconds) for a pause; failed(e) says why a try failed."""

    def __init__(self, client, resume, deadline, now):
        self.client = client
        self.resume = resume
        self.deadline = deadline
        self.now = now
        self.last = None
        self.hint = None
        self.saw_not_active = False

    def failed(self, e):
        self.last = e
        if isinstance(e, NotActive):
            self.saw_not_active = True
            if e.active and self.hint is None:
                try:
                    self.hint = parse_address(e.active)
                except DlmError:
                    self.hint = None

    def __iter__(self):
        c = self.client
        n = len(c._addrs)
        backoff = BACKOFF_FIRST
        while True:
            tried = 0
            while tried < n or self.hint is not None:
                if self.hint is not None:
                    addr, self.hint = self.hint, None
                else:
                    addr = c._addrs[c._next_addr]
                    c._next_addr = (c._next_addr + 1) % n
                    tried += 1
                left = self.deadline - self.now()
                if left <= 0:
                    break
                yield addr, (min(left, ATTEMPT_MAX) if n > 1 else left)
            # A cluster between actives, or a session being resumed: try
            # again until the deadline.
            if (not (self.resume or self.saw_not_active) or
                    self.now() >= self.deadline):
                return
            yield None, min(backoff, max(0, self.deadline - self.now()))
            backoff = min(backoff * 2, 0.25 if self.saw_not_active or
                          c._cluster else BACKOFF_MAX)


def new_unpacker():
    """The decoder of a connection: names that are not UTF-8 keep their
    bytes (see name_key)."""
    return msgpack.Unpacker(raw=False, unicode_errors="surrogateescape")


def dial_error(addr, e):
    """What a failed dial of addr raises."""
    return ConnectError("cannot connect to %s: %s" % (format_address(addr), e))


def closed_before(method):
    """What the end of a connection before hello's answer raises."""
    return ConnectionLost("the server closed the connection before "
                          "answering %s" % method)


def handshake_answer(unpacker, msgid, method, early):
    """Read hello's or reclaim's answer from what unpacker holds: the
    result, the server's error as an exception object, or None when it is
    not in yet; notices read before it go to early."""
    for msg in unpacker:
        if (isinstance(msg, list) and len(msg) == 4 and
                msg[0] == RESPONSE and msg[1] == msgid):
            if msg[2] is not None:
                return error_from_wire(msg[2])
            if not isinstance(msg[3], dict):
                raise ProtocolError("%s's answer is not a map" % method)
            return msg[3]
        if isinstance(msg, list) and msg and msg[0] == NOTIFY:
            early.append(msg)
    return None


def notice_params(msg):
    """A notification's params, or None when they are not a map."""
    params = msg[2][0] if isinstance(msg[2], list) and msg[2] else {}
    return params if isinstance(params, dict) else None


def locks_params(prefix, after):
    """One page's request of locks."""
    params = {}
    if prefix is not None:
        params["prefix"] = wire_name(prefix)
    if after is not None:
        params["after"] = after
    return params


class LockBase(object):
    """What a lock of either client is: its name and options, the request
    that takes it, and what a grant or a release makes of the hold."""

    def _setup(self, client, name, kind, shared, timeout, value,
               lock_delay_ms, notify_contended, deadlock_check, on_lost,
               on_contended, lost_event):
        if not name:
            raise ValueError("a lock name is 1 or more bytes")
        wire_name(name)
        self.client = client
        self.name = name
        self.kind = kind
        self.shared = bool(shared)
        self.timeout = timeout
        self.value = value
        self.lock_delay_ms = lock_delay_ms
        self.notify_contended = notify_contended
        self.deadlock_check = deadlock_check
        self.on_lost = on_lost
        self.on_contended = on_contended
        self.lost_event = lost_event
        self.lost_reason = None
        self._key = name_key(name)

    def _params(self, tmo):
        p = {"lock": wire_name(self.name), "timeout_ms": tmo}
        if self.kind != "mutex":
            p["kind"] = self.kind
        if self.shared:
            p["mode"] = "shared"
        if self.value is not None:
            p["value"] = self.value
        if self.lock_delay_ms:
            p["lock_delay_ms"] = self.lock_delay_ms
        if self.notify_contended:
            p["notify_contended"] = True
        if not self.deadlock_check:
            p["deadlock_check"] = False
        return p

    def _note_grant(self, r):
        """acquire's result r into the client's holds; the hold."""
        holds = self.client._holds
        h = holds.get(self._key)
        if h is None or h.token != r.get("token"):
            h = Hold(self.name, self.kind,
                     "shared" if self.shared else "exclusive")
            holds[self._key] = h
        h.token = r["token"]
        h.count = r.get("count", 1)
        h.permits = r.get("permits", 0)
        if "receipt" in r:
            h.receipt = r["receipt"]
            h.receipt_count = h.count
            h.receipt_permits = h.permits
        if self.value is not None and h.count == 1:
            h.value = self.value
        # Reclaimed after a fail-over with what it was asked with.
        h.lock_delay_ms = max(h.lock_delay_ms, self.lock_delay_ms or 0)
        h.notify_contended = h.notify_contended or self.notify_contended
        if self not in h.owners:
            h.owners.append(self)
        return h

    def _note_release(self, token, r):
        """release's result r into the hold of token: True when the hold
        is over (the caller passes the turn on)."""
        holds = self.client._holds
        h = holds.get(self._key)
        if h is None or h.token != token:
            return False
        count = r.get("count", 0)
        if count == 0:
            del holds[self._key]
            h.owners = []
            return True
        h.count = count
        if "permits" in r:
            h.permits = r["permits"]
        return False

    def _not_held(self):
        return NotHeld("lock %r is not held by this client" % (self._key,))

    def _timed_out(self):
        return LockTimeout("lock %r was not free within %s s"
                           % (self._key, self.timeout))


class SemaphoreBase(object):
    """What a semaphore of either client adds to its lock's request."""

    def _params(self, tmo):
        p = super()._params(tmo)
        p["capacity"] = self.capacity
        p["permits"] = self.permits
        return p


class WatchBase(object):
    """What a watch of either client keeps."""

    def __init__(self, client, name, callback=None):
        self.client = client
        self.name = name
        self.callback = callback
        self.state = None
        self._serial = 0

    @property
    def holders(self):
        """The holders in the latest state."""
        return (self.state or {}).get("holders", [])


class ElectionBase(object):
    """What an election of either client keeps: its lock while leading."""

    def __init__(self, client, name):
        self.client = client
        self.name = name
        self._lock = None

    def _candidate(self, value):
        if isinstance(value, str):
            value = value.encode()
        return self.client.lock(self.name, value=value or None)

    def _resigning(self):
        lk, self._lock = self._lock, None
        if lk is None:
            raise NotHeld("this client does not lead %r" % (self.name,))
        return lk

    @property
    def lock(self):
        """The leader's lock while this client leads, else None."""
        return self._lock

    @property
    def token(self):
        """The leader's fencing token while this client leads."""
        return self._lock.token if self._lock is not None else None


def leader_of(info):
    """The leader in a lock's listing, or None while nobody leads."""
    if not info or not info.get("holders"):
        return None
    return info["holders"][0]


def leader_watcher(callback):
    """A watch callback that calls callback(leader) with the holder."""
    def changed(state):
        holders = state.get("holders") or []
        return callback(holders[0] if holders else None)
    return changed
