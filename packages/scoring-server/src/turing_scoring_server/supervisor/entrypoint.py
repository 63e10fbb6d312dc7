"""The container entrypoint (``contract.ENTRYPOINT``): SageMaker runs ``<image> serve``.

It creates the model environment when asked (MLflow's own helpers), starts gunicorn with the WSGI
app and nginx in front of it, answers ``/ping`` itself, forwards SIGTERM for a graceful stop, and
exits non-zero whenever serving stops for any other reason, so restart policies see the failure.
"""

from __future__ import annotations

import logging
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field

from .. import contract as c
from .. import logs
from ..errors import TuringServerError
from ..settings import Settings
from . import processes
from .health import HealthServer
from .nginx import NginxConfig, binary, check, render
from .watchdog import Watchdog, probe

_log = logging.getLogger("turing_scoring_server.container")
FAILURE_GRACE_SECONDS = 5.0
"""When serving has failed, the others get this long to stop before SIGKILL."""
GUNICORN_STOP_SLACK = 5.0
"""After nginx has drained, gunicorn has nothing in flight; this bounds its own exit."""


def _say(message: str) -> None:
    logs.say(message)


def prepare_environment(settings: Settings) -> list[str]:
    """Create the model's environment as MLflow's container does; return activation commands.

    Only when ``MLFLOW_DISABLE_ENV_CREATION`` is false (template images whose model arrives at run
    time). The model's requirements go in through MLflow's own helper; a separate environment
    (virtualenv, conda) then also gets MLflow and this server, from the image's wheelhouse when it
    has one, since gunicorn runs there. Unlike MLflow we do not add ``gunicorn[gevent]``: gevent is
    never used.
    """
    if settings.disable_env_creation:
        return []
    from mlflow.models import container as mlflow_container
    from mlflow.version import VERSION

    try:
        activate: list[str] = mlflow_container._install_model_dependencies_to_env(
            settings.model_path, settings.env_manager
        )
    except Exception as exc:
        last = str(exc).strip().splitlines()[-1] if str(exc).strip() else ""
        raise TuringServerError(
            f"cannot install the model's requirements at start ({type(exc).__name__}: {last}); "
            f"if pip says SSL: CERTIFICATE_VERIFY_FAILED above (a TLS-intercepting proxy), "
            "rebuild the image with --runtime-ca-bundle FILE, or bake the model in with "
            "--model-uri"
        ) from exc
    if activate:
        from ..__about__ import __version__

        wheels: list[str] = []
        find_links: list[str] = []
        if os.path.isdir(c.WHEELHOUSE):
            find_links = ["--find-links", c.WHEELHOUSE]
            wheels = [
                os.path.join(c.WHEELHOUSE, w)
                for w in sorted(os.listdir(c.WHEELHOUSE))
                if w.endswith(".whl") and not w.startswith("turing_scoring_server-")
            ]
        pins = [f"mlflow=={VERSION}", f"{c.DISTRIBUTION}=={__version__}"]
        install = shlex.join(["pip", "install", *find_links, *pins, *wheels])
        if subprocess.run(["bash", "-c", " && ".join([*activate, install])]).returncode != 0:
            raise TuringServerError(
                "cannot install MLflow and the server into the model environment; if pip says "
                "SSL: CERTIFICATE_VERIFY_FAILED above, rebuild the image with "
                "--runtime-ca-bundle FILE"
            )
    return activate


def _metrics_dir(run_dir: str) -> str:
    """A fresh metrics store per run, on ``/dev/shm`` when it can be written.

    prometheus_client memory-maps its files: on a full file system growing one is a SIGBUS that
    kills the worker. ``/dev/shm`` is a file system of its own in containers (Docker's is writable
    even with ``--read-only``), so a full ``/tmp`` does not take the metrics down with it.
    """
    base = "/dev/shm" if os.access("/dev/shm", os.W_OK) else run_dir
    return tempfile.mkdtemp(prefix="turing-metrics-", dir=base)


