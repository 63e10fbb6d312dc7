"""Gunicorn defaults, loaded with ``-c python:turing_scoring_server.gunicorn_config``.

They sit in a config module, not on the command line, because gunicorn lets ``GUNICORN_CMD_ARGS``
override a config file but not the command line: users' ``GUNICORN_CMD_ARGS`` (the knob MLflow's
SageMaker docs tell them to use) always wins. Only ``--bind`` is forced, by the entrypoint.
The hooks below hold whatever worker class a user picks; see :mod:`.supervisor.gunicorn_hooks`.
"""

from turing_scoring_server.logs import gunicorn_logconfig
from turing_scoring_server.settings import Settings
from turing_scoring_server.supervisor import gunicorn_hooks

_settings = Settings.current()  # the app, loaded next in this process, takes the same

workers = _settings.workers
# Behind nginx, one request per worker at a time: sync workers. A sync worker accepts a
# connection only when it is free, so the kernel hands each request to an idle worker; gthread
# workers accept while busy and nginx's pooled connections then pin requests to one worker
# (measured: 10,000-row requests at concurrency 8, 17-19 req/s with gthread, 42-44 with sync).
# nginx buffers bodies and keeps client connections alive, so sync workers meet no slow client.
# With more threads (I/O-bound endpoints) or without nginx (clients connect directly and need
# keep-alive), gthread.
worker_class = "sync" if _settings.threads == 1 and not _settings.disable_nginx else "gthread"
threads = _settings.threads
# A worker heartbeats between requests (sync) or from its main thread (gthread); the app's
# MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT answers 504 (and recycles the worker) well before this
# kills a worker.
timeout = max(_settings.request_timeout + 30, 60)
# On SIGTERM in-flight requests get TURING_DRAIN_TIMEOUT seconds, well inside the 30 s SageMaker
# gives before SIGKILL; at least 1 s so an idle worker's exit is never cut short.
graceful_timeout = max(_settings.drain_timeout, 1)
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

pre_fork = gunicorn_hooks.pre_fork
post_fork = gunicorn_hooks.post_fork
post_request = gunicorn_hooks.post_request
child_exit = gunicorn_hooks.child_exit
worker_exit = gunicorn_hooks.worker_exit
on_exit = gunicorn_hooks.on_exit
