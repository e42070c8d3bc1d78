"""The exceptions of the dlm client.

Every error dlmd answers with is raised as the subclass of :class:`DlmError`
named after the protocol's error (``TIMEOUT`` is :class:`LockTimeout`,
``WOULD_BLOCK`` is :class:`WouldBlock`, and so on), carrying the protocol's
``code`` and ``name`` and the server's sentence as ``message``. Errors of
the client itself (no connection, a closed client, a forked process) have
codes from 100 up, the numbers libdlm gives them.
"""

__all__ = [
    "DlmError", "BadRequest", "NoSession", "NameInUse", "WouldBlock",
    "LockTimeout", "NotHeld", "AlreadyHeld", "KindMismatch", "Cancelled",
    "LimitExceeded", "PermissionDenied", "NotFound", "ShuttingDown",
    "Deadlock", "Unsupported", "NotActive", "ConnectError",
    "ConnectionLost", "ClientClosed", "Forked", "ProtocolError",
    "AddressError", "error_from_wire",
]


class DlmError(Exception):
    """Base of every dlm error.

    ``code`` and ``name`` are the protocol's (section 6 of PROTOCOL.md) for
    errors dlmd sent, or libdlm's library codes (100 and up) for the
    client's own; ``message`` is the server's sentence, which a person can
    act on. ``details`` holds any further keys of the server's error map
    (``cycle`` of a DEADLOCK, ``active`` of a NOT_ACTIVE).
    """

    code = 0
    name = "ERROR"

    def __init__(self, message="", details=None):
        super().__init__(message or self.__class__.__doc__.strip().split("\n")[0])
        self.message = str(self.args[0])
        self.details = dict(details or {})

    def __str__(self):
        return "%s: %s" % (self.name, self.message)


class BadRequest(DlmError):
    """The server found the request malformed."""
    code, name = 1, "BAD_REQUEST"


class NoSession(DlmError):
    """A request came before hello."""
    code, name = 2, "NO_SESSION"


class NameInUse(DlmError):
    """The client name is in use by a live session."""
    code, name = 3, "NAME_IN_USE"


class WouldBlock(DlmError):
    """The lock is not free (an acquire that was not to wait)."""
    code, name = 4, "WOULD_BLOCK"


class LockTimeout(DlmError):
    """Timed out waiting for the lock."""
    code, name = 5, "TIMEOUT"


class NotHeld(DlmError, RuntimeError):
    """The lock is not held by this session."""
    code, name = 6, "NOT_HELD"


class AlreadyHeld(DlmError):
    """The lock is already held or awaited by this session."""
    code, name = 7, "ALREADY_HELD"


class KindMismatch(DlmError):
    """The lock exists with another kind (or semaphore capacity)."""
    code, name = 8, "KIND_MISMATCH"


class Cancelled(DlmError):
    """The request was cancelled."""
    code, name = 9, "CANCELLED"


class LimitExceeded(DlmError):
    """A configured limit of the server would be exceeded."""
    code, name = 10, "LIMIT"


class PermissionDenied(DlmError):
    """Permission denied."""
    code, name = 11, "PERMISSION"


class NotFound(DlmError):
    """No such lock or client."""
    code, name = 12, "NOT_FOUND"


class ShuttingDown(DlmError):
    """The server is shutting down."""
    code, name = 13, "SHUTTING_DOWN"


class Deadlock(DlmError):
    """Deadlock detected: waiting would close a cycle of waits.

    ``cycle`` lists the waits, as the server's error map does.
    """
    code, name = 14, "DEADLOCK"

    @property
    def cycle(self):
        """The waits of the cycle: dicts with client, lock and mode."""
        return self.details.get("cycle", [])


class Unsupported(DlmError):
    """The server does not speak this protocol version."""
    code, name = 15, "UNSUPPORTED"


class NotActive(DlmError):
    """This server is not the cluster's active one.

    ``active`` is the address of the active one when the server knew it.
    """
    code, name = 16, "NOT_ACTIVE"

    @property
    def active(self):
        """The active dlmd's address, or None."""
        return self.details.get("active")


class ConnectError(DlmError, ConnectionError):
    """Cannot connect to the dlm server."""
    code, name = 100, "CONNECT"


class ConnectionLost(DlmError, ConnectionError):
    """The connection to the server was lost with the request in flight."""
    code, name = 101, "DISCONNECTED"


class ClientClosed(DlmError):
    """The client is closed or its session has ended."""
    code, name = 102, "CLOSED"


class Forked(DlmError):
    """The client was made by the parent process; connect again after fork()."""
    code, name = 103, "FORKED"


class ProtocolError(DlmError):
    """The server sent a reply this client cannot read."""
    code, name = 106, "PROTOCOL"


class AddressError(DlmError, ValueError):
    """Bad server address: use unix:PATH, tcp:HOST:PORT or tls:HOST:PORT."""
    code, name = 107, "ADDRESS"


# Aliases under the names users of other lock libraries look for.
Disconnected = ConnectionLost
Timeout = LockTimeout
__all__ += ["Disconnected", "Timeout"]

_BY_NAME = {cls.name: cls for cls in (
    BadRequest, NoSession, NameInUse, WouldBlock, LockTimeout, NotHeld,
    AlreadyHeld, KindMismatch, Cancelled, LimitExceeded, PermissionDenied,
    NotFound, ShuttingDown, Deadlock, Unsupported, NotActive)}
_BY_CODE = {cls.code: cls for cls in _BY_NAME.values()}


def error_from_wire(err):
    """The exception for an error map of a response (or any other value).

    Codes this client does not know become a plain :class:`DlmError` with
    the code and name the server gave, so that newer servers' errors still
    read well.
    """
    if not isinstance(err, dict):
        return ProtocolError("the server sent an error that is not a map: %r"
                             % (err,))
    code, name = err.get("code"), err.get("name")
    # A hostile or broken server's values are looked up only when they can be.
    code = code if isinstance(code, int) else None
    name = name if isinstance(name, str) else None
    message = err.get("message") or ""
    details = {k: v for k, v in err.items()
               if k not in ("code", "name", "message")}
    cls = _BY_NAME.get(name) or _BY_CODE.get(code)
    if cls is not None:
        return cls(message, details)
    exc = DlmError(message or "error %r" % (name,), details)
    exc.code = code if isinstance(code, int) else -1
    exc.name = name if isinstance(name, str) else "UNKNOWN"
    return exc