@dataclass
class Supervisor:
    """Runs gunicorn and nginx, answers ``/ping``, drains on SIGTERM, decides the exit code."""

    settings: Settings
    activate: list[str] = field(default_factory=list)
    run_dir: str = field(default_factory=lambda: tempfile.mkdtemp(prefix="turing-"))
    _stop: threading.Event = field(default_factory=threading.Event)
    _children: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    _metrics_dir: str | None = None
    _seen: set[int] = field(default_factory=set)
    """Every process seen below a child: the ones to stop should their parent die first."""

    @property
    def app_socket(self) -> str:
        return os.path.join(self.run_dir, "gunicorn.sock")

    def _gunicorn(self) -> subprocess.Popen[bytes]:
        bind = (
            f"0.0.0.0:{self.settings.port}"
            if self.settings.disable_nginx
            else f"unix:{self.app_socket}"
        )
        argv = [
            sys.executable, "-m", "gunicorn",
            "-c", "python:turing_scoring_server.gunicorn_config",
            "--bind", bind, c.WSGI_APP,
        ]  # fmt: skip
        env = dict(os.environ, **{c.ENV_MODEL_PATH: self.settings.model_path})
        if self.settings.metrics and not env.get(c.ENV_PROMETHEUS_MULTIPROC_DIR):
            self._metrics_dir = _metrics_dir(self.run_dir)
            env[c.ENV_PROMETHEUS_MULTIPROC_DIR] = self._metrics_dir
        if self.activate:
            argv[0] = "python"
            command = " && ".join([*self.activate, "exec " + shlex.join(argv)])
            argv = ["bash", "-c", command]
        return subprocess.Popen(argv, env=env, preexec_fn=processes.die_with_parent)

    def _nginx(self) -> subprocess.Popen[bytes]:
        conf = os.path.join(self.run_dir, "nginx.conf")
        config = NginxConfig.for_run(
            self.settings,
            self.run_dir,
            upstream=f"unix:{self.app_socket}",
            ping_upstream=f"unix:{os.path.join(self.run_dir, 'health.sock')}",
        )
        with open(conf, "w", encoding="utf-8") as f:
            f.write(render(config))
        check(conf)
        return subprocess.Popen(
            [binary(), "-e", "stderr", "-c", conf],
            stderr=subprocess.PIPE,
            preexec_fn=processes.die_with_parent,
        )

    def _masters(self) -> dict[str, int]:
        return {n: p.pid for n, p in self._children.items() if p.poll() is None}

    def _wait_ready(self, watchdog: Watchdog, address: str | tuple[str, int]) -> None:
        started = time.monotonic()
        while not self._stop.is_set():
            if probe(address, timeout=1.0) == 200:
                watchdog.mark_ready()
                _log.info("ready in %.2f s", time.monotonic() - started)
                return
            time.sleep(0.02)

    def _on_signal(self, signum: int, _frame: object) -> None:
        _log.info("got %s, draining", signal.Signals(signum).name)
        self._stop.set()

    def run(self) -> int:
        """Serve until SIGTERM (drain, exit 0) or until serving fails (exit non-zero)."""
        processes.become_subreaper()
        os.chmod(self.run_dir, 0o755)
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        address: str | tuple[str, int] = (
            ("127.0.0.1", self.settings.port) if self.settings.disable_nginx else self.app_socket
        )
        try:
            # gunicorn first: loading the model is the long pole; nginx -t and its start overlap it.
            self._children["gunicorn"] = self._gunicorn()
            if not self.settings.disable_nginx:
                self._children["nginx"] = self._nginx()
        except BaseException:
            self._terminate(FAILURE_GRACE_SECONDS)
            raise
        dirs = [d for d in (self.run_dir, self._metrics_dir) if d]
        watchdog = Watchdog(
            address,
            self.settings.request_timeout,
            self.settings.unhealthy_exit_after,
            dirs,
            self._masters,
        )
        health: HealthServer | None = None
        # Threads only once the children are spawned: preexec_fn is unsafe with threads.
        if "nginx" in self._children:
            health = HealthServer(
                os.path.join(self.run_dir, "health.sock"), lambda: watchdog.verdict
            )
            health.start()
            nginx_stderr = self._children["nginx"].stderr
            assert nginx_stderr is not None
            threading.Thread(
                target=logs.relay_nginx, args=(nginx_stderr,), name="turing-nginx-log", daemon=True
            ).start()
        threading.Thread(target=self._wait_ready, args=(watchdog, address), daemon=True).start()
        watchdog.start()
        try:
            code = self._watch(watchdog)
        finally:
            watchdog.stop()
            if health is not None:
                health.stop()
            self._cleanup()
        return code

    def _watch(self, watchdog: Watchdog) -> int:
        while not self._stop.wait(0.2):
            processes.reap_orphans({p.pid for p in self._children.values()})
            for proc in self._children.values():
                self._seen.update(processes.descendants(proc.pid))
            for name, proc in self._children.items():
                status = proc.poll()
                if status is not None:
                    when = "while serving" if watchdog.ready else "before the model was ready"
                    _say(f"{name} exited with code {status} {when}; stopping")
                    self._terminate(FAILURE_GRACE_SECONDS)
                    return status if status > 0 else 1
            if watchdog.fatal is not None:
                _say(watchdog.fatal)
                self._terminate(FAILURE_GRACE_SECONDS)
                return 3
        watchdog.stop()
        self._drain()
        return 0

    def _drain(self) -> None:
        """SIGTERM: nginx stops accepting and finishes what it has, then gunicorn, then out.

        Stopping both at once dropped in-flight requests (nginx still forwarding to a gunicorn
        that had closed its socket). nginx's SIGQUIT closes the listener and idle keep-alive
        connections at once and exits when its last request is answered; gunicorn then has
        nothing in flight and exits at once.
        """
        started = time.monotonic()
        deadline = started + self.settings.drain_timeout
        nginx = self._children.get("nginx")
        if nginx is not None and nginx.poll() is None:
            nginx.send_signal(signal.SIGQUIT)
            self._wait(nginx, deadline)
        gunicorn = self._children["gunicorn"]
        if gunicorn.poll() is None:
            gunicorn.send_signal(signal.SIGTERM)
            self._wait(gunicorn, max(deadline, time.monotonic()) + GUNICORN_STOP_SLACK)
        self._kill_leftovers()
        _log.info("stopped in %.2f s", time.monotonic() - started)

    def _terminate(self, grace: float) -> None:
        """Serving has failed: stop the rest now (nginx first, so no client waits on it)."""
        deadline = time.monotonic() + grace
        for name, sig in (("nginx", signal.SIGTERM), ("gunicorn", signal.SIGTERM)):
            proc = self._children.get(name)
            if proc is not None and proc.poll() is None:
                proc.send_signal(sig)
        for proc in self._children.values():
            self._wait(proc, deadline)
        self._kill_leftovers()

    @staticmethod
    def _wait(proc: subprocess.Popen[bytes], deadline: float) -> None:
        try:
            if processes.is_stopped(proc.pid):
                raise subprocess.TimeoutExpired(proc.args, 0)  # it would never act on a signal
            proc.wait(timeout=max(0.05, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            # A stopped process ignores everything but SIGKILL; take its children with it.
            processes.kill_all([proc.pid, *processes.descendants(proc.pid)])
            proc.wait()

    def _kill_leftovers(self) -> None:
        """Whatever still runs below us (an orphaned nginx worker) must not keep the port."""
        left = [p for p in processes.descendants(os.getpid()) if p in self._seen]
        if left:
            processes.kill_all(left)
            processes.reap_orphans({p.pid for p in self._children.values()})

    def _cleanup(self) -> None:
        for path in (self._metrics_dir, self.run_dir):
            if path:
                shutil.rmtree(path, ignore_errors=True)


def serve(settings: Settings) -> int:
    """Check the model is there, prepare its environment, and supervise the server."""
    mlmodel = os.path.join(settings.model_path, "MLmodel")
    if not os.path.isfile(mlmodel):
        _say(
            f"no MLflow model at {settings.model_path} (missing {mlmodel}); "
            f"mount one at {c.MODEL_PATH}"
        )
        return 2
    activate = prepare_environment(settings)
    if not settings.disable_nginx:
        binary()  # fail now, in one line, if nginx is missing
    return Supervisor(settings, activate).run()


def main(argv: list[str] | None = None) -> int:
    """``python -m turing_scoring_server.container serve|train``."""
    args = sys.argv[1:] if argv is None else argv
    command = args[0] if args else c.SERVE_COMMAND
    logs.configure_entrypoint(os.environ.get(c.ENV_LOG_FORMAT, "json"))
    if command == c.TRAIN_COMMAND:
        _say("this image serves MLflow models; SageMaker training ('train') is not supported")
        return 2
    if command != c.SERVE_COMMAND:
        _say(f"unknown command {command!r}; the container accepts 'serve'")
        return 2
    try:
        return serve(Settings.current())
    except TuringServerError as exc:
        _say(str(exc))
        return 2
    except Exception as exc:  # noqa: BLE001 - one line for the operator; details above it
        _say(f"{type(exc).__name__}: {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
