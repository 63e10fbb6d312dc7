"""The contract from the server's side: each promise is where it says, in the built wheel too."""

from __future__ import annotations

import importlib
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from turing_image_builder.wheels import build_wheel
from turing_scoring_server import contract as c
from turing_scoring_server.__about__ import __version__
from turing_scoring_server.supervisor.nginx import NginxConfig, render

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def server_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    wheel = build_wheel(ROOT / "packages" / "scoring-server", out)
    assert wheel.name.startswith("turing_scoring_server-")
    return wheel


def test_wheel_ships_package_data_and_the_builtin_plugin(server_wheel: Path) -> None:
    assert server_wheel.name.startswith(f"turing_scoring_server-{__version__}-")
    with zipfile.ZipFile(server_wheel) as wheel:
        names = set(wheel.namelist())
        assert f"turing_scoring_server/{c.NGINX_CONF_RESOURCE}" in names
        assert "turing_scoring_server/wsgi.py" in names
        assert "turing_scoring_server/py.typed" in names
        assert "turing_scoring_server/contract.py" in names
        (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        text = wheel.read(entry_points).decode()
    assert f"[{c.ENTRY_POINT_GROUP}]" in text
    assert "turing = turing_scoring_server.example_endpoint:blueprint" in text


def test_contract_module_is_stdlib_only() -> None:
    source = Path(c.__file__).read_text()
    imports = re.findall(r"^(?:from|import) ([\w.]+)", source, flags=re.M)
    assert set(imports) <= {"__future__", "re", "typing"}, imports


def test_wsgi_path_names_a_flask_app(monkeypatch: pytest.MonkeyPatch, iris_model: Path) -> None:
    module_name, attr = c.WSGI_APP.split(":")
    monkeypatch.setenv(c.ENV_MODEL_PATH, str(iris_model))
    sys.modules.pop(module_name, None)
    module = importlib.import_module(module_name)
    app = getattr(module, attr)
    assert app.test_client().get("/ping").status_code == 200
    sys.modules.pop(module_name, None)


def test_entrypoint_is_a_runnable_module() -> None:
    assert c.ENTRYPOINT[:2] == ("python", "-m")
    proc = subprocess.run(
        [sys.executable, "-m", c.ENTRYPOINT[2], "no-such-command"], capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert "unknown command" in proc.stderr


def test_every_env_name_is_documented_and_every_documented_name_exists() -> None:
    names = {v for k, v in vars(c).items() if k.startswith("ENV_")}
    table = (ROOT / "docs" / "reference" / "settings.md").read_text()
    documented = set(re.findall(r"^\| `([A-Z_]+)` \|", table, flags=re.M))
    assert documented == names


def test_contract_version_compatibility_rule() -> None:
    major = c.CONTRACT_VERSION.split(".")[0]
    assert c.is_compatible(f"{major}.99")
    assert not c.is_compatible(f"{int(major) + 1}.0")


@pytest.mark.nginx
@pytest.mark.parametrize("legacy", [True, False], ids=["legacy", "entrypoint"])
def test_rendered_nginx_conf_passes_nginx_t(tmp_path: Path, legacy: bool) -> None:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        pytest.skip("nginx is not installed")
    if legacy:
        config = NginxConfig.legacy()
    else:
        config = NginxConfig(
            port=18080,
            upstream=f"unix:{tmp_path}/app.sock",
            ping_upstream=f"unix:{tmp_path}/health.sock",
            run_dir=str(tmp_path),
        )
    conf = tmp_path / "nginx.conf"
    conf.write_text(render(config))
    proc = subprocess.run(
        [nginx, "-t", "-e", "stderr", "-c", str(conf)], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr


def test_contract_and_entrypoint_import_neither_flask_nor_mlflow() -> None:
    """The builder and the container's entrypoint import the package without paying for MLflow."""
    code = (
        "import sys, turing_scoring_server.contract, turing_scoring_server.container, "
        "turing_scoring_server.gunicorn_config; "
        "print(sorted(m for m in ('flask', 'mlflow') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_public_names_are_the_documented_functions() -> None:
    code = (
        "import turing_scoring_server.app.factory; "
        "from turing_scoring_server import custom_attributes, create_app, current_model, schema; "
        "print(all(callable(f) and not hasattr(f, '__path__') for f in "
        "(custom_attributes, create_app, current_model, schema)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"
