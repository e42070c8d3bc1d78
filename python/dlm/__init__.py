"""dlm: named locks from dlmd, for threads (``dlm.Client``) and asyncio
(``dlm.aio``).

    import dlm

    client = dlm.Client("web-1")        # a unique client name
    lock = client.mklock("invoices")    # or client.lock("invoices")
    rlock = client.mkrlock("cache")     # or client.rlock("cache")
    lock.acquire(); ...; lock.release()
    with lock:
        ...

The client speaks dlmd's protocol (doc/PROTOCOL.md) over MessagePack,
with libdlm's defaults: the address is ``$DLM_SERVER``, else the default
socket; the session is kept alive by pings at a third of its lease; with a
linger it is resumed over a new connection when one drops.
"""

from .client import (Client, Election, Lock, RLock, Semaphore, Watch,
                     connect)
from .errors import *  # noqa: F401,F403 -- the exceptions are the API
from .errors import __all__ as _errors_all
from ._common import default_socket, parse_addresses

__version__ = "0.1.0"

__all__ = ["Client", "Lock", "RLock", "Semaphore", "Watch", "Election",
           "connect", "default_socket", "parse_addresses"] + _errors_all
