"""The process supervisor: the container entrypoint and what it starts and watches.

nginx in front, gunicorn behind it, the health answer on ``/ping`` and the watchdog behind that.
"""
