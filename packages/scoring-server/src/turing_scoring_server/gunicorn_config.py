"""Gunicorn defaults, loaded with ``-c python:turing_scoring_server.gunicorn_config``.

They sit in a config module, not on the command line, because gunicorn lets ``GUNICORN_CMD_ARGS``
override a config file but not the command line: users' ``GUNICORN_CMD_ARGS`` (the knob MLflow's
SageMaker docs tell them to use) always wins. Only ``--bind`` is forced, by the entrypoint.
"""

from turing_scoring_server.logs import gunicorn_logconfig
from turing_scoring_server.settings import Settings

_settings = Settings.from_env()

workers = _settings.workers
# Threads let a worker answer a request while another waits on I/O; gthread also keeps client
# connections alive when gunicorn listens publicly (DISABLE_NGINX=true).
worker_class = "gthread"
threads = _settings.threads
# gthread workers heartbeat from their main thread, so a long prediction does not trip this;
# MLflow's own request timeout (MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT) is applied by the app.
timeout = max(_settings.request_timeout + 30, 60)
# SageMaker sends SIGKILL 30 s after SIGTERM: finish in-flight requests well before that.
graceful_timeout = 20
keepalive = _settings.keepalive_timeout
preload_app = _settings.preload
worker_tmp_dir = "/dev/shm"
# gunicorn >= 26 opens a control socket under $HOME; images may have a read-only home.
control_socket_disable = True
loglevel = _settings.log_level
# Access lines come from the app's own access log (JSON or text, with request id and route).
accesslog = None
errorlog = "-"
logconfig_dict = gunicorn_logconfig(_settings.log_format, _settings.log_level)


def child_exit(server: object, worker: object) -> None:
    """Drop a dead worker's live gauges (in-flight requests) from the multiprocess metrics."""
    import os

    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)  # type: ignore[attr-defined]
