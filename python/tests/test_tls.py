"""tls: addresses: the server's certificate is verified against the CA
and the host dialled, and a client certificate is presented when dlmd asks
for one (mutual TLS). Certificates are made with the openssl command."""

import os
import shutil
import subprocess

import pytest

import dlm

OPENSSL = shutil.which("openssl")
pytestmark = pytest.mark.skipif(OPENSSL is None, reason="no openssl command")


def sh(*args, cwd):
    subprocess.run((OPENSSL,) + args, cwd=cwd, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   timeout=60)


def make_pki(d):
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
          "-nodes")
    sh("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days",
       "2", "-subj", "/CN=dlm test CA", cwd=d)
    for name, ext in (("server", "subjectAltName=IP:127.0.0.1"),
                      ("client", "extendedKeyUsage=clientAuth")):
        sh("req", *ec, "-keyout", name + ".key", "-out", name + ".csr",
           "-subj", "/CN=" + name, cwd=d)
        with open(os.path.join(d, name + ".ext"), "w") as f:
            f.write(ext + "\n")
        sh("x509", "-req", "-in", name + ".csr", "-CA", "ca.pem", "-CAkey",
           "ca.key", "-CAcreateserial", "-out", name + ".pem", "-days", "2",
           "-extfile", name + ".ext", cwd=d)
    # Another CA, that signed nothing of this server's.
    sh("req", "-x509", *ec, "-keyout", "other.key", "-out", "other.pem",
       "-days", "2", "-subj", "/CN=other CA", cwd=d)
    return lambda n: os.path.join(d, n)


def test_tls(dlmd_factory, tmpdir_short):
    from conftest import free_port
    f = make_pki(tmpdir_short)
    port = free_port()
    addr = "tls:127.0.0.1:%d" % port
    dlmd_factory("-l", addr, "--tls-cert", f("server.pem"), "--tls-key",
                 f("server.key"), "--tls-ca", f("ca.pem"))
    with dlm.Client("t", addr, tls_ca=f("ca.pem"), tls_cert=f("client.pem"),
                    tls_key=f("client.key")) as c:
        with c.lock("x") as lk:
            assert lk.token > 0
        holders = c.call("clients")["clients"]
        assert any(h["name"] == "t" for h in holders)
    # A server whose certificate the CA given did not sign is refused.
    with pytest.raises(dlm.ConnectError):
        dlm.Client("u", addr, tls_ca=f("other.pem"), tls_cert=f("client.pem"),
                   tls_key=f("client.key"), connect_timeout=3)
    # So is a client without a certificate, by the server.
    with pytest.raises((dlm.ConnectError, dlm.ConnectionLost)):
        dlm.Client("v", addr, tls_ca=f("ca.pem"), connect_timeout=3)


def test_tls_env(dlmd_factory, tmpdir_short, monkeypatch):
    from conftest import free_port
    f = make_pki(tmpdir_short)
    addr = "tls:127.0.0.1:%d" % free_port()
    dlmd_factory("-l", addr, "--tls-cert", f("server.pem"), "--tls-key",
                 f("server.key"))
    monkeypatch.setenv("DLM_TLS_CA", f("ca.pem"))
    monkeypatch.setenv("DLM_SERVER", addr)
    with dlm.Client("w") as c:
        assert c.lock("y").acquire()


def test_tls_threads_share_one_connection(dlmd_factory, tmpdir_short):
    """Several threads on one tls: client at once: their SSL reads and
    writes take turns (OpenSSL forbids two threads in one SSL object), and
    every answer arrives."""
    import threading
    from conftest import free_port
    f = make_pki(tmpdir_short)
    addr = "tls:127.0.0.1:%d" % free_port()
    dlmd_factory("-l", addr, "--tls-cert", f("server.pem"), "--tls-key",
                 f("server.key"))
    errors = []
    with dlm.Client("h", addr, tls_ca=f("ca.pem")) as c:
        def work(n):
            try:
                for i in range(200):
                    with c.lock("t%d" % (i % 3)):
                        c.ping()
                    c.info("t%d" % n)
            except Exception as e:
                errors.append(e)
        ts = [threading.Thread(target=work, args=(n,)) for n in range(6)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(120)
        assert not any(t.is_alive() for t in ts)
        assert errors == []
        assert c.holds() == {}
        assert c.ping() is not None
