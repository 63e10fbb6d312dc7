"""SageMaker custom attributes: the header format, and routing ``POST /invocations`` by it."""

from __future__ import annotations

import base64
import json
import logging
from pathlib import Path

import pytest
from flask import Blueprint, Flask, request
from flask.testing import FlaskClient

from turing_scoring_server import ServedModel, Settings, create_app
from turing_scoring_server.app.model import load
from turing_scoring_server.logs import ACCESS_LOGGER
from turing_scoring_server.middleware.sagemaker_attributes import (
    MAX_LENGTH,
    CustomAttributesError,
    format_attributes,
    parse,
    routing_keys,
)

ATTRS = "X-Amzn-SageMaker-Custom-Attributes"
ECHO = "tests.fixtures.plugins.echo:blueprint"
ROUTES = f"{__name__}:routes"

routes = Blueprint("routing_rules_fixture", __name__)
"""Rules whose direct calls have werkzeug semantics a routed call must reproduce."""


@routes.get("/files/<path:name>")
def file_by_name(name: str) -> dict[str, str]:
    return {"name": name, "path": request.path}


@routes.post("/slashed/")
def slashed() -> dict[str, str]:
    return {"path": request.path}


IRIS_CSV = b"sepal_length,sepal_width,petal_length,petal_width\n5.1,3.5,1.4,0.2\n"


# --- the header format ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("", {}),
        ("a=1", {"a": "1"}),
        ("a=1,b=two", {"a": "1", "b": "two"}),
        ("flag", {"flag": ""}),
        ("flag,a=1", {"flag": "", "a": "1"}),
        (" a = 1 , b=2 ", {"a": "1", "b": "2"}),
        ("a=1,,b=2,", {"a": "1", "b": "2"}),
        ("k=x=y", {"k": "x=y"}),
        ("a=1,a=2", {"a": "2"}),
        ("=orphan,a=1", {"a": "1"}),
        ("route=/echo?x=1&y=2", {"route": "/echo?x=1&y=2"}),
        ("a=", {"a": ""}),
    ],
    ids=[
        "empty",
        "one-pair",
        "two-pairs",
        "bare-key",
        "bare-key-and-pair",
        "spaces-stripped",
        "empty-items-skipped",
        "equals-in-value",
        "last-duplicate-wins",
        "empty-key-skipped",
        "query-string-value",
        "empty-value",
    ],
)
def test_parse(header: str, expected: dict[str, str]) -> None:
    assert parse(header) == expected


def test_parse_accepts_exactly_the_limit() -> None:
    header = "k=" + "v" * (MAX_LENGTH - 2)
    assert len(header) == 1024

    assert parse(header) == {"k": "v" * 1022}


def test_parse_refuses_one_past_the_limit() -> None:
    header = "k=" + "v" * (MAX_LENGTH - 1)
    assert len(header) == 1025

    with pytest.raises(CustomAttributesError, match="1025 characters long; the limit is 1024"):
        parse(header)


@pytest.mark.parametrize("char", ["\t", "\n", "\x00", "\x1f", "\x7f", "é", "€"], ids=repr)
def test_parse_refuses_characters_that_are_not_visible_ascii(char: str) -> None:
    with pytest.raises(CustomAttributesError, match="visible ASCII"):
        parse(f"a=1{char}")


def test_parse_accepts_every_visible_ascii_character() -> None:
    visible = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in ",=")

    assert parse(f"key={visible}") == {"key": visible}


@pytest.mark.parametrize(
    ("pairs", "expected"),
    [
        ({}, ""),
        ({"a": "1"}, "a=1"),
        ({"a": "1", "flag": "", "b": "x y"}, "a=1,flag,b=x y"),
    ],
    ids=["empty", "one", "bare-key-and-space"],
)
def test_format_attributes(pairs: dict[str, str], expected: str) -> None:
    assert format_attributes(pairs) == expected
    assert parse(expected) == pairs


@pytest.mark.parametrize(
    ("pairs", "message"),
    [({"k": "v" * 1100}, "the limit is 1024"), ({"k": "café"}, "visible ASCII")],
    ids=["too-long", "non-ascii"],
)
def test_format_attributes_refuses_what_sagemaker_would(
    pairs: dict[str, str], message: str
) -> None:
    with pytest.raises(CustomAttributesError, match=message):
        format_attributes(pairs)


# --- routing --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def served(iris_model: Path) -> ServedModel:
    return load(str(iris_model))


@pytest.fixture(scope="module")
def app(served: ServedModel) -> Flask:
    """The built-in /turing (entry point) plus the echo fixture plugin (TURING_ENDPOINTS)."""
    return create_app(served, settings=Settings(workers=1, endpoints=(ECHO, ROUTES)))


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def _echoed(response_json: dict[str, object]) -> bytes:
    return base64.b64decode(str(response_json["body_b64"]))


def test_route_with_method_get_reaches_turing(client: FlaskClient) -> None:
    response = client.post(
        "/invocations",
        data=IRIS_CSV,
        content_type="text/csv",
        headers={ATTRS: "route=/turing,method=GET"},
    )

    assert response.status_code == 200
    assert response.json == {"turintech": "test"}


