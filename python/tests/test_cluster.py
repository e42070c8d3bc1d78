"""A cluster of two dlmds on a one-member etcd: a client given a standby
is sent to the active (NOT_ACTIVE and its hint), and after the active is
killed the client reclaims its holds, with their tokens, on the new one.
Skipped without etcd (Debian's etcd-server)."""

import os
import shutil
import signal
import subprocess
import time

import pytest

import dlm
from conftest import free_port, wait_until

ETCD = shutil.which("etcd")
pytestmark = pytest.mark.skipif(ETCD is None, reason="no etcd binary")


@pytest.fixture
def etcd(tmpdir_short):
    client, peer = free_port(), free_port()
    curl = "http://127.0.0.1:%d" % client
    purl = "http://127.0.0.1:%d" % peer
    log = open(os.path.join(tmpdir_short, "etcd.log"), "wb")
    p = subprocess.Popen([ETCD, "--name", "e0", "--data-dir",
                          os.path.join(tmpdir_short, "etcd"),
                          "--listen-client-urls", curl,
                          "--advertise-client-urls", curl,
                          "--listen-peer-urls", purl,
                          "--initial-advertise-peer-urls", purl,
                          "--initial-cluster", "e0=" + purl,
                          "--initial-cluster-state", "new",
                          "--unsafe-no-fsync", "--log-level", "error"],
                         stdout=log, stderr=log)
    try:
        import urllib.request
        wait_until(lambda: _healthy(urllib.request, curl), 20,
                   "etcd to be healthy")
        yield curl
    finally:
        p.terminate()
        p.wait(10)
        log.close()


def _healthy(req, url):
    try:
        return b"true" in req.urlopen(url + "/health", timeout=1).read()
    except OSError:
        return False


def member(dlmd_factory, etcd_url):
    port = free_port()
    addr = "tcp:127.0.0.1:%d" % port
    return dlmd_factory("-l", addr, "--cluster-etcd", etcd_url,
                        "--advertise", addr, "--cluster-ttl", "2000",
                        "--lease-max", "5000", "--lease-default", "3000",
                        "--cluster-name", "pytest"), addr


def test_not_active_then_failover_reclaim(dlmd_factory, etcd):
    m1, a1 = member(dlmd_factory, etcd)
    m2, a2 = member(dlmd_factory, etcd)
    # Whoever is active, a client given both finds it.
    c = wait_until(lambda: _try_client("c", [a1, a2]), 20, "an active")
    active, standby = (m1, m2) if c.address == a1 else (m2, m1)
    standby_addr = a2 if c.address == a1 else a1
    # Given only the standby, a client goes where its NOT_ACTIVE points.
    with dlm.Client("d", standby_addr) as d:
        assert d.address == c.address
    with pytest.raises(dlm.NotActive) as ei:
        _raw_hello(standby_addr)
    assert ei.value.active == c.address and ei.value.code == 16
    lk = c.lock("ha")
    assert lk.acquire()
    token = lk.token
    active.proc.kill()
    active.proc.wait()
    # The standby takes over; the client reclaims its hold there.
    wait_until(lambda: c.address == standby_addr and not c.closed and
               _pings(c), 40, "the reclaim on the new active")
    assert lk.token == token and not lk.lost_event.is_set()
    with dlm.Client("f", standby_addr) as f:
        assert f.check("ha", token)
        assert not f.lock("ha").acquire(blocking=False)
    lk.release()
    c.close()


def _try_client(name, addrs):
    try:
        return dlm.Client(name, addrs, connect_timeout=1)
    except dlm.DlmError:
        return None


def _pings(c):
    try:
        c.ping()
        return True
    except dlm.DlmError:
        return False


def _raw_hello(addr):
    # hello straight to a standby: NOT_ACTIVE, naming the active.
    import socket
    import msgpack
    a = dlm.parse_addresses(addr)[0]
    s = socket.create_connection((a.host, a.port), timeout=5)
    try:
        s.sendall(msgpack.packb([0, 1, "hello", [{"proto": 1}]]))
        u = msgpack.Unpacker(raw=False)
        while True:
            u.feed(s.recv(4096))
            for m in u:
                from dlm.errors import error_from_wire
                raise error_from_wire(m[2])
    finally:
        s.close()
