"""Render the packaged nginx.conf template for a run (or for a legacy image) and start nginx."""

from __future__ import annotations

import ipaddress
import re
import shutil
import subprocess
from dataclasses import dataclass, replace
from importlib.resources import files
from pathlib import Path

from .. import contract as c
from ..errors import SettingsError, error_body, router_error_body
from ..settings import Settings

_PLACEHOLDER = re.compile(r"@([A-Z_]+)@")


_DEFAULTS = Settings()
"""The defaults are the settings' own: declared once, in :class:`Settings`."""


@dataclass(frozen=True)
class NginxConfig:
    """Values substituted into the template."""

    port: int
    upstream: str
    ping_upstream: str
    run_dir: str
    max_body_size: str = _DEFAULTS.max_body_size
    invocations_max_body_size: str = _DEFAULTS.invocations_max_body_size
    keepalive_timeout: int = _DEFAULTS.keepalive_timeout
    proxy_timeout: int = _DEFAULTS.proxy_timeout
    worker_connections: int = _DEFAULTS.worker_connections
    gzip: bool = _DEFAULTS.gzip
    snippets_dir: str = _DEFAULTS.nginx_snippets_dir
    template_path: str | None = _DEFAULTS.nginx_template
    log_format: str = _DEFAULTS.log_format
    access_log: bool = _DEFAULTS.access_log
    admin_routes: str = _DEFAULTS.admin_routes
    """``public``, ``off`` or ``port`` (then ``admin_port``): see ``Settings.admin_routes``."""
    admin_port: int | None = _DEFAULTS.admin_port
    trusted_proxies: tuple[str, ...] = _DEFAULTS.trusted_proxies

    @classmethod
    def for_run(
        cls, settings: Settings, run_dir: str, upstream: str, ping_upstream: str
    ) -> NginxConfig:
        """Values for a run of the ``serve`` entrypoint."""
        return cls(
            port=settings.port,
            upstream=upstream,
            ping_upstream=ping_upstream,
            run_dir=run_dir,
            max_body_size=settings.max_body_size,
            invocations_max_body_size=settings.invocations_max_body_size,
            keepalive_timeout=settings.keepalive_timeout,
            proxy_timeout=settings.proxy_timeout,
            worker_connections=settings.worker_connections,
            gzip=settings.gzip,
            snippets_dir=settings.nginx_snippets_dir,
            template_path=settings.nginx_template,
            log_format=settings.log_format,
            access_log=settings.access_log,
            admin_routes=settings.admin_routes,
            admin_port=settings.admin_port,
            trusted_proxies=settings.trusted_proxies,
        )

    @classmethod
    def legacy(cls, settings: Settings | None = None) -> NginxConfig:
        """Values for images whose MLflow (< 2.21) runs gunicorn on 127.0.0.1:8000 itself.

        Rendered at build time, so ``settings`` are the image's ``ENV`` (timeouts, body limits,
        snippets); the packaged template always, as MLflow's entrypoint starts nginx itself.
        """
        if settings is None:
            return cls(
                port=c.PUBLIC_PORT,
                upstream=c.LEGACY_UPSTREAM,
                ping_upstream=c.LEGACY_UPSTREAM,
                run_dir="/tmp",
            )
        config = cls.for_run(settings, "/tmp", c.LEGACY_UPSTREAM, c.LEGACY_UPSTREAM)
        return replace(config, port=c.PUBLIC_PORT, template_path=None)


# "2026/11/26 12:41:24 [emerg] 15417#15417: " before nginx's message: noise in a one-line error.
_NGINX_LOG_PREFIX = re.compile(r"^\S+ \S+ \[(?:emerg|alert)\] \d+#\d+: ")


def template(path: str | None = None) -> str:
    """A user's template at ``path``, else the packaged one (``contract.NGINX_CONF_RESOURCE``)."""
    if path is not None:
        with open(path, encoding="utf-8") as f:
            return f.read()
    return files(c.NGINX_CONF_PACKAGE).joinpath(c.NGINX_CONF_RESOURCE).read_text(encoding="utf-8")


