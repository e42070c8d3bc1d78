"""The package as users get it: installed by pip into a virtual
environment, offline, and the examples run against a real dlmd."""

import os
import shutil
import subprocess
import sys

import pytest

from conftest import PKGDIR

EXAMPLES = os.path.join(PKGDIR, "examples")


def child_env(extra):
    env = dict(os.environ)
    env["PYTHONPATH"] = PKGDIR
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update(extra)
    return env


@pytest.mark.parametrize("example,expect", [
    ("seed.py", "holding invoices and cache (depth 2)"),
    ("cron_guard.py", "running nightly-report with token"),
    ("aio_worker.py", "item 4 done under token"),
    ("leader.py", "leading as 127.0.0.1:8080"),
])
def test_examples_run(dlmd, example, expect):
    out = subprocess.run([sys.executable, os.path.join(EXAMPLES, example)],
                         env=child_env({"DLM_SERVER": dlmd.address}),
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         text=True, timeout=30)
    assert out.returncode == 0, out.stdout
    assert expect in out.stdout


def test_pip_install_in_venv(tmpdir_short, dlmd):
    # The source may be read-only (make distcheck): build from a copy, as
    # pip writes its build files beside the sources.
    src = os.path.join(tmpdir_short, "src")
    shutil.copytree(PKGDIR, src, ignore=shutil.ignore_patterns(
        "__pycache__", "*.egg-info", "build", ".pytest_cache"))
    for root, dirs, files in os.walk(src):
        os.chmod(root, 0o755)
        for f in files:
            os.chmod(os.path.join(root, f), 0o644)
    venv = os.path.join(tmpdir_short, "venv")
    r = subprocess.run([sys.executable, "-m", "venv",
                        "--system-site-packages", venv],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, timeout=120)
    if r.returncode != 0 or not os.path.exists(os.path.join(venv, "bin",
                                                            "pip")):
        pytest.skip("no venv with pip here (python3-venv): " + r.stdout)
    pip = [os.path.join(venv, "bin", "python"), "-m", "pip"]
    r = subprocess.run(pip + ["install", "-q", "--no-index",
                              "--no-build-isolation", src],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, timeout=180,
                       env=dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1"))
    assert r.returncode == 0, r.stdout
    check = (
        "import dlm, sys\n"
        "from importlib.metadata import entry_points\n"
        "assert dlm.__file__.startswith(sys.prefix), dlm.__file__\n"
        "eps = entry_points()\n"
        "eps = eps.select(group='tooz.backends') if hasattr(eps, 'select')"
        " else eps.get('tooz.backends', [])\n"
        "assert [e.value for e in eps if e.name == 'dlm'] == "
        "['dlm.tooz_driver:DlmDriver'], list(eps)\n"
        "c = dlm.Client('venv')\n"
        "lk = c.lock('v')\n"
        "assert lk.acquire() and lk.token\n"
        "help(dlm.Client.lock)\n"
        "print('ok')\n")
    env = dict(os.environ, DLM_SERVER=dlmd.address,
               PYTHONDONTWRITEBYTECODE="1")
    env.pop("PYTHONPATH", None)
    r = subprocess.run([os.path.join(venv, "bin", "python"), "-c", check],
                       cwd=tmpdir_short, env=env, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.rstrip().endswith("ok"), r.stdout
