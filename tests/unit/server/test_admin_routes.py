"""TURING_ADMIN_ROUTES=off removes the admin routes from the app itself (no nginx needed)."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask

from turing_scoring_server import Settings, create_app
from turing_scoring_server import contract as c

IRIS_COLUMNS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


@pytest.mark.parametrize("mode", ["public", "off"])
def test_admin_routes_follow_the_setting(iris_model: Path, mode: str) -> None:
    settings = Settings(admin_routes=mode, docs=True)
    app: Flask = create_app(str(iris_model), settings=settings, entry_points=False)
    client = app.test_client()
    for route in sorted(c.ADMIN_ROUTES):
        answer = client.get(route)
        if mode == "public":
            assert answer.status_code == 200, route
        else:
            assert answer.status_code == 404, route
            assert answer.json is not None
            assert answer.json == {"detail": "Not Found"}  # the router's, as for no route
    assert client.get("/ping").status_code == 200
    row = {"dataframe_split": {"columns": IRIS_COLUMNS, "data": [[5.1, 3.5, 1.4, 0.2]]}}
    assert client.post("/invocations", json=row).status_code == 200