def render(config: NginxConfig) -> str:
    """Substitute every placeholder; an unknown one is a packaging bug and fails loudly.

    A user's template (``TURING_NGINX_TEMPLATE``) may predate a placeholder; it keeps working
    unless a setting needs that placeholder, which fails loudly too (see :func:`_needed`).
    """
    values = {
        "PORT": str(config.port),
        "UPSTREAM": config.upstream,
        "PING_UPSTREAM": config.ping_upstream,
        "RUN_DIR": config.run_dir,
        "MAX_BODY_SIZE": config.max_body_size,
        "INVOCATIONS_MAX_BODY_SIZE": config.invocations_max_body_size,
        "KEEPALIVE_TIMEOUT": str(config.keepalive_timeout),
        "PROXY_TIMEOUT": str(config.proxy_timeout),
        "WORKER_CONNECTIONS": str(config.worker_connections),
        "GZIP": "on" if config.gzip else "off",
        "SNIPPETS_DIR": config.snippets_dir,
        "ACCESS_LOG": (
            f"/dev/stdout turing_{config.log_format} if=$turing_nginx_only"
            if config.access_log
            else "off"
        ),
        "ERROR_PAGES": error_pages(
            hidden=f"$uri ~ {_routes_regex(sorted(c.ADMIN_ROUTES), slashes=True)}"
            if config.admin_routes == "port"
            else None,
            snippets_dir=config.snippets_dir,
        ),
        "TRUSTED_PROXIES": trusted_proxies(config.trusted_proxies),
        "ADMIN_LOCATIONS": admin_locations(config.admin_routes),
        "ADMIN_SERVER": admin_server(config),
    }

    def substitute(match: re.Match[str]) -> str:
        try:
            return values[match.group(1)]
        except KeyError:
            raise SettingsError(
                f"nginx.conf template names unknown placeholder {match.group(0)}"
            ) from None

    text = template(config.template_path)
    present = set(_PLACEHOLDER.findall(text))
    for name, why in _needed(config).items():
        if name not in present:
            raise SettingsError(f"the nginx.conf template has no @{name}@, which {why} needs")
    return _PLACEHOLDER.sub(substitute, text)


def _needed(config: NginxConfig) -> dict[str, str]:
    """Placeholders a setting cannot do without: missing, they would silently undo it."""
    needed: dict[str, str] = {}
    if config.admin_routes == "port":
        why = f"{c.ENV_ADMIN_ROUTES}={config.admin_port}"
        needed.update(ADMIN_LOCATIONS=why, ADMIN_SERVER=why)
    if config.trusted_proxies:
        needed["TRUSTED_PROXIES"] = c.ENV_TRUSTED_PROXIES
    return needed


ERROR_PAGES: tuple[tuple[int, int, str], ...] = (
    # (what nginx ends the request with, the status the client gets, the message)
    (400, 400, "The request is malformed (request line, headers or chunked body)"),
    (403, 403, "Access to the requested URL is denied"),  # users' allow/deny snippets
    (408, 408, "The request was not received in time"),
    (411, 411, "The request needs a Content-Length"),
    (413, 413, "Request body is larger than the limit"),
    (414, 414, "Request URI is longer than the limit"),
    (429, 429, "Too many requests"),  # users' limit_req snippets
    # nginx's own 494 (a header past large_client_header_buffers) is RFC 6585's 431.
    (494, 431, "Request headers are larger than the limit"),
    (500, 500, "The server failed to handle the request (see its log)"),
    (501, 501, "The Transfer-Encoding of the request is not supported"),
    (502, 502, "The model server is not answering"),
    (503, 503, "The model server is not available"),
    (504, 504, "The model server did not answer in time"),
    (505, 505, "The HTTP version is not supported (use HTTP/1.1)"),
)
"""Every error status nginx can produce itself (or a common snippet makes it produce), answered
in MLflow's error shape. Two more are the router's, not errors of a request: see
:func:`error_pages`."""

ERROR_PAGE_PREFIX = "/__turing/"
"""Internal URIs of the error pages; the access-log map in the template matches this prefix."""