def test_method_is_case_insensitive(client: FlaskClient) -> None:
    response = client.post("/invocations", headers={ATTRS: "route=/turing,method=get"})

    assert response.json == {"turintech": "test"}


def test_routed_post_gets_body_content_type_and_attributes_unchanged(
    client: FlaskClient,
) -> None:
    body = b"\x00\xffbinary,body\n\xe9"
    header = "route=/echo,tenant=acme,flag"

    response = client.post(
        "/invocations",
        data=body,
        content_type="application/octet-stream; foo=bar",
        headers={ATTRS: header},
    )

    assert response.status_code == 200
    echo = response.json
    assert echo["method"] == "POST"
    assert echo["path"] == "/echo"
    assert _echoed(echo) == body
    assert echo["content_type"] == "application/octet-stream; foo=bar"
    # the routing keys are the router's: endpoints see the caller's own pairs only
    assert echo["custom_attributes"] == {"tenant": "acme", "flag": ""}


def test_routed_request_matches_a_direct_call(client: FlaskClient) -> None:
    headers = {ATTRS: "route=/echo?a=1,x=y"}
    routed = client.post("/invocations", data=IRIS_CSV, content_type="text/csv", headers=headers)

    direct = client.post("/echo?a=1", data=IRIS_CSV, content_type="text/csv", headers=headers)

    assert routed.json == direct.json
    assert routed.headers[ATTRS] == direct.headers[ATTRS]


def test_route_query_string_is_preserved(client: FlaskClient) -> None:
    response = client.post(
        "/invocations?ignored=1",
        data=b"{}",
        content_type="application/json",
        headers={ATTRS: "route=/echo?x=1&y=two&x=3"},
    )

    assert response.json["args"] == {"x": ["1", "3"], "y": ["two"]}


def test_route_without_query_drops_the_invocations_query(client: FlaskClient) -> None:
    response = client.post("/invocations?leak=1", headers={ATTRS: "route=/echo"})

    assert response.json["args"] == {}


def test_routed_get_reaches_get_handler(client: FlaskClient) -> None:
    response = client.post("/invocations", headers={ATTRS: "route=/echo,method=GET"})

    assert response.json["method"] == "GET"
    assert ATTRS not in response.headers  # the GET handler sets no response attributes


def test_endpoint_set_attributes_come_back_in_the_response_header(client: FlaskClient) -> None:
    response = client.post(
        "/invocations",
        data=b"x",
        content_type="text/plain",
        headers={ATTRS: "route=/echo,reply_model=iris,reply_flag"},
    )

    assert response.status_code == 200
    assert parse(response.headers[ATTRS]) == {"model": "iris", "flag": "", "echoed": "yes"}


def test_endpoint_set_attributes_on_a_direct_call(client: FlaskClient) -> None:
    response = client.post("/echo", data=b"x")

    assert response.headers[ATTRS] == "echoed=yes"


@pytest.mark.parametrize(
    ("route", "method"),
    [
        ("/ping", "GET"),
        ("/health", "GET"),
        ("/version", "GET"),
        ("/metadata", "GET"),
        ("/invocations", "POST"),
        ("/ping", "POST"),
        ("/metadata", "POST"),
    ],
    ids=lambda v: v.strip("/"),
)
def test_reserved_routes_are_refused_with_403_json(
    client: FlaskClient, route: str, method: str
) -> None:
    response = client.post(
        "/invocations",
        data=IRIS_CSV,
        content_type="text/csv",
        headers={ATTRS: f"route={route},method={method}"},
    )

    assert response.status_code == 403
    assert response.mimetype == "application/json"
    assert response.json["error_code"] == "PERMISSION_DENIED"
    assert route in response.json["message"]


def test_unknown_route_is_404_json(client: FlaskClient) -> None:
    response = client.post("/invocations", headers={ATTRS: "route=/nowhere"})

    assert response.status_code == 404
    assert response.mimetype == "application/json"
    assert response.json == {
        "error_code": "ENDPOINT_NOT_FOUND",
        "message": "No custom endpoint at route '/nowhere'",
    }


def test_wrong_method_is_405_json_naming_the_method_to_add(client: FlaskClient) -> None:
    response = client.post("/invocations", headers={ATTRS: "route=/echo-put"})

    assert response.status_code == 405
    assert response.mimetype == "application/json"
    assert response.json["message"] == (
        f"Route '/echo-put' does not accept POST; it accepts PUT: add method=PUT to {ATTRS}"
    )


def test_405_for_a_get_route_suggests_method_get(client: FlaskClient) -> None:
    response = client.post("/invocations", headers={ATTRS: "route=/turing"})

    assert response.status_code == 405
    assert "add method=GET" in response.json["message"]


def test_route_must_be_absolute(client: FlaskClient) -> None:
    response = client.post("/invocations", headers={ATTRS: "route=echo"})

    assert response.status_code == 400
    assert response.json["error_code"] == "BAD_REQUEST"


