"""Users change nginx and the app without forking: snippets, knobs, templates, app hooks."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import requests

from tests.conftest import log_messages
from tests.process.conftest import RunningServer
from turing_scoring_server import contract as c
from turing_scoring_server.supervisor.nginx import template

DOCS = Path(__file__).resolve().parents[2] / "docs"


def _snippets(tmp_path: Path, server: str = "", location: str = "") -> Path:
    root = tmp_path / "nginx"
    for sub, text in (("server.d", server), ("location.d", location)):
        (root / sub).mkdir(parents=True)
        if text:
            (root / sub / "user.conf").write_text(text)
    return root


def test_server_snippet_adds_a_header(
    server_factory: Any, iris_model: Path, tmp_path: Path
) -> None:
    snippets = _snippets(tmp_path, server="add_header X-Served-By my-team always;\n")
    server: RunningServer = server_factory(iris_model, TURING_NGINX_SNIPPETS_DIR=str(snippets))
    assert requests.get(server.url + "/turing", timeout=5).headers["X-Served-By"] == "my-team"
    assert requests.get(server.url + "/ping", timeout=5).headers["X-Served-By"] == "my-team"


def test_location_snippet_applies_to_app_routes(
    server_factory: Any, iris_model: Path, tmp_path: Path
) -> None:
    snippets = _snippets(tmp_path, location="add_header X-App-Route yes always;\n")
    server: RunningServer = server_factory(iris_model, TURING_NGINX_SNIPPETS_DIR=str(snippets))
    assert requests.get(server.url + "/turing", timeout=5).headers["X-App-Route"] == "yes"
    assert "X-App-Route" not in requests.get(server.url + "/ping", timeout=5).headers


def test_broken_snippet_stops_start_up_with_nginx_message(
    server_factory: Any, iris_model: Path, tmp_path: Path
) -> None:
    snippets = _snippets(tmp_path, server="add_header_typo X 1;\n")
    server: RunningServer = server_factory(
        iris_model, wait=False, TURING_NGINX_SNIPPETS_DIR=str(snippets)
    )
    assert server.proc.wait(timeout=30) == 2
    line = next(m for m in log_messages(server.output()) if "nginx rejects" in m)
    assert 'unknown directive "add_header_typo"' in line


def test_body_limits_per_route_group(server_factory: Any, iris_model: Path) -> None:
    server: RunningServer = server_factory(
        iris_model, TURING_NGINX_MAX_BODY_SIZE="1k", TURING_NGINX_INVOCATIONS_MAX_BODY_SIZE="1m"
    )
    body = b"x" * 4096
    invocations = requests.post(
        server.url + "/invocations", data=body, headers={"Content-Type": "text/csv"}, timeout=10
    )
    assert invocations.status_code == 400, "the model's parser answers, nginx let it through"
    other = requests.post(server.url + "/turing", data=body, timeout=10)
    assert other.status_code == 413
    assert other.json()["error_code"] == "REQUEST_LIMIT_EXCEEDED"


def test_gzip_switch(server_factory: Any, iris_model: Path) -> None:
    server: RunningServer = server_factory(iris_model, TURING_NGINX_GZIP="true")
    rows = [[5.1, 3.5, 1.4, 0.2]] * 2000
    payload = {
        "dataframe_split": {
            "columns": ["sepal_length", "sepal_width", "petal_length", "petal_width"],
            "data": rows,
        }
    }
    answer = requests.post(
        server.url + "/invocations", json=payload, headers={"Accept-Encoding": "gzip"}, timeout=30
    )
    assert answer.headers.get("Content-Encoding") == "gzip"
    assert len(answer.json()["predictions"]) == 2000


def test_users_full_template(server_factory: Any, iris_model: Path, tmp_path: Path) -> None:
    mine = tmp_path / "nginx.conf.template"
    mine.write_text(
        template().replace(
            "server_tokens off;", "server_tokens off;\n  add_header X-Template mine;"
        )
    )
    server: RunningServer = server_factory(iris_model, TURING_NGINX_TEMPLATE=str(mine))
    assert requests.get(server.url + "/turing", timeout=5).headers["X-Template"] == "mine"


def _docs_hook_module(tmp_path: Path) -> str:
    """The app-hook example of docs/custom-endpoints.md, as a module on sys.path."""
    text = (DOCS / "custom-endpoints.md").read_text()
    section = text.split("## App hooks", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, flags=re.S)
    assert code is not None
    package = tmp_path / "docs_hook_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "hooks.py").write_text(code.group(1))
    return str(tmp_path)


def test_docs_api_key_hook_guards_custom_routes_and_leaves_ping_open(
    server_factory: Any, iris_model: Path, tmp_path: Path
) -> None:
    path = _docs_hook_module(tmp_path)
    server: RunningServer = server_factory(
        iris_model,
        PYTHONPATH=path + ":" + ":".join(sys.path),
        MY_API_KEY="s3cret",
        **{c.ENV_APP_HOOKS: "docs_hook_pkg.hooks:require_api_key"},
    )
    assert requests.get(server.url + "/ping", timeout=5).status_code == 200
    refused = requests.get(server.url + "/turing", timeout=5)
    assert refused.status_code == 401
    assert refused.json()["error_code"] == "UNAUTHENTICATED"
    allowed = requests.get(server.url + "/turing", headers={"X-Api-Key": "s3cret"}, timeout=5)
    assert allowed.json() == {"turintech": "test"}