FORWARD_405 = "@turing_405"
"""The named location that hands a request nginx refused with 405 (TRACE) to the app."""


def error_pages(
    indent: str = "    ", hidden: str | None = None, snippets_dir: str | None = None
) -> str:
    """``error_page`` lines and their internal JSON locations, for one ``server`` block.

    They catch request-line errors too (400, 414, 505: answered with the settings of the
    port's default server before any ``Host`` is read). Server level rather than http level
    (which catches them as well) so that a user's server-level ``error_page`` snippet adds to
    these instead of dropping every inherited one.

    nginx's 404 means "no route here" (a hidden admin route, an internal page, the admin port's
    other paths), so it is the app's router 404, ``{"detail":"Not Found"}``, byte for byte. Its
    only 405 is TRACE, refused before any location: that request goes to the app in the named
    location :data:`FORWARD_405`, method and URI unchanged, so it gets the app's own answer
    (status, body, ``Allow``, a slash redirect), which nginx could not know for a plugin's route.
    ``hidden`` is an ``if`` condition on ``$uri`` for paths this server must answer 404 for
    even then (admin routes the public port hides); ``snippets_dir`` adds users' location
    snippets, so their access rules hold for it too. ``recursive_error_pages``: an error there
    (a snippet's deny, a dead app's 502) must get its JSON page as well; every page location
    only ``return``s, so nothing loops.
    """
    lines = ["recursive_error_pages on;"]
    for caught, status, _ in ERROR_PAGES:
        overwrite = f"={status} " if status != caught else ""
        lines.append(f"error_page {caught} {overwrite}{ERROR_PAGE_PREFIX}{status}.json;")
    lines.append(f"error_page 404 {ERROR_PAGE_PREFIX}404.json;")
    lines.append(f"error_page 405 = {FORWARD_405};")
    pages = [(status, error_body(status, message)) for _, status, message in ERROR_PAGES]
    for status, body in [*pages, (404, router_error_body(404))]:
        if set(body) & {"'", "$", "\\"}:
            raise SettingsError(f"error page {status} cannot be quoted for nginx: {body}")
        lines.append(
            f"location = {ERROR_PAGE_PREFIX}{status}.json {{ internal; "
            "default_type application/json; "
            f"add_header X-Request-ID $turing_request_id always; "
            f"return {status} '{body}'; }}"
        )
    forward = [f"location {FORWARD_405} {{"]
    if hidden is not None:
        forward.append(f"  if ({hidden}) {{ return 404; }}")
    if snippets_dir is not None:
        forward.append(f"  include {snippets_dir}/location.d/*.conf;")
    forward += ["  proxy_pass http://app;", "}"]
    return "\n".join(indent + line for line in [*lines, *forward])


def _routes_regex(routes: list[str], slashes: bool) -> str:
    """A quoted nginx regex for ``routes``, with any trailing slashes when ``slashes``."""
    names = "|".join(re.escape(route.removeprefix("/")) for route in sorted(routes))
    return f'"^/(?:{names}){"/*" if slashes else ""}$"'


def trusted_proxies(proxies: tuple[str, ...]) -> str:
    """http-level realip settings: believe ``X-Forwarded-For`` from ``proxies`` only.

    ``$turing_forwarded_for`` is what the app gets as ``X-Forwarded-For``: the client's chain
    plus the peer that connected. Behind realip ``$proxy_add_x_forwarded_for`` would append the
    client (``$remote_addr``) instead of the proxy, so the map uses ``$realip_remote_addr``.
    Without trusted proxies nothing needs the realip module.
    """
    if not proxies:
        return (
            f"  # None ({c.ENV_TRUSTED_PROXIES} is empty): $remote_addr is the peer, whatever\n"
            "  # the client writes in X-Forwarded-For.\n"
            "  map $http_x_forwarded_for $turing_forwarded_for {\n"
            "    default $proxy_add_x_forwarded_for;\n"
            "  }"
        )
    lines = [f"  # {c.ENV_TRUSTED_PROXIES}: the client is the last address these did not add."]
    for proxy in proxies:
        try:
            network = ipaddress.ip_network(proxy, strict=False)
        except ValueError:
            raise SettingsError(
                f"{c.ENV_TRUSTED_PROXIES}: {proxy!r} is not an address or CIDR"
            ) from None
        lines.append(f"  set_real_ip_from {network};")
    lines += [
        "  real_ip_header X-Forwarded-For;",
        "  real_ip_recursive on;",
        "  map $http_x_forwarded_for $turing_forwarded_for {",
        '    "" $realip_remote_addr;',
        '    default "$http_x_forwarded_for, $realip_remote_addr";',
        "  }",
    ]
    return "\n".join(lines)


