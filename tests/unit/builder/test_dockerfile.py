"""The Dockerfile text rules, on MLflow's real generated text; no Docker involved."""

from __future__ import annotations

import dataclasses
import json

import pytest

from turing_image_builder import dockerfile as df
from turing_scoring_server import contract


def _lines(text: str) -> list[str]:
    return [ins.text for ins in df.parse(text)]


def _index(lines: list[str], prefix: str) -> int:
    return next(i for i, line in enumerate(lines) if line.startswith(prefix))


def test_server_installed_after_mlflow_and_before_its_env_line(
    mlflow_template_text: str, spec: df.ImageSpec
) -> None:
    lines = _lines(df.customise(mlflow_template_text, spec))
    mlflow_at = _index(lines, "RUN pip install mlflow==")
    copy_at = _index(lines, f"COPY {df.WHEELS_DIR}/ {contract.WHEELHOUSE}/")
    install_at = _index(lines, "RUN pip wheel")
    env_at = _index(lines, "ENV MLFLOW_DISABLE_ENV_CREATION=False")
    assert mlflow_at < copy_at < install_at < env_at
    install = lines[install_at]
    assert "/opt/turing/wheels/plugin-1.0-py3-none-any.whl" in install
    assert "requests==2.32.3" in install
    assert f"mlflow-skinny=={spec.mlflow_version}" in install


def test_exec_form_entrypoint_from_the_contract(
    mlflow_template_text: str, spec: df.ImageSpec
) -> None:
    text = df.customise(mlflow_template_text, spec)
    entry = [line for line in _lines(text) if line.startswith("ENTRYPOINT")]
    assert entry == ["ENTRYPOINT " + json.dumps(list(contract.ENTRYPOINT))]
    assert "C._init" not in text


def test_env_label_and_nginx_install(mlflow_template_text: str, spec: df.ImageSpec) -> None:
    text = df.customise(mlflow_template_text, spec)
    assert f'{contract.ENV_ENV_MANAGER}="local"' in text
    assert f'{contract.ENV_GUNICORN_CMD_ARGS}=""' in text
    assert f'"{contract.SAGEMAKER_BIND_TO_PORT_LABEL}"="true"' in text
    assert '"org.opencontainers.image.version"="0.1.0"' in text
    assert "command -v nginx" in text
    assert "nginx-light" in text


def test_without_build_ca_the_build_is_single_stage(
    mlflow_template_text: str, spec: df.ImageSpec
) -> None:
    text = df.customise(mlflow_template_text, spec)
    assert [line for line in _lines(text) if line.startswith("FROM")] == [
        "FROM turing-base:bookworm"
    ]
    assert df.BUILD_CA_NAME not in text


def test_build_ca_lives_only_in_the_thrown_away_stage(
    mlflow_template_text: str, spec: df.ImageSpec
) -> None:
    text = df.customise(mlflow_template_text, dataclasses.replace(spec, build_ca=True))
    lines = [line for line in _lines(text) if not line.startswith("#")]
    froms = [i for i, line in enumerate(lines) if line.startswith("FROM")]
    assert [lines[i] for i in froms] == [
        f"FROM turing-base:bookworm AS {df.BUILD_STAGE}",
        "FROM turing-base:bookworm",
    ]
    build, final = lines[froms[0] : froms[1]], lines[froms[1] :]
    assert any(line.startswith(f"COPY {df.BUILD_CA_NAME}") for line in build)
    assert build[-1] == f"RUN rm -f {df.BUILD_CA_PATH} {df.APT_CA_CONF}"
    assert any(df.APT_CA_CONF in line and "CaInfo" in line for line in build[:5])
    assert all(df.BUILD_CA_NAME not in line and df.BUILD_CA_PATH not in line for line in final)
    assert final[1] == f"COPY --from={df.BUILD_STAGE} / /"
    assert all(not line.startswith(("RUN", "COPY")) for line in final[2:])
    # the final stage re-declares the whole configuration
    assert final[-1].startswith("ENTRYPOINT")
    assert any(line.startswith("LABEL") for line in final)
    assert any("MLFLOW_DISABLE_ENV_CREATION" in line for line in final)
    assert any(line.startswith("WORKDIR /opt/mlflow") for line in final)


def test_runtime_ca_is_copied_and_trusted(mlflow_template_text: str, spec: df.ImageSpec) -> None:
    text = df.customise(mlflow_template_text, dataclasses.replace(spec, runtime_ca=True))
    assert f"COPY {df.RUNTIME_CA_NAME} {df.RUNTIME_CA_PATH}" in text
    assert f"PIP_CERT={df.RUNTIME_CA_PATH}" in text


