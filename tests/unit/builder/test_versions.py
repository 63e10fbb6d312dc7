"""Server version gate, MLflow version and legacy decisions: pure, and the messages users see."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from turing_image_builder import context, versions
from turing_image_builder.errors import OptionsError, VersionError
from turing_image_builder.options import BuildOptions


def test_default_server_requirement_pins_the_installed_server() -> None:
    assert versions.server_requirement(None, "0.1.0") == "turing-scoring-server==0.1.0"


def test_bare_version_means_exact() -> None:
    assert versions.server_requirement("0.1.3", "0.1.0") == "turing-scoring-server==0.1.3"


def test_specifier_is_intersected_with_the_supported_range() -> None:
    requirement = versions.server_requirement(">=0.1.2", "0.1.0")
    spec = requirement.removeprefix("turing-scoring-server")
    assert set(spec.split(",")) == {">=0.1.2", ">=0.1", "<0.2"}


@pytest.mark.parametrize("bad", ["0.2.0", "1.0", "==0.3.1"])
def test_unsupported_server_versions_are_refused(bad: str) -> None:
    with pytest.raises(VersionError, match=r"not supported by turing-image-builder \(supported: "):
        versions.server_requirement(bad, "0.1.0")


def test_unsupported_installed_server_is_refused() -> None:
    with pytest.raises(VersionError, match=r"installed turing-scoring-server: .* 0\.9\.0"):
        versions.server_requirement(None, "0.9.0")


def test_garbage_specifier_is_refused() -> None:
    with pytest.raises(VersionError, match="neither a version nor a specifier"):
        versions.server_requirement("~~0.1", "0.1.0")


def test_contract_major_is_checked() -> None:
    versions.check_contract("1.4")
    with pytest.raises(VersionError, match=r"contract 2\.0 is not supported"):
        versions.check_contract("2.0")


def test_wheel_file_names() -> None:
    assert versions.wheel_version("turing_scoring_server-0.1.0-py3-none-any.whl") == (
        "turing-scoring-server",
        "0.1.0",
    )
    with pytest.raises(VersionError, match="not a wheel file name"):
        versions.wheel_version("turing-scoring-server.tar.gz")


@pytest.mark.parametrize(
    ("requested", "legacy", "expected"),
    [
        (None, None, versions.MlflowChoice("3.17.2", False)),
        ("2.20.4", None, versions.MlflowChoice("2.20.4", True)),
        ("2.20.4", False, versions.MlflowChoice("2.20.4", False)),
        ("2.21.0", None, versions.MlflowChoice("2.21.0", False)),
        ("2.20.0", True, versions.MlflowChoice("2.20.0", True)),
    ],
)
def test_legacy_is_decided_by_the_images_mlflow(
    requested: str | None, legacy: bool | None, expected: versions.MlflowChoice
) -> None:
    assert versions.decide_mlflow(requested, "3.17.2", legacy) == expected


def test_forcing_legacy_on_new_mlflow_is_refused() -> None:
    with pytest.raises(VersionError, match="no longer runs gunicorn"):
        versions.decide_mlflow("2.21.0", "3.17.2", True)


def test_mlflow_older_than_the_server_supports_is_refused() -> None:
    with pytest.raises(VersionError, match=r"needs MLflow >= 2\.20"):
        versions.decide_mlflow("2.19.0", "3.17.2", None)
    with pytest.raises(VersionError, match="is not a version"):
        versions.decide_mlflow("latest", "3.17.2", None)


# --- MLflow without its skinny twin (3.18.0 was published as `mlflow` only) -------------------


@pytest.mark.parametrize(
    ("version", "asks"),
    [("2.20.4", False), ("3.17.2", False), ("3.12.0rc0", True), ("3.18.0", True), ("4.0", True)],
)
def test_only_versions_newer_than_the_known_ones_ask_the_index(version: str, asks: bool) -> None:
    assert versions.needs_index(version) is asks


def test_a_known_version_needs_no_answer_from_the_index() -> None:
    assert versions.decide_skinny("3.17.2", None, "the index x") == versions.SkinnyChoice()


def test_the_twin_on_the_index_is_used_as_is() -> None:
    listed = ["3.17.2", "3.18.0", "3.18.1rc0"]
    assert versions.decide_skinny("3.18.0", listed, "the index x") == versions.SkinnyChoice()


def test_a_missing_twin_takes_the_newest_released_skinnys_requirements() -> None:
    listed = ["3.16.0", "3.17.2", "3.17.10", "3.18.0rc0", "3.19.0", "not-a-version"]
    choice = versions.decide_skinny("3.18.0", listed, "the index https://pypi.org/simple/")
    assert choice.like == "3.17.10", "newest older release; pre-releases and newer ones skipped"
    assert choice.notice == (
        "the index https://pypi.org/simple/ has no mlflow-skinny==3.18.0: the image gets "
        "mlflow==3.18.0's own code as mlflow-skinny==3.18.0, with mlflow-skinny==3.17.10's "
        "requirements"
    )


def test_an_index_that_cannot_be_asked_gets_the_safe_default() -> None:
    choice = versions.decide_skinny("3.18.0", None, "the index x (connection refused)")
    assert choice.like == str(versions.SKINNY_KNOWN_THROUGH)
    assert choice.notice is not None
    assert choice.notice.startswith("could not ask the index x (connection refused) whether")
    assert "\n" not in choice.notice


def test_no_skinny_at_all_is_one_clear_error() -> None:
    with pytest.raises(VersionError, match=r"has no mlflow-skinny==3\.18\.0 and no older"):
        versions.decide_skinny("3.18.0", ["3.19.0"], "the index x")


@pytest.mark.parametrize(("version", "untested"), [("3.18.0", False), ("3.17.2", False),
                                                   ("3.18.1", True), ("4.0.0", True)])  # fmt: skip
def test_newer_than_the_newest_tested_builds_with_a_notice(version: str, untested: bool) -> None:
    notice = versions.untested_notice(version)
    assert (notice is not None) is untested
    if notice is not None:
        assert notice.startswith(f"MLflow {version} is newer than the newest this builder was ")
        assert f"({versions.NEWEST_TESTED_MLFLOW})" in notice


# --- asking the index: the simple repository API, on disk and over HTTP on 127.0.0.1 ----------


def _file_index(root: Path) -> str:
    (root / "mlflow-skinny").mkdir(parents=True)
    for name in ("mlflow_skinny-3.17.2-py3-none-any.whl", "mlflow_skinny-3.17.2.tar.gz",
                 "mlflow_skinny-3.16.0-py3-none-any.whl", "README.txt"):  # fmt: skip
        (root / "mlflow-skinny" / name).write_bytes(b"")
    (root / "numpy").mkdir()
    (root / "numpy" / "index.html").write_text(
        '<a href="../../files/numpy-2.3.5-cp311-cp311-manylinux_2_28_x86_64.whl#sha256=00">x</a>'
    )
    return root.as_uri()


def test_a_directory_index_lists_its_files_versions(tmp_path: Path) -> None:
    url = _file_index(tmp_path / "simple")
    assert context.index_versions("mlflow-skinny", [url], None) == (
        ["3.16.0", "3.17.2"],
        f"the index {url}",
    )
    assert context.index_versions("numpy", [url], None)[0] == ["2.3.5"]
    assert context.index_versions("mlflow", [url], None)[0] == [], "no such project: an answer"


def test_versions_from_every_index_that_answers(tmp_path: Path) -> None:
    url = _file_index(tmp_path / "simple")
    found, where = context.index_versions(
        "mlflow-skinny", [url, (tmp_path / "nowhere" / "simple").as_uri()], None
    )
    assert found == ["3.16.0", "3.17.2"]
    assert where.startswith(f"the index {url}, file://")


def _serve(pages: dict[str, tuple[str, bytes]]) -> tuple[str, Callable[[], None]]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path not in pages:
                self.send_error(404)
                return
            kind, body = pages[self.path]
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()

    def stop() -> None:
        server.shutdown()
        server.server_close()

    return f"http://127.0.0.1:{server.server_address[1]}/simple/", stop


def test_an_http_index_answers_in_json_or_html() -> None:
    pep691 = json.dumps(
        {"versions": ["3.17.1"], "files": [{"filename": "mlflow_skinny-3.17.2.tar.gz"}]}
    ).encode()
    html = b'<a href="/f/mlflow-3.18.0-py3-none-any.whl#sha256=1" data-requires-python="">m</a>'
    url, stop = _serve({
        "/simple/mlflow-skinny/": ("application/vnd.pypi.simple.v1+json", pep691),
        "/simple/mlflow/": ("text/html", html),
    })  # fmt: skip
    try:
        assert context.index_versions("mlflow_skinny", [url], None)[0] == ["3.17.1", "3.17.2"]
        assert context.index_versions("mlflow", [url], None)[0] == ["3.18.0"]
        assert context.index_versions("other", [url], None)[0] == [], "404: no such project"
    finally:
        stop()


def test_an_index_that_does_not_answer_is_named_with_the_reason() -> None:
    url, stop = _serve({})
    stop()  # nothing listens there any more
    found, where = context.index_versions("mlflow-skinny", [url], None, timeout=5)
    assert found is None
    assert where.startswith(f"the index {url} (")
    assert "refused" in where.lower()


def test_the_plan_carries_the_decision_to_the_render(tmp_path: Path) -> None:
    url = _file_index(tmp_path / "simple")
    the_plan = context.plan(BuildOptions(mlflow_version="3.18.0", index_url=url))
    assert the_plan.skinny_like == "3.17.2"
    assert the_plan.notices == (
        f"the index {url} has no mlflow-skinny==3.18.0: the image gets mlflow==3.18.0's own code "
        "as mlflow-skinny==3.18.0, with mlflow-skinny==3.17.2's requirements",
    )
    known = context.plan(BuildOptions(mlflow_version="3.17.2", index_url=url + "/gone"))
    assert (known.skinny_like, known.notices) == (None, ()), "a known version asks nothing"


def test_start_up_environments_cannot_install_an_mlflow_without_its_twin(tmp_path: Path) -> None:
    url = _file_index(tmp_path / "simple")
    with pytest.raises(OptionsError, match="--env-manager virtualenv installs the model's"):
        context.plan(BuildOptions(mlflow_version="3.18.0", index_url=url, env_manager="virtualenv"))