def admin_locations(admin_routes: str, indent: str = "    ") -> str:
    """Public-server locations hiding ``contract.ADMIN_ROUTES`` unless they are public."""
    if admin_routes == "public":
        return f"{indent}# {c.ENV_ADMIN_ROUTES}=public: the app answers them here."
    if admin_routes not in ("off", "port"):
        raise SettingsError(f"admin_routes={admin_routes!r}: use public, off or port")
    # A regex for each, with trailing slashes: the app would redirect /metrics/ to /metrics,
    # telling a hidden route from no route.
    return "\n".join(
        f"{indent}location ~ {_routes_regex([route], slashes=True)} {{ return 404; }}"
        for route in sorted(c.ADMIN_ROUTES)
    )


def admin_server(config: NginxConfig) -> str:
    """The admin port's ``server`` (``admin_routes == "port"``), else nothing.

    Only ``contract.ADMIN_ROUTES`` and ``/ping`` reach the app there; everything else is a JSON
    404. Users' snippets are not included: they are written for the public port.
    """
    if config.admin_routes != "port":
        return ""
    if config.admin_port is None:
        raise SettingsError("admin_routes='port' needs an admin_port")
    routes = "\n".join(
        f"    location = {route} {{ proxy_pass http://app; }}" for route in sorted(c.ADMIN_ROUTES)
    )
    # A TRACE the app answers only on this port's own routes; anything else is no route here.
    pages = error_pages(hidden=f"$uri !~ {_routes_regex(['/ping', *c.ADMIN_ROUTES], False)}")
    return f"""
  # {c.ENV_ADMIN_ROUTES}={config.admin_port}: the admin routes on a port of their own.
  server {{
    listen {config.admin_port} deferred;
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_set_header Host $http_host;
    proxy_set_header X-Forwarded-For $turing_forwarded_for;
    proxy_set_header X-Real-IP $remote_addr;
    proxy_set_header X-Request-ID $turing_request_id;
    proxy_redirect off;
    proxy_read_timeout {config.proxy_timeout}s;
    proxy_send_timeout {config.proxy_timeout}s;
    proxy_max_temp_file_size 0;
{pages}

    location = /ping {{ proxy_pass http://ping; }}
{routes}
    location / {{ return 404; }}
  }}"""


def binary() -> str:
    """Path of the nginx binary, or a :class:`SettingsError` saying how to do without it."""
    found = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if Path(p).exists()), None
    )
    if found is None:
        raise SettingsError(
            "nginx is not installed: install it (Debian: apt-get install nginx-light) "
            f"or set {c.ENV_DISABLE_NGINX}=true to let gunicorn listen itself"
        )
    return found


def check(conf_path: str) -> None:
    """Run ``nginx -t`` on a rendered file; raise with nginx's own message on failure.

    Users' snippets and templates are checked before anything starts, so a typo is one clear
    line at start-up (and at build time, where the builder runs the same check) instead of a
    container that dies with nginx's log somewhere in its output.
    """
    proc = subprocess.run(
        [binary(), "-t", "-q", "-e", "stderr", "-c", conf_path], capture_output=True, text=True
    )
    if proc.returncode != 0:
        message = " ".join(
            _NGINX_LOG_PREFIX.sub("", line.removeprefix("nginx: ").strip())
            for line in proc.stderr.splitlines()
            if "[emerg]" in line or "[alert]" in line
        )
        raise SettingsError(f"nginx rejects its configuration: {message or proc.stderr.strip()}")
