"""The example plugin package, loaded through its installed entry point, on the real iris model."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from turing_scoring_server import Settings, create_app

ATTRS = "X-Amzn-SageMaker-Custom-Attributes"
ROW = {"sepal_length": 6.7, "sepal_width": 3.0, "petal_length": 5.2, "petal_width": 2.3}
CSV_BODY = b"sepal_length,sepal_width,petal_length,petal_width\n5.1,3.5,1.4,0.2\n6.7,3.0,5.2,2.3\n"


@pytest.fixture(scope="module")
def app(iris_model: Path) -> Flask:
    # entry_points=True (the default): the plugin comes from its installed distribution.
    return create_app(str(iris_model), settings=Settings(workers=1))


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def test_plugin_is_loaded_from_its_entry_point(client: FlaskClient) -> None:
    routes = client.get("/metadata").json["custom_routes"]

    example = {r["rule"]: r["methods"] for r in routes if r["plugin"] == "example"}

    assert example == {"/explain": ["POST"], "/batch-csv": ["POST"], "/model-card": ["GET"]}


def test_explain_gives_prediction_and_linear_contributions(client: FlaskClient) -> None:
    plain = client.post(
        "/invocations", json={"dataframe_records": [ROW]}, content_type="application/json"
    )

    response = client.post("/explain", json=ROW)

    assert response.status_code == 200, response.json
    body = response.json
    assert body["prediction"] == plain.json["predictions"][0]
    assert body["explained_class"] == body["prediction"]
    assert set(body["contributions"]) == set(ROW)
    assert all(math.isfinite(v) for v in body["contributions"].values())
    assert response.headers[ATTRS] == "explainer=linear"


def test_explained_class_has_the_largest_decision_value(client: FlaskClient) -> None:
    """intercept + sum(contributions) is the decision value; the predicted class wins it."""
    rows = [ROW, {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}]
    scores = {}
    for row in rows:
        body = client.post("/explain", json={"dataframe_records": [row]}).json
        scores[body["explained_class"]] = body["intercept"] + sum(body["contributions"].values())

    assert set(scores) == {0, 2}  # setosa and virginica
    assert scores[0] > 0
    assert scores[2] > 0


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([ROW], "one row as a JSON object"),
        ({}, "lacks features"),
        ({"dataframe_records": [ROW, ROW]}, "exactly one record"),
        ({"dataframe_records": [ROW], "extra": 1}, "exactly one record"),
        ({"sepal_length": 1.0}, "lacks features"),
        ({**ROW, "colour": 1.0}, "does not take: ['colour']"),
        ({**ROW, "sepal_width": "wide"}, "must be a number"),
        ({**ROW, "sepal_width": "3.5"}, "must be a number"),
        ({**ROW, "sepal_width": True}, "must be a number"),
        ({**ROW, "sepal_width": None}, "must be a number"),
        ({**ROW, "sepal_width": 1e101}, "within"),
    ],
    ids=[
        "list",
        "empty-object",
        "two-records",
        "records-and-more",
        "missing-features",
        "unknown-feature",
        "text-value",
        "numeric-string",
        "boolean",
        "null",
        "too-large",
    ],
)
def test_explain_refuses_bad_rows_with_400_json(
    client: FlaskClient, body: object, message: str
) -> None:
    response = client.post("/explain", json=body)

    assert response.status_code == 400
    assert response.json["error_code"] == "BAD_REQUEST"
    assert message in response.json["message"]


def test_explain_refuses_non_json_body(client: FlaskClient) -> None:
    response = client.post("/explain", data=b"not json", content_type="text/plain")

    assert response.status_code == 400
    assert response.mimetype == "application/json"


def test_explain_answers_422_for_a_model_without_coefficients(params_model: Path) -> None:
    client = create_app(str(params_model), settings=Settings(workers=1)).test_client()

    response = client.post("/explain", json={"x": 1.0})

    assert response.status_code == 422
    assert response.json["error_code"] == "NOT_IMPLEMENTED"
    assert "python_function" in response.json["message"]


def test_batch_csv_answers_a_csv_of_predictions(client: FlaskClient) -> None:
    response = client.post("/batch-csv", data=CSV_BODY, content_type="text/csv")

    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert rows == [{"prediction": "0"}, {"prediction": "2"}]
    assert response.headers[ATTRS] == "rows=2"


def test_batch_csv_matches_invocations(client: FlaskClient) -> None:
    expected = client.post("/invocations", data=CSV_BODY, content_type="text/csv").json

    response = client.post("/batch-csv", data=CSV_BODY, content_type="text/csv")

    got = [int(line) for line in response.get_data(as_text=True).splitlines()[1:]]
    assert got == expected["predictions"]


def test_batch_csv_include_input_through_custom_attributes(client: FlaskClient) -> None:
    response = client.post(
        "/batch-csv",
        data=CSV_BODY,
        content_type="text/csv",
        headers={ATTRS: "include_input=true"},
    )

    header = response.get_data(as_text=True).splitlines()[0]
    assert header == "sepal_length,sepal_width,petal_length,petal_width,prediction"


def test_batch_csv_reached_through_invocations_route(client: FlaskClient) -> None:
    response = client.post(
        "/invocations",
        data=CSV_BODY,
        content_type="text/csv",
        headers={ATTRS: "route=/batch-csv"},
    )

    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert response.get_data(as_text=True).startswith("prediction\n")


@pytest.mark.parametrize(
    ("data", "content_type", "status"),
    [
        (CSV_BODY, "application/json", 415),
        (b"", "text/csv", 400),
        (b"sepal_length,sepal_width,petal_length,petal_width\n", "text/csv", 400),
        (b"sepal_length\n\xff\n", "text/csv", 400),
        (b"a,b\n1,2\n", "text/csv", 400),
        (CSV_BODY.replace(b"0.2\n", b"\n"), "text/csv", 400),
        (CSV_BODY.replace(b"petal_width", b"petal_width,extra"), "text/csv", 400),
        (CSV_BODY.replace(b"0.2", b"1e999"), "text/csv", 400),
    ],
    ids=[
        "json-content-type",
        "empty",
        "header-only",
        "not-utf8",
        "wrong-columns",
        "empty-value",
        "extra-column",
        "overflowing-number",
    ],
)
def test_batch_csv_refuses_bad_bodies_with_json(
    client: FlaskClient, data: bytes, content_type: str, status: int
) -> None:
    response = client.post("/batch-csv", data=data, content_type=content_type)

    assert response.status_code == status
    assert response.mimetype == "application/json"
    assert response.json["message"]


def test_model_card_describes_the_model(client: FlaskClient) -> None:
    metadata = client.get("/metadata").json["model"]

    response = client.get("/model-card")

    assert response.status_code == 200
    assert response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assert "<h1>Model card</h1>" in page
    assert metadata["model_uuid"] in page
    for flavor in metadata["flavors"]:
        assert flavor in page
    assert "<td>petal_width</td><td>double</td>" in page
    assert "5.1" in page  # the saved input example's first row


def test_model_card_reached_by_get_route(client: FlaskClient) -> None:
    response = client.post(
        "/invocations", data=b"", headers={ATTRS: "route=/model-card,method=GET"}
    )

    assert response.status_code == 200
    assert "Model card" in response.get_data(as_text=True)


def test_plugin_can_be_disabled_by_name(iris_model: Path) -> None:
    app = create_app(str(iris_model), settings=Settings(workers=1, disabled_plugins=("example",)))

    assert app.test_client().get("/model-card").status_code == 404


def test_example_model_requires_only_what_it_uses(tmp_path: Path) -> None:
    """examples/train_iris.py names its requirements: MLflow's inference would add what the
    training process imported (pytest, rich), which a template image installs at every start."""
    import importlib.util

    script = Path(__file__).resolve().parents[3] / "examples" / "train_iris.py"
    spec = importlib.util.spec_from_file_location("turing_train_iris", script)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = module.train(tmp_path / "model")
    names = {
        line.split("=", 1)[0].split("<", 1)[0].split(">", 1)[0].strip().lower()
        for line in (model / "requirements.txt").read_text().splitlines()
        if line.strip()
    }
    assert names == {"mlflow", "scikit-learn", "pandas"}
