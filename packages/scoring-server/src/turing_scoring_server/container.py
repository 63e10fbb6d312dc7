"""The container entrypoint (``contract.ENTRYPOINT``): SageMaker runs ``<image> serve``.

It creates the model environment when asked (MLflow's own helpers), starts gunicorn with the WSGI
app and nginx in front of it, answers ``/ping`` itself, forwards SIGTERM for a graceful stop, and
exits non-zero whenever serving stops for any other reason, so restart policies see the failure.
"""

from __future__ import annotations

import logging
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field

from . import contract as c
from .errors import TuringServerError
from .health import HealthServer, probe
from .logs import JsonFormatter
from .nginx import NginxConfig, binary, check, render
from .settings import Settings

_log = logging.getLogger("turing_scoring_server.container")
STOP_GRACE_SECONDS = 25.0
"""SageMaker kills 30 s after SIGTERM; children get this long before SIGKILL."""


def _die_with_parent() -> None:
    """In a child, before exec: get SIGTERM if the entrypoint dies, even by SIGKILL.

    In a container PID 1's death ends everything anyway; on a host (``turing-scoring-server
    serve``, tests) nginx and gunicorn would otherwise outlive a killed entrypoint.
    """
    import contextlib
    import ctypes

    with contextlib.suppress(OSError):  # not Linux: nothing to do
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _say(message: str) -> None:
    print(f"turing-scoring-server: {message}", file=sys.stderr, flush=True)


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

    activate: list[str] = mlflow_container._install_model_dependencies_to_env(
        settings.model_path, settings.env_manager
    )
    if activate:
        from .__about__ import __version__

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
                "cannot install MLflow and the server into the model environment"
            )
    return activate


@dataclass
class Supervisor:
    """Runs gunicorn and nginx, answers ``/ping``, and decides the exit code."""

    settings: Settings
    activate: list[str] = field(default_factory=list)
    run_dir: str = field(default_factory=lambda: tempfile.mkdtemp(prefix="turing-"))
    _stop: threading.Event = field(default_factory=threading.Event)
    _ready: threading.Event = field(default_factory=threading.Event)
    _children: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

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
            # A fresh directory per run: counts start at zero with the container.
            metrics_dir = os.path.join(self.run_dir, "metrics")
            os.makedirs(metrics_dir, exist_ok=True)
            env[c.ENV_PROMETHEUS_MULTIPROC_DIR] = metrics_dir
        if self.activate:
            argv[0] = "python"
            command = " && ".join([*self.activate, "exec " + shlex.join(argv)])
            return subprocess.Popen(["bash", "-c", command], env=env, preexec_fn=_die_with_parent)
        return subprocess.Popen(argv, env=env, preexec_fn=_die_with_parent)

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
        return subprocess.Popen([binary(), "-e", "stderr", "-c", conf], preexec_fn=_die_with_parent)

    def _wait_ready(self, started: float) -> None:
        while not self._stop.is_set():
            if probe(self.app_socket, timeout=1.0) == 200:
                self._ready.set()
                _log.info("ready in %.2f s", time.monotonic() - started)
                return
            time.sleep(0.02)

    def _on_signal(self, signum: int, _frame: object) -> None:
        _log.info("got %s, stopping", signal.Signals(signum).name)
        self._stop.set()

    def run(self) -> int:
        """Serve until SIGTERM (exit 0) or until a child dies (exit non-zero)."""
        started = time.monotonic()
        os.chmod(self.run_dir, 0o755)
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        health: HealthServer | None = None
        # gunicorn first: loading the model is the long pole; nginx -t and nginx's start overlap it.
        self._children["gunicorn"] = self._gunicorn()
        if not self.settings.disable_nginx:
            health = HealthServer(
                os.path.join(self.run_dir, "health.sock"),
                lambda: self._ready.is_set() and self._children["gunicorn"].poll() is None,
            )
            try:
                self._children["nginx"] = self._nginx()
            except BaseException:
                self._terminate()
                raise
        if health is not None:
            # Threads only once the children are spawned: preexec_fn is unsafe with threads.
            health.start()
            threading.Thread(target=self._wait_ready, args=(started,), daemon=True).start()
        code = self._watch()
        if health is not None:
            health.stop()
        return code

    def _watch(self) -> int:
        while not self._stop.wait(0.2):
            for name, proc in self._children.items():
                status = proc.poll()
                if status is not None:
                    when = "while serving" if self._ready.is_set() else "before the model was ready"
                    _say(f"{name} exited with code {status} {when}; stopping")
                    self._terminate()
                    return status if status > 0 else 1
        self._terminate()
        return 0

    def _terminate(self) -> None:
        # gunicorn: SIGTERM is its graceful stop; nginx: SIGQUIT is its graceful stop.
        for name, sig in (("nginx", signal.SIGQUIT), ("gunicorn", signal.SIGTERM)):
            proc = self._children.get(name)
            if proc is not None and proc.poll() is None:
                proc.send_signal(sig)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for proc in self._children.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


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
    logging.basicConfig(
        level=logging.INFO, format="turing-scoring-server: %(message)s", stream=sys.stderr
    )
    if os.environ.get(c.ENV_LOG_FORMAT, "json").strip().lower() != "text":
        logging.getLogger().handlers[0].setFormatter(JsonFormatter())
    if command == c.TRAIN_COMMAND:
        _say("this image serves MLflow models; SageMaker training ('train') is not supported")
        return 2
    if command != c.SERVE_COMMAND:
        _say(f"unknown command {command!r}; the container accepts 'serve'")
        return 2
    try:
        return serve(Settings.from_env())
    except TuringServerError as exc:
        _say(str(exc))
        return 2
    except Exception as exc:  # noqa: BLE001 - one line for the operator; details above it
        _say(f"{type(exc).__name__}: {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
