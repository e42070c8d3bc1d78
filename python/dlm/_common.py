"""What the threaded and the asyncio clients share: addresses, defaults,
the requests' shapes and the bookkeeping of holds. No I/O here but
reading files named by the caller (a token file, TLS files)."""

import itertools
import os
import socket
import ssl
import collections

from .errors import AddressError, DlmError

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
