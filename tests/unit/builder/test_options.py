"""Config file loading and precedence: flags given on the command line > config > defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from turing_image_builder import options
from turing_image_builder.errors import OptionsError

PYPROJECT = """
[project]
name = "someone"

[tool.turing-image-build]
tag = "from-config"
base-image = "python:3.11-slim"
extra-pip = ["my-plugin==1.0"]
env-manager = "virtualenv"
runtime-ca-bundle = "certs/ca.pem"
install-java = false
"""


def _flags(**given: object) -> dict[str, object]:
    """Every CLI value as click passes it (defaults included), with ``given`` overriding."""
    flags: dict[str, object] = {
        "tag": options.DEFAULT_TAG, "model_uri": None, "base_image": None, "env_manager": "local",
        "install_java": None, "extra_pip": (), "network": None, "platform": None, "index_url": None,
        "extra_index_url": (), "build_ca_bundle": None, "runtime_ca_bundle": None,
        "dockerfile_only": None, "push": False, "ecr": False, "region": None, "repository": None,
        "server_version": None, "server_wheel": None, "server_source": None,
        "mlflow_version": None, "legacy": None, "verbose": False,
    }  # fmt: skip
    flags.update(given)
    return flags


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "certs").mkdir()
    (tmp_path / "certs" / "ca.pem").write_text("pem")
    (tmp_path / "pyproject.toml").write_text(PYPROJECT)
    return tmp_path


def test_pyproject_in_the_working_directory_is_found(project: Path) -> None:
    assert options.find_config(None, project) == project / "pyproject.toml"
    assert options.find_config(None, project / "certs") is None


def test_config_fills_what_flags_left_at_default(project: Path) -> None:
    config = options.load_config(project / "pyproject.toml")
    opts = options.resolve(_flags(), [], config)
    assert opts.tag == "from-config"
    assert opts.base_image == "python:3.11-slim"
    assert opts.extra_pip == ("my-plugin==1.0",)
    assert opts.env_manager == "virtualenv"
    assert opts.install_java is False
    # relative to the config file, not to the working directory
    assert opts.runtime_ca_bundle == (project / "certs" / "ca.pem").resolve()


def test_flags_given_on_the_command_line_win(project: Path) -> None:
    config = options.load_config(project / "pyproject.toml")
    flags = _flags(tag="from-cli", extra_pip=("other==2",), env_manager="local")
    opts = options.resolve(flags, ["tag", "extra_pip", "env_manager"], config)
    assert (opts.tag, opts.extra_pip, opts.env_manager) == ("from-cli", ("other==2",), "local")
    assert opts.base_image == "python:3.11-slim"


def test_defaults_without_config() -> None:
    opts = options.resolve(_flags(), [], {})
    assert opts.tag == "c7-mlflow-pyfunc-sagemaker"
    assert opts.baked is False
    assert opts.legacy is None
    assert opts.extra_pip == ()


def test_dedicated_config_file_may_hold_keys_at_top_level(tmp_path: Path) -> None:
    path = tmp_path / "build.toml"
    path.write_text('tag = "x"\nextra-index-url = "https://idx/simple"\n')
    assert options.load_config(path) == {"tag": "x", "extra_index_url": ("https://idx/simple",)}


def test_unknown_keys_are_refused_with_the_known_ones(tmp_path: Path) -> None:
    path = tmp_path / "pyproject.toml"
    path.write_text('[tool.turing-image-build]\nbase_image = "x"\n')
    with pytest.raises(OptionsError, match=r"unknown key\(s\) base_image .*known: tag, model-uri"):
        options.load_config(path)


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("push = 'yes'", "push must be true or false"),
        ("extra-pip = [1]", "extra-pip must be a string or a list of strings"),
        ("tag = 3", "tag must be a string"),
        ("tag = ", "cannot read config"),
    ],
)
def test_bad_config_values(tmp_path: Path, toml: str, message: str) -> None:
    path = tmp_path / "pyproject.toml"
    path.write_text(f"[tool.turing-image-build]\n{toml}\n")
    with pytest.raises(OptionsError, match=message):
        options.load_config(path)


def test_missing_explicit_config(tmp_path: Path) -> None:
    with pytest.raises(OptionsError, match="no such file"):
        options.find_config(tmp_path / "nope.toml", tmp_path)


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"server_version": "0.1.0", "server_wheel": Path("w.whl")}, "exclude each other"),
        ({"push": True, "ecr": True}, "exclude each other"),
        ({"region": "eu-west-1"}, "only apply with --ecr"),
        ({"dockerfile_only": Path("d"), "push": True}, "cannot --push"),
        ({"build_ca_bundle": Path("/nonexistent/ca.pem")}, "no such file"),
        ({"server_source": Path("/nonexistent")}, "no such dir"),
        ({"extra_pip": ("/nonexistent/p-1-py3-none-any.whl",)}, "no such wheel"),
        ({"tag": "a b"}, "not an image reference"),
        ({"env_manager": "pipenv"}, "choose one of local, virtualenv, conda"),
        ({"apt_packages": ("libgomp1; rm -rf /",)}, "not a Debian package name"),
        ({"copy": ("README.md",)}, "expected SRC:DEST"),
        ({"copy": ("README.md:relative/dest",)}, "absolute DEST"),
        ({"copy": ("/nonexistent/x:/opt/x",)}, "no such file or directory"),
        ({"dockerfile_snippet": (Path("/nonexistent/snippet"),)}, "no such file"),
        ({"nginx_server_snippet": (Path("/nonexistent/a.conf"),)}, "no such file"),
        ({"nginx_template": Path("/nonexistent/nginx.conf")}, "no such file"),
        ({"timeout": 0}, "positive number of seconds"),
        ({"index_url": "https://me:s3cret@pypi.internal/simple"}, "holds a password"),
        ({"extra_index_url": ("https://me:tok@mirror/simple",)}, "holds a password"),
        ({"max_body_size": "lots"}, "expected a size"),
    ],
)
def test_contradictions_are_refused(given: dict[str, object], message: str) -> None:
    with pytest.raises(OptionsError, match=message):
        options.resolve(_flags(**given), list(given), {})


def test_apt_packages_split_and_keep_pins() -> None:
    given = ["libgomp1 curl", "ca-certificates,libpq5=15.8-0+deb12u1"]
    assert options.apt_package_names(given) == [
        "libgomp1", "curl", "ca-certificates", "libpq5=15.8-0+deb12u1",
    ]  # fmt: skip


def test_customisation_keys_in_config_resolve_relative_to_the_file(tmp_path: Path) -> None:
    (tmp_path / "nginx").mkdir()
    (tmp_path / "nginx" / "headers.conf").write_text("add_header X-A 1 always;\n")
    (tmp_path / "steps.Dockerfile").write_text("RUN true\n")
    (tmp_path / "data.json").write_text("{}")
    config = tmp_path / "build.toml"
    config.write_text(
        'timeout = 120\napt-packages = ["libgomp1"]\ndockerfile-snippet = "steps.Dockerfile"\n'
        'copy = ["data.json:/opt/ml/code/data.json"]\n'
        'nginx-server-snippet = ["nginx/headers.conf"]\n'
    )
    resolved = options.resolve(_flags(), [], options.load_config(config))
    assert resolved.timeout == 120
    assert resolved.apt_packages == ("libgomp1",)
    assert resolved.dockerfile_snippet == (tmp_path / "steps.Dockerfile",)
    assert resolved.copy == (options.CopyItem(tmp_path / "data.json", "/opt/ml/code/data.json"),)
    assert resolved.nginx_server_snippet == (tmp_path / "nginx" / "headers.conf",)


def test_timeout_in_config_must_be_an_integer(tmp_path: Path) -> None:
    config = tmp_path / "build.toml"
    config.write_text('timeout = "long"\n')
    with pytest.raises(OptionsError, match="timeout must be an integer"):
        options.load_config(config)
