"""The watchdog's verdicts against real sockets: a server that never answers, one that is gone, a
full directory, a stopped process."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from turing_scoring_server.supervisor import processes
from turing_scoring_server.supervisor.watchdog import Watchdog


def _wait_for(condition: object, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


def _answering(path: Path, answer: bytes | None) -> socket.socket:
    """A unix server answering every connection with ``answer`` (``None``: never answering)."""
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.listen(64)
    held: list[socket.socket] = []

    def loop() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            conn.recv(1024)
            if answer is None:
                held.append(conn)  # accepted, never answered: a worker stuck in a request
            else:
                conn.sendall(answer)
                conn.close()

    threading.Thread(target=loop, daemon=True).start()
    return server


def test_a_served_probe_is_healthy(socket_dir: Path) -> None:
    sock = socket_dir / "ok.sock"
    server = _answering(sock, b"HTTP/1.0 200 OK\r\n\r\n")
    dog = Watchdog(str(sock), request_timeout=1, exit_after=2, dirs=[], masters=dict)
    dog.mark_ready()
    dog.start()
    try:
        assert _wait_for(lambda: dog.verdict.healthy, 5)
        time.sleep(2.5)
        assert dog.verdict.healthy
        assert dog.fatal is None
    finally:
        dog.stop()
        server.close()


def test_no_worker_taking_requests_fails_ping_then_is_fatal(socket_dir: Path) -> None:
    sock = socket_dir / "stuck.sock"
    server = _answering(sock, None)
    dog = Watchdog(str(sock), request_timeout=1, exit_after=2, dirs=[], masters=dict)
    dog.mark_ready()
    dog.start()
    try:
        assert _wait_for(lambda: "no worker took a request" in dog.verdict.reason, 10)
        assert not dog.verdict.healthy
        assert _wait_for(lambda: dog.fatal is not None, 5)
        assert "exiting so that the platform replaces this container" in str(dog.fatal)
    finally:
        dog.stop()
        server.close()


def test_a_server_answering_errors_fails_ping(socket_dir: Path) -> None:
    sock = socket_dir / "err.sock"
    server = _answering(sock, b"HTTP/1.0 500 Internal Server Error\r\n\r\n")
    dog = Watchdog(str(sock), request_timeout=1, exit_after=30, dirs=[], masters=dict)
    dog.mark_ready()
    dog.start()
    try:
        assert _wait_for(lambda: "answered 500" in dog.verdict.reason, 6)
        assert dog.fatal is None, "not before exit_after"
    finally:
        dog.stop()
        server.close()


def test_nothing_judged_before_ready(socket_dir: Path) -> None:
    dog = Watchdog(str(socket_dir / "none.sock"), 1, exit_after=1, dirs=[], masters=dict)
    dog.start()
    try:
        time.sleep(2.5)
        assert dog.fatal is None
        assert dog.verdict.reason == "The model is loading"
    finally:
        dog.stop()


def test_a_stopped_master_is_fatal_and_a_stopped_worker_is_killed(socket_dir: Path) -> None:
    sock = socket_dir / "ok.sock"
    server = _answering(sock, b"HTTP/1.0 200 OK\r\n\r\n")
    # A "master" with one "worker" child, both real processes.
    master = subprocess.Popen(
        [sys.executable, "-c",
         "import subprocess, sys, time\n"
         "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
         "time.sleep(60)\n"],
    )  # fmt: skip
    try:
        assert _wait_for(lambda: processes.children(master.pid), 5)
        (worker,) = processes.children(master.pid)
        dog = Watchdog(
            str(sock), 1, exit_after=60, dirs=[], masters=lambda: {"gunicorn": master.pid}
        )
        dog.mark_ready()
        dog.start()
        os.kill(worker, signal.SIGSTOP)
        assert _wait_for(lambda: not processes.children(master.pid) or _zombie(worker), 6), "killed"
        assert dog.fatal is None
        os.kill(master.pid, signal.SIGSTOP)
        assert _wait_for(lambda: "gunicorn (pid" in dog.verdict.reason, 4)
        assert _wait_for(lambda: dog.fatal is not None, 8)
        assert "has been stopped" in str(dog.fatal)
        dog.stop()
    finally:
        master.kill()
        master.wait()
        server.close()


def test_a_full_directory_fails_ping(socket_dir: Path, tmp_path: Path) -> None:
    sock = socket_dir / "ok.sock"
    server = _answering(sock, b"HTTP/1.0 200 OK\r\n\r\n")
    mount = tmp_path / "small"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)]).returncode:
        server.close()
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        dog = Watchdog(str(sock), 1, exit_after=60, dirs=[str(mount)], masters=dict)
        dog.mark_ready()
        dog.start()
        assert _wait_for(lambda: dog.verdict.healthy, 5)
        subprocess.run(["dd", "if=/dev/zero", f"of={mount / 'filler'}", "bs=64k"],
                       capture_output=True)  # fmt: skip
        assert _wait_for(lambda: "no space left" in dog.verdict.reason, 3)
        (mount / "filler").unlink()
        assert _wait_for(lambda: dog.verdict.healthy, 5), "recovers once there is room again"
        dog.stop()
    finally:
        subprocess.run(["umount", "-l", str(mount)])
        server.close()


def _zombie(pid: int) -> bool:
    return processes.state(pid) in (None, "Z")
