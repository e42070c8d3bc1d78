"""The seed's own example: the API dlm's clients wrote from the start.

    DLM_SERVER=unix:/path/to/dlmd.sock python3 seed.py
"""
from dlm import Client

client = Client("web-1")          # a unique client name
lock = client.mklock("invoices")
rlock = client.mkrlock("cache")
lock.acquire()
print("holding invoices, fencing token", lock.token)
lock.release()
with lock:
    with rlock:
        with rlock:               # reentrant: dlmd counts the levels
            print("holding invoices and cache (depth %d)" % rlock.count)
client.close()
