"""The requests MLflow's app answers by itself (routing), answered by ours exactly as MLflow 3.x.

``ROUTED`` is MLflow's answer to each request, as its FastAPI app (Starlette's router) gives
it, written out: status, Content-Type, ``Allow``, ``Location`` and the body byte for byte. Here it
is checked against our app alone, whatever MLflow is installed; ``tests/compat`` checks the
same table against MLflow's own app where that app is FastAPI (MLflow >= 2.21), and
``tests/process/test_http_parity_nginx.py`` through gunicorn and nginx.

One row depends on the installed MLflow: before 3.11 its ``GET`` routes were Starlette's (2.21 to
3.10) or Flask's (2.x), which answer ``HEAD`` and list it in ``Allow``; from 3.11 they are
FastAPI's, which refuse it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from flask import Blueprint, Flask

from turing_scoring_server import ServedModel, Settings, create_app
from turing_scoring_server.app.mlflow_routes import refuses_head
from turing_scoring_server.app.model import load

HOST = "testserver"
"""The Host header of every request (Starlette's test client sends this one)."""
NOT_FOUND = b'{"detail":"Not Found"}'
NOT_ALLOWED = b'{"detail":"Method Not Allowed"}'
MLFLOW_ROUTES = {"/ping": "GET", "/health": "GET", "/version": "GET", "/invocations": "POST"}
HEAD_REFUSED = refuses_head()
"""MLflow >= 3.11: ``HEAD`` on its ``GET`` routes is a 405; before, a 200 without a body."""
METHODS = ("GET", "HEAD", "OPTIONS", "POST", "PUT", "DELETE", "PATCH", "TRACE", "FOO")


@dataclass(frozen=True)
class Routed:
    """One request and MLflow 3.x's answer to it."""

    method: str
    path: str
    status: int
    allow: str | None = None
    location: str | None = None
    """The redirect target's path and query; the absolute URL is ``http://<Host><location>``."""
    length: int | None = None
    """A 200's body length (a ``HEAD`` answered by an MLflow before 3.11)."""

    @property
    def id(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def content_type(self) -> str | None:
        return None if self.status == 307 else "application/json"

    @property
    def body(self) -> bytes:
        if self.status == 307 or self.method == "HEAD":
            return b""
        return NOT_FOUND if self.status == 404 else NOT_ALLOWED

    @property
    def content_length(self) -> str:
        # HEAD gets the length of the body it would have had, as Starlette sends it.
        if self.length is not None:
            return str(self.length)
        full = {307: b"", 404: NOT_FOUND, 405: NOT_ALLOWED}[self.status]
        return str(len(full))


def _on_mlflow_route(method: str, path: str, allowed: str) -> Routed:
    if allowed != "GET" or HEAD_REFUSED:
        return Routed(method, path, 405, allow=allowed)
    if method == "HEAD":
        from mlflow.version import VERSION

        return Routed(method, path, 200, length=len(VERSION if path == "/version" else "\n"))
    return Routed(method, path, 405, allow="GET, HEAD")


ROUTED: list[Routed] = [
    *(
        _on_mlflow_route(method, path, allowed)
        for path, allowed in MLFLOW_ROUTES.items()
        for method in METHODS
        if method != allowed
    ),
    Routed("POST", "/invocations/", 307, location="/invocations"),
    Routed("GET", "/invocations/", 307, location="/invocations"),
    Routed("GET", "/ping/", 307, location="/ping"),
    Routed("HEAD", "/ping/", 307, location="/ping"),
    Routed("GET", "/health/", 307, location="/health"),
    Routed("GET", "/version/", 307, location="/version"),
    Routed("GET", "/ping//", 307, location="/ping"),
    Routed("GET", "/ping/?a=1&b=%20", 307, location="/ping?a=1&b=%20"),
    Routed("GET", "/ping%2F", 307, location="/ping"),
    Routed("POST", "//invocations", 404),
    Routed("GET", "//ping", 404),
    Routed("GET", "//ping/", 404),
    Routed("GET", "/no-such", 404),
    Routed("HEAD", "/no-such", 404),
    Routed("OPTIONS", "/no-such", 404),
    Routed("TRACE", "/no-such", 404),
    Routed("GET", "/no-such/", 404),
    Routed("GET", "/PING", 404),
    Routed("GET", "/", 404),
    Routed("POST", "/", 404),
    Routed("GET", "//", 404),
]


@dataclass(frozen=True)
class Got:
    """The parts of an answer ``ROUTED`` describes."""

    status: int
    content_type: str | None
    allow: str | None
    location: str | None
    content_length: str | None
    body: bytes


def expected(routed: Routed, origin: str = f"http://{HOST}") -> Got:
    location = None if routed.location is None else origin + routed.location
    return Got(
        routed.status, routed.content_type, routed.allow, location, routed.content_length,
        routed.body,
    )  # fmt: skip


def ask_app(app: Flask, method: str, path: str) -> Got:
    response = app.test_client().open(path, method=method, headers={"Host": HOST})
    headers = response.headers
    return Got(
        response.status_code, headers.get("Content-Type"), headers.get("Allow"),
        headers.get("Location"), headers.get("Content-Length"), response.get_data(),
    )  # fmt: skip


@pytest.fixture(scope="module")
def served(iris_model: Path) -> ServedModel:
    return load(str(iris_model))


@pytest.fixture(scope="module")
def app(served: ServedModel) -> Flask:
    return create_app(served, settings=Settings(workers=1), entry_points=False)


def test_the_table_covers_every_method_on_every_mlflow_route() -> None:
    ids = [routed.id for routed in ROUTED]
    assert len(ids) == len(set(ids))
    for path in MLFLOW_ROUTES:
        assert {r.method for r in ROUTED if r.path == path} == set(METHODS) - {MLFLOW_ROUTES[path]}


@pytest.mark.parametrize("routed", ROUTED, ids=lambda routed: routed.id)
def test_router_answers_as_mlflow_3(app: Flask, routed: Routed) -> None:
    assert ask_app(app, routed.method, routed.path) == expected(routed)


def test_redirect_location_keeps_the_host_as_sent(app: Flask) -> None:
    response = app.test_client().get("/invocations/?q=1", headers={"Host": "example.org:8443"})

    assert response.status_code == 307
    assert response.headers["Location"] == "http://example.org:8443/invocations?q=1"


def test_the_redirect_is_followed_to_a_prediction(app: Flask) -> None:
    columns = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    row = {"dataframe_split": {"columns": columns, "data": [[5.1, 3.5, 1.4, 0.2]]}}
    response = app.test_client().post("/invocations/", json=row, follow_redirects=True)

    assert response.status_code == 200
    assert response.json == {"predictions": [0]}


# --- plugin routes: the same router, Flask's HEAD and OPTIONS kept -------------------------


@pytest.fixture(scope="module")
def plugin_app(served: ServedModel) -> Flask:
    app = create_app(served, settings=Settings(workers=1), entry_points=False)
    blueprint = Blueprint("parity_plugin", __name__)

    @blueprint.get("/things")
    def things() -> dict[str, str]:
        return {"things": "all"}

    @blueprint.post("/things/new/")
    def new_thing() -> dict[str, str]:
        return {"thing": "new"}

    app.register_blueprint(blueprint)
    return app


def test_a_plugin_get_route_answers_head_and_options(plugin_app: Flask) -> None:
    """Kept on purpose for plugins: RFC 9110 has general-purpose servers answer HEAD wherever
    they answer GET, and browsers' CORS preflights send OPTIONS; MLflow's four routes alone
    follow MLflow."""
    client = plugin_app.test_client()

    assert client.head("/things").status_code == 200
    options = client.options("/things")
    assert options.status_code == 200
    assert {m.strip() for m in options.headers["Allow"].split(",")} == {"GET", "HEAD", "OPTIONS"}


def test_a_plugin_route_gets_the_routers_405_and_redirects(plugin_app: Flask) -> None:
    client = plugin_app.test_client()

    wrong = client.delete("/things", headers={"Host": HOST})
    assert (wrong.status_code, wrong.get_data()) == (405, NOT_ALLOWED)
    assert wrong.headers["Allow"] == "GET, HEAD, OPTIONS"
    slashed = client.get("/things/", headers={"Host": HOST})
    assert (slashed.status_code, slashed.headers["Location"]) == (307, f"http://{HOST}/things")
    # A rule written with its slash: the slashless path redirects to it (Starlette's 307, not
    # werkzeug's 308), whatever the method.
    bare = client.get("/things/new", headers={"Host": HOST})
    assert (bare.status_code, bare.headers["Location"]) == (307, f"http://{HOST}/things/new/")
    assert "Content-Type" not in bare.headers


@pytest.mark.parametrize("status", [404, 405])
def test_an_error_raised_by_a_plugin_keeps_mlflows_error_shape(
    served: ServedModel, status: int
) -> None:
    """Only the routing decision answers ``{"detail"}``; ``abort()`` in code is an error of the
    endpoint, in MLflow's shape like every other."""
    from flask import abort

    app = create_app(served, settings=Settings(workers=1), entry_points=False)
    blueprint = Blueprint("aborting_plugin", __name__)

    @blueprint.get("/lookup")
    def lookup() -> None:
        abort(status)

    app.register_blueprint(blueprint)

    response = app.test_client().get("/lookup")

    assert response.status_code == status
    assert (
        response.json["error_code"] == {404: "ENDPOINT_NOT_FOUND", 405: "NOT_IMPLEMENTED"}[status]
    )
    assert set(response.json) == {"error_code", "message"}
