"""Run a job on one machine of many: whoever takes the lock runs it, the
others skip this round. The fencing token goes with every write, so a
storage that remembers the newest token refuses a writer that lost its
lock (a paused process, a partition) without knowing it.

    DLM_SERVER=unix:/path/to/dlmd.sock python3 cron_guard.py nightly-report
"""
import sys

import dlm

job = sys.argv[1] if len(sys.argv) > 1 else "nightly-report"
with dlm.Client() as client:
    lock = client.lock("cron/" + job)
    if not lock.acquire(blocking=False):
        print("another machine runs %s; skipping" % job)
        sys.exit(0)
    try:
        print("running %s with token %d" % (job, lock.token))
        # ... write(results, fencing_token=lock.token) ...
        if lock.lost_event.is_set():
            sys.exit("lost the lock while running: %s" % lock.lost_reason)
    finally:
        lock.release()