def test_index_urls_apply_to_every_pip_call(mlflow_template_text: str, spec: df.ImageSpec) -> None:
    spec = dataclasses.replace(
        spec,
        index_url="https://pypi.example/simple",
        extra_index_urls=("https://a/simple", "https://b/simple"),
    )
    lines = _lines(df.customise(mlflow_template_text, spec))
    env_at = _index(lines, "ENV PIP_INDEX_URL=")
    # right after FROM and the pip-cache and telemetry settings, before any pip call
    assert env_at == _index(lines, "FROM") + 3 < _index(lines, "RUN pip install mlflow")
    assert '"https://a/simple https://b/simple"' in lines[env_at]


def test_other_mlflow_version_rewrites_mlflows_own_pin(
    mlflow_template_text: str, spec: df.ImageSpec
) -> None:
    spec = dataclasses.replace(spec, mlflow_version="2.20.4", legacy=True)
    lines = _lines(df.customise(mlflow_template_text, spec))
    assert lines[_index(lines, "RUN pip install mlflow")] == (
        "RUN pip install mlflow==2.20.4 'pandas<3' 'numpy<3'"
    )
    assert "mlflow-skinny==2.20.4" in lines[_index(lines, "RUN pip wheel")]


def test_legacy_keeps_mlflows_entrypoint_and_wires_gunicorn(
    mlflow_template_text: str, spec: df.ImageSpec
) -> None:
    spec = dataclasses.replace(spec, mlflow_version="2.20.4", legacy=True)
    text = df.customise(mlflow_template_text, spec)
    lines = _lines(text)
    assert "C._init(sys.argv[1], 'local')" in lines[_index(lines, "ENTRYPOINT")]
    env = lines[_index(lines, f"ENV {contract.ENV_ENV_MANAGER}")]
    args = json.loads(env.split(f"{contract.ENV_GUNICORN_CMD_ARGS}=", 1)[1])
    assert args.split()[-2:] == ["--", contract.WSGI_APP]
    render = lines[_index(lines, "RUN turing-scoring-server render-nginx --legacy")]
    assert "container/scoring_server/nginx.conf" in render


def test_users_gunicorn_args_come_after_ours(mlflow_template_text: str, spec: df.ImageSpec) -> None:
    """Ours is empty outside legacy images; ``--env GUNICORN_CMD_ARGS=...`` (set later) wins."""
    text = df.customise(
        mlflow_template_text,
        dataclasses.replace(spec, env={contract.ENV_GUNICORN_CMD_ARGS: "--timeout 90"}),
    )
    lines = _lines(text)
    ours = _index(lines, f"ENV {contract.ENV_ENV_MANAGER}")
    assert f'{contract.ENV_GUNICORN_CMD_ARGS}=""' in lines[ours]
    users = _index(lines, f'ENV {contract.ENV_GUNICORN_CMD_ARGS}="--timeout 90"')
    assert ours < users < _index(lines, "ENTRYPOINT")


def test_the_spec_decides_baked_not_mlflows_text(
    mlflow_template_text: str, spec: df.ImageSpec
) -> None:
    """Whether the model is checked at build time follows ``ImageSpec.baked`` alone."""
    template = df.customise(mlflow_template_text, spec)
    assert any(ln.startswith("RUN turing-scoring-server check-plugins") for ln in _lines(template))
    baked = df.customise(mlflow_template_text, dataclasses.replace(spec, baked=True))
    assert any(
        ln.startswith("RUN turing-scoring-server check-model --plugins") for ln in _lines(baked)
    )
    assert "check-plugins" not in baked


def test_missing_anchor_is_a_clear_error(spec: df.ImageSpec) -> None:
    text = 'FROM python:3.11\nRUN pip install mlflow==3.0.0\nENTRYPOINT ["x"]\n'
    with pytest.raises(df.DockerfileError, match="MLFLOW_DISABLE_ENV_CREATION"):
        df.customise(text, spec)


def test_mlflow_from_source_cannot_be_repinned(spec: df.ImageSpec) -> None:
    ins = df.Instruction("RUN pip install /opt/mlflow")
    with pytest.raises(df.DockerfileError, match="--mlflow-version"):
        df.pin_mlflow(ins, "2.20.4", "3.1.0")
    assert df.pin_mlflow(ins, "3.1.0", "3.1.0") is ins


def test_parse_joins_continuations_and_keeps_comments() -> None:
    text = "# c\nFROM a\n\nRUN x \\\n  && y\nENV A=1\n"
    parsed = df.parse(text)
    assert [p.keyword for p in parsed] == ["#", "FROM", "RUN", "ENV"]
    assert parsed[2].text == "RUN x \\\n  && y"
    assert df.config_of(text) == {"ENV": ["A=1"]}


def test_flatten_refuses_multi_stage() -> None:
    with pytest.raises(df.DockerfileError, match="single-stage"):
        df.flatten_with_build_ca("FROM a AS x\nRUN y\nFROM b\nCOPY --from=x / /\n")


