"""asyncio: several tasks share one session; each takes the lock of the
item it works on, at most 2 s, and gives up on the item otherwise.

    DLM_SERVER=unix:/path/to/dlmd.sock python3 aio_worker.py
"""
import asyncio

import dlm.aio


async def work(client, item):
    lock = client.lock("items/%d" % item, timeout=2)
    try:
        async with lock:
            await asyncio.sleep(0.01)
            return "item %d done under token %d" % (item, lock.token)
    except dlm.LockTimeout:
        return "item %d busy elsewhere" % item


async def main():
    async with dlm.aio.Client() as client:
        for line in await asyncio.gather(*(work(client, i)
                                           for i in range(5))):
            print(line)


asyncio.run(main())
