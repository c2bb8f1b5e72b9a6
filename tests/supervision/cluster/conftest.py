"""Every test marked ``cluster`` runs in a network namespace of its own, with loopback only.

Ray binds the machine's own address, and tests must never use it. So a ``cluster`` test is
not run in this process: ``pytest_pyfunc_call`` runs the same test again in a child pytest
under ``unshare -n`` (``supervision.cluster.loopback`` brings ``lo`` up), where 127.0.0.1 is
the only address there is, with a private Ray temp folder, and reports its result here.
Its fixtures must start nothing (the tests start Ray in their bodies). Where namespaces
cannot be made (not root, or a container that forbids them) the tests skip and say why;
under CI they fail instead, since CI runs as root and must run them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

INSIDE = "TC_LOOPBACK_NETNS"
ROOT = Path(__file__).resolve().parents[3]
LOOPBACK = ["-m", "supervision.cluster.loopback"]


def inside_namespace() -> bool:
    return os.environ.get(INSIDE) == "1"


def namespace_problem() -> str:
    """Why a loopback-only namespace cannot be made here ("" if it can)."""
    if shutil.which("unshare") is None:
        return "the unshare command (util-linux) is missing"
    probe = subprocess.run(["unshare", "-n", sys.executable, *LOOPBACK, "true"],
                           capture_output=True, text=True, timeout=30, check=False, cwd=ROOT)
    if probe.returncode != 0:
        return ("unshare -n (a network namespace of its own) is not permitted here: "
                f"{probe.stderr.strip() or probe.returncode}; run as root")
    return ""


def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    if pyfuncitem.get_closest_marker("cluster") is None or inside_namespace():
        return None
    problem = namespace_problem()
    if problem:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the cluster tests, but {problem}", pytrace=False)
        pytest.skip(f"cluster test skipped: {problem}")
    with tempfile.TemporaryDirectory(prefix="tcray-") as ray_tmp:
        env = {**os.environ, INSIDE: "1", "RAY_TMPDIR": ray_tmp, "PYTHONPATH": str(ROOT)}
        env.pop("RAY_ADDRESS", None)
        command = ["unshare", "-n", sys.executable, *LOOPBACK, sys.executable, "-m",
                   "pytest", pyfuncitem.nodeid, "-q", "-p", "no:cacheprovider",
                   "-o", "addopts=-ra --strict-markers"]
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=600, check=False)
    if done.returncode != 0:
        tail = "\n".join(line for line in done.stdout.splitlines()
                         if "state-dump" not in line)[-8000:]
        pytest.fail(f"in its network namespace (exit {done.returncode}):\n{tail}\n"
                    f"{done.stderr[-2000:]}", pytrace=False)
    if " skipped" in done.stdout and " passed" not in done.stdout:
        pytest.skip(done.stdout.strip().splitlines()[-1])
    return True