def test_legacy_gunicorn_args_make_gunicorn_serve_our_app() -> None:
    """Parse MLflow 2.20's command line with gunicorn's own parser: our app must be the app."""
    import shlex

    from gunicorn.config import Config

    args = df.legacy_gunicorn_args("--timeout 90")
    argv = shlex.split(
        f"--timeout=60 -b 127.0.0.1:8000 -w 2 {args} -- mlflow.pyfunc.scoring_server.wsgi:app"
    )
    parsed = Config(usage="%(prog)s").parser().parse_args(argv)
    assert parsed.args[0] == contract.WSGI_APP
    assert parsed.timeout == 90


def test_user_steps_in_their_documented_places(
    mlflow_template_text: str, spec: df.ImageSpec
) -> None:
    custom = dataclasses.replace(
        spec,
        apt_packages=("libgomp1", "curl"),
        user_copies=(("turing-user-files/1/data.json", "/opt/ml/code/data.json"),),
        user_snippets=(df.parse("RUN echo one > /tmp/one\nENV MY_FLAG=1\n"),),
        nginx_files=True,
        env={"MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT": "120"},
    )
    lines = _lines(df.customise(mlflow_template_text, custom))
    apt_at = _index(lines, "RUN apt-get update \\\n && DEBIAN_FRONTEND")
    mlflow_at = _index(lines, "RUN pip install")
    copy_at = _index(lines, 'COPY ["turing-user-files/1/data.json", "/opt/ml/code/data.json"]')
    snippet_at = _index(lines, "RUN echo one > /tmp/one")
    nginx_at = _index(lines, "RUN command -v nginx")
    server_at = _index(lines, f"COPY {df.WHEELS_DIR}/")
    timeout_at = _index(lines, 'ENV MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT="120"')
    nginx_files_at = _index(lines, f"COPY {df.NGINX_DIR}/ {contract.NGINX_SNIPPETS_DIR}/")
    check_at = _index(lines, "RUN turing-scoring-server render-nginx --check")
    entry_at = _index(lines, "ENTRYPOINT")
    assert _index(lines, "FROM") < apt_at < mlflow_at < copy_at < snippet_at < nginx_at
    assert nginx_at < server_at < timeout_at < nginx_files_at < check_at < entry_at
    assert "'libgomp1' 'curl'" in lines[apt_at] or "libgomp1 curl" in lines[apt_at]
    assert "rm -rf /var/lib/apt/lists/*" in lines[apt_at]
    assert lines[snippet_at - 1] == "# turing-image-builder: your Dockerfile snippet 1 starts"
    assert lines[snippet_at + 2] == "# turing-image-builder: your Dockerfile snippet 1 ends"


def test_every_image_checks_its_nginx_configuration(
    mlflow_template_text: str, spec: df.ImageSpec
) -> None:
    lines = _lines(df.customise(mlflow_template_text, spec))
    assert "RUN turing-scoring-server render-nginx --check" in lines
    assert not any(line.startswith(f"COPY {df.NGINX_DIR}/") for line in lines)


def test_nginx_template_is_named_by_its_env(mlflow_template_text: str, spec: df.ImageSpec) -> None:
    custom = dataclasses.replace(spec, nginx_files=True, nginx_template=True)
    text = df.customise(mlflow_template_text, custom)
    template = f"{contract.NGINX_SNIPPETS_DIR}/{df.NGINX_TEMPLATE_NAME}"
    assert f'ENV {contract.ENV_NGINX_TEMPLATE}="{template}"' in text


@pytest.mark.parametrize("keyword", ["FROM python:3.11", 'ENTRYPOINT ["x"]', 'CMD ["y"]'])
def test_snippets_may_not_change_stage_or_entrypoint(keyword: str) -> None:
    with pytest.raises(df.DockerfileError, match="not allowed in a snippet"):
        df.check_snippet(f"RUN true\n{keyword}\n", "steps.Dockerfile")


def test_empty_snippet_is_refused() -> None:
    with pytest.raises(df.DockerfileError, match="is empty"):
        df.check_snippet("\n\n", "steps.Dockerfile")


def test_user_steps_survive_the_build_ca_flatten(
    mlflow_template_text: str, spec: df.ImageSpec
) -> None:
    custom = dataclasses.replace(
        spec, build_ca=True, apt_packages=("libgomp1",), user_snippets=(df.parse("RUN touch /x\n"),)
    )
    lines = _lines(df.customise(mlflow_template_text, custom))
    froms = [i for i, line in enumerate(lines) if line.startswith("FROM")]
    assert len(froms) == 2
    build, final = lines[froms[0] : froms[1]], lines[froms[1] :]
    assert any("apt-get install" in line for line in build)
    assert "RUN touch /x" in build
    assert [line for line in final if line.startswith("RUN")] == []
