"""A throwaway Ray head on this machine, inside a network namespace of its own (tests, the sweep
benchmark).

Ray picks its node address by asking the routing table how to reach the internet: given the
machine's own network, ``ray start --head --node-ip-address=127.0.0.1`` was seen to report eth0's
address anyway, and a driver connected there. In a fresh namespace whose only interface is ``lo``
there is no other address to pick, so the head, its workers and every driver started with
``command()`` talk over 127.0.0.1 alone, whatever Ray decides. That needs root (as CI runs) and
iproute2's ``ip netns``; ``unavailable()`` says why not otherwise.

Stopping signals exactly the processes inside the namespace (``ip netns pids``), never Ray
processes by name, so another Ray on the machine is left alone.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

HEAD_PORT = 6379  # free by construction: the namespace has no other listener


def unavailable() -> str | None:
    """Why a namespaced cluster cannot start here, or None when it can."""
    if os.geteuid() != 0:
        return "a private network namespace needs root (CI runs as root)"
    if shutil.which("ip") is None:
        return "iproute2's `ip` is not installed (apt-get install iproute2)"
    try:
        import ray  # noqa: F401
    except ImportError:
        return "ray is not installed (make setup installs it)"
    return None


class LocalCluster:
    """``with LocalCluster(num_cpus=2) as cluster:`` a head on ``cluster.address``; run drivers
    with ``subprocess.run(cluster.command([...]))`` so they share its loopback."""

    def __init__(self, num_cpus: int = 2) -> None:
        self.num_cpus = num_cpus
        self.netns = f"tladvisor-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.address = f"127.0.0.1:{HEAD_PORT}"
        # Short: Ray's unix socket paths live under it and must stay below 108 bytes.
        self.temp_dir = Path(tempfile.mkdtemp(prefix="tlr-", dir="/tmp"))
        self.log = self.temp_dir / "head.log"
        self._head: subprocess.Popen | None = None

    def command(self, argv: list[str]) -> list[str]:
        """``argv`` run inside the cluster's namespace (same files, only loopback)."""
        return ["ip", "netns", "exec", self.netns, *argv]

    def start(self, timeout: float = 120) -> LocalCluster:
        _ip("netns", "add", self.netns)
        try:
            _ip("netns", "exec", self.netns, "ip", "link", "set", "lo", "up")
            ray = str(Path(sys.executable).with_name("ray"))
            env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
            with open(self.log, "wb") as log:
                self._head = subprocess.Popen(
                    self.command(
                        [
                            ray,
                            "start",
                            "--head",
                            "--block",
                            f"--port={HEAD_PORT}",
                            f"--num-cpus={self.num_cpus}",
                            "--num-gpus=0",
                            "--include-dashboard=false",
                            "--disable-usage-stats",
                            f"--temp-dir={self.temp_dir}",
                        ]
                    ),  # fmt: skip
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                    start_new_session=True,
                )
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self, timeout: float) -> None:
        probe = "import socket, sys; socket.create_connection(('127.0.0.1', int(sys.argv[1])), 1)"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._head is not None and self._head.poll() is not None:
                raise RuntimeError(f"ray start exited: {self.log.read_text()[-2000:]}")
            ready = subprocess.run(
                self.command([sys.executable, "-c", probe, str(HEAD_PORT)]), capture_output=True
            )
            if ready.returncode == 0:
                return
            time.sleep(0.5)
        raise TimeoutError(f"the Ray head did not listen within {timeout:.0f} s: {self.log}")

    def pids(self) -> list[int]:
        """Every process inside the namespace: the head, its raylet, workers, drivers."""
        out = subprocess.run(
            ["ip", "netns", "pids", self.netns], capture_output=True, text=True
        ).stdout
        return [int(p) for p in out.split()]

    def stop(self) -> None:
        """Stop every process in the namespace (TERM, then KILL), then remove it."""
        for sig, grace in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
            for pid in self.pids():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
            deadline = time.monotonic() + grace
            while self.pids() and time.monotonic() < deadline:
                time.sleep(0.2)
        if self._head is not None:
            self._head.wait(timeout=10)
        subprocess.run(["ip", "netns", "del", self.netns], capture_output=True)
        shutil.rmtree(self.temp_dir, ignore_errors=True)

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)} failed: {done.stderr.strip()}")
