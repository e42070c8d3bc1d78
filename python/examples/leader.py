"""Leader election: campaign with this process's address as the value;
the others watch who leads.

    DLM_SERVER=unix:/path/to/dlmd.sock python3 leader.py 10.0.0.7:8080
"""
import sys

import dlm

me = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:8080"
with dlm.Client() as client:
    election = client.election("service/leader")
    if election.campaign(me.encode(), timeout=1):
        print("leading as %s (token %d)" % (me, election.token))
        election.resign()
    else:
        leader = election.leader()
        print("following %s" % (leader and leader.get("value")))