def test_invalid_header_on_invocations_is_400_json(client: FlaskClient) -> None:
    response = client.post(
        "/invocations",
        data=IRIS_CSV,
        content_type="text/csv",
        headers={ATTRS: "x" * 1025},
    )

    assert response.status_code == 400
    assert response.mimetype == "application/json"
    assert "limit is 1024" in response.json["message"]


def test_no_route_key_is_a_plain_model_invocation(client: FlaskClient) -> None:
    plain = client.post("/invocations", data=IRIS_CSV, content_type="text/csv")

    response = client.post(
        "/invocations",
        data=IRIS_CSV,
        content_type="text/csv",
        headers={ATTRS: "tenant=acme,trace"},
    )

    assert response.status_code == 200
    assert response.json == plain.json == {"predictions": [0]}


def test_route_header_only_routes_post_invocations(client: FlaskClient) -> None:
    response = client.get("/invocations", headers={ATTRS: "route=/turing,method=GET"})

    assert response.status_code == 405


@pytest.mark.parametrize("header", ["a=1\x7f", "x" * 1025], ids=["non-ascii", "too-long"])
def test_malformed_header_is_the_same_400_on_a_direct_call(
    client: FlaskClient, header: str
) -> None:
    direct = client.get("/echo", headers={ATTRS: header})
    routed = client.post("/invocations", headers={ATTRS: header})

    assert direct.status_code == routed.status_code == 400
    assert direct.mimetype == "application/json"
    assert direct.json == routed.json
    assert direct.json["error_code"] == "BAD_REQUEST"


def test_malformed_header_does_not_concern_routes_that_are_not_plugins(
    client: FlaskClient,
) -> None:
    assert client.get("/version", headers={ATTRS: "a=1\x7f"}).status_code == 200


@pytest.mark.parametrize("header", ["Route=/turing,Method=GET", "ROUTE=/turing,method=get"])
def test_routing_keys_match_in_any_case(client: FlaskClient, header: str) -> None:
    response = client.post("/invocations", headers={ATTRS: header})

    assert response.status_code == 200
    assert response.json == {"turintech": "test"}


def test_routing_key_given_twice_differently_is_400(client: FlaskClient) -> None:
    response = client.post("/invocations", headers={ATTRS: "route=/turing,Route=/echo"})

    assert response.status_code == 400
    assert "give it once" in response.json["message"]


def test_routing_keys_helper() -> None:
    assert routing_keys({"Route": "/a", "METHOD": "get", "x": "1"}) == ("/a", "get")
    assert routing_keys({"x": "1"}) == (None, None)


def test_routing_keys_are_hidden_on_direct_calls_too(client: FlaskClient) -> None:
    response = client.get("/echo", headers={ATTRS: "route=/x,Method=GET,tenant=acme"})

    assert response.json["custom_attributes"] == {"tenant": "acme"}


def test_percent_encoded_route_is_decoded_as_a_direct_call(client: FlaskClient) -> None:
    direct = client.get("/files/a%20b/%C3%A9t%C3%A9")
    routed = client.post(
        "/invocations", headers={ATTRS: "route=/files/a%20b/%C3%A9t%C3%A9,method=GET"}
    )

    assert direct.status_code == routed.status_code == 200
    assert routed.json == direct.json == {"name": "a b/été", "path": "/files/a b/été"}


def test_comma_in_a_route_is_written_2c(client: FlaskClient) -> None:
    routed = client.post("/invocations", headers={ATTRS: "route=/files/a%2Cb,method=GET"})

    assert routed.json["name"] == "a,b"


def test_route_to_a_rule_ending_in_slash_follows_the_redirect(client: FlaskClient) -> None:
    direct = client.post("/slashed")
    routed = client.post("/invocations", headers={ATTRS: "route=/slashed"})

    assert direct.status_code == 307  # the router's redirect (as Starlette's) a client follows
    assert direct.headers["Location"].endswith("/slashed/")
    assert routed.status_code == 200
    assert routed.mimetype == "application/json"
    assert routed.json == client.post("/slashed/").json == {"path": "/slashed/"}


def test_access_log_of_a_routed_request_names_invocations_and_the_route(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger=ACCESS_LOGGER):
        client.post("/invocations", data=b"x", headers={ATTRS: "route=/echo"})
        client.post("/invocations", headers={ATTRS: "route=/files/a%20b,method=GET"})

    records = [r for r in caplog.records if r.name == ACCESS_LOGGER]
    assert [(r.path, r.route, r.status) for r in records] == [  # type: ignore[attr-defined]
        ("/invocations", "/echo", 200),
        ("/invocations", "/files/<path:name>", 200),
    ]


def test_routed_json_body_reaches_plugin_as_json(client: FlaskClient) -> None:
    payload = {"dataframe_split": {"columns": ["a"], "data": [[1]]}}

    response = client.post(
        "/invocations",
        data=json.dumps(payload),
        content_type="application/json; charset=utf-8",
        headers={ATTRS: "route=/echo"},
    )

    assert json.loads(_echoed(response.json)) == payload
    assert response.json["content_type"] == "application/json; charset=utf-8"
