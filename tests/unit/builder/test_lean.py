"""The lean default: mlflow-skinny behind a metadata-only ``mlflow``, no gevent, no test suites,
no installers in baked images, and flattened images that do not store their base twice."""

from __future__ import annotations

import dataclasses
import io
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.fixtures.models import save_iris_model
from turing_image_builder import dockerfile as df
from turing_image_builder import mlflow_shim
from turing_scoring_server import contract


def _lines(text: str) -> list[str]:
    return [ins.text for ins in df.parse(text)]


@pytest.fixture
def lean(spec: df.ImageSpec) -> df.ImageSpec:
    return dataclasses.replace(spec, full_mlflow=False)


@pytest.fixture
def baked(lean: df.ImageSpec) -> df.ImageSpec:
    """The lean spec of a baked image: the builder's own decision, which MLflow's text matches."""
    return dataclasses.replace(lean, baked=True)


@pytest.fixture(scope="module")
def baked_text(tmp_path_factory: pytest.TempPathFactory) -> str:
    """What MLflow writes for a baked image (``mlflow models build-docker``) of the iris model."""
    from mlflow.pyfunc.backend import PyFuncBackend

    model = save_iris_model(tmp_path_factory.mktemp("model") / "iris")
    out = tmp_path_factory.mktemp("baked")
    PyFuncBackend(config={}, env_manager="local").generate_dockerfile(
        model_uri=str(model), output_dir=str(out), base_image="turing-base:bookworm"
    )
    return (out / "Dockerfile").read_text()


def test_lean_installs_the_stand_in_not_mlflow(
    mlflow_template_text: str, lean: df.ImageSpec
) -> None:
    lines = _lines(df.customise(mlflow_template_text, lean))
    assert not any(line.startswith("RUN pip install mlflow==") for line in lines)
    copy_at = lines.index(f"COPY {df.SHIM_DIR}/ {df.SHIM_PATH}/")
    wheel = f"{df.SHIM_PATH}/{mlflow_shim.filename(lean.mlflow_version)}"
    assert lines[copy_at + 1].startswith(f"RUN pip install {wheel}")
    assert df.SLIM in lines[copy_at + 1]
    server = next(line for line in lines if line.startswith("RUN pip wheel"))
    assert df.SLIM in server


def test_full_mlflow_keeps_mlflows_line(mlflow_template_text: str, spec: df.ImageSpec) -> None:
    text = df.customise(mlflow_template_text, spec)
    assert f"RUN pip install mlflow=={spec.mlflow_version}" in _lines(text)
    assert df.SHIM_DIR not in text
    assert df.SLIM not in text


def test_baked_model_deps_without_gevent(baked_text: str, baked: df.ImageSpec) -> None:
    assert "_install_pyfunc_deps" in baked_text  # MLflow's own step, which adds gunicorn[gevent]
    text = df.customise(baked_text, baked)
    assert "_install_pyfunc_deps" not in text
    assert "C._install_model_dependencies_to_env('/opt/ml/model', env_manager='local')" in text


def test_baked_flattened_lean_image_drops_its_installers(
    baked_text: str, baked: df.ImageSpec
) -> None:
    flattened = df.customise(baked_text, dataclasses.replace(baked, build_ca=True))
    assert "RUN python -m pip uninstall -y -q pip setuptools wheel" in _lines(flattened)
    layered = df.customise(baked_text, baked)
    assert "pip uninstall" not in layered, "a layered image keeps the base's pip anyway"
    full = df.customise(baked_text, dataclasses.replace(baked, build_ca=True, full_mlflow=True))
    assert "pip uninstall" not in full


def test_template_image_keeps_pip_for_start_up_environments(
    mlflow_template_text: str, lean: df.ImageSpec
) -> None:
    text = df.customise(mlflow_template_text, dataclasses.replace(lean, build_ca=True))
    assert "pip uninstall" not in text


def test_flattened_image_from_scratch_when_the_base_env_is_known(
    mlflow_template_text: str, lean: df.ImageSpec
) -> None:
    base_env = ("PATH=/opt/venv/bin:/usr/bin:/bin", 'MESSAGE=say "hi"')
    text = df.customise(
        mlflow_template_text, dataclasses.replace(lean, build_ca=True, base_env=base_env)
    )
    lines = [line for line in _lines(text) if not line.startswith("#")]
    final = lines[[i for i, line in enumerate(lines) if line.startswith("FROM")][-1] :]
    assert final[0] == "FROM scratch"
    assert final[1] == f"COPY --from={df.BUILD_STAGE} / /"
    assert final[2] == 'ENV PATH="/opt/venv/bin:/usr/bin:/bin" MESSAGE="say \\"hi\\""'


def test_pip_cache_never_lands_in_a_layer(mlflow_template_text: str, lean: df.ImageSpec) -> None:
    lines = _lines(df.customise(mlflow_template_text, lean))
    assert lines[lines.index("FROM turing-base:bookworm") + 1] == "ENV PIP_NO_CACHE_DIR=1"


def test_stand_in_wheel_metadata_and_determinism() -> None:
    data = mlflow_shim.wheel_bytes("3.17.2")
    assert data == mlflow_shim.wheel_bytes("3.17.2"), "byte-identical, so the layer caches"
    with zipfile.ZipFile(io.BytesIO(data)) as wheel:
        names = set(wheel.namelist())
        metadata = wheel.read("mlflow-3.17.2.dist-info/METADATA").decode()
    assert names == {
        "mlflow-3.17.2.dist-info/METADATA",
        "mlflow-3.17.2.dist-info/WHEEL",
        "mlflow-3.17.2.dist-info/top_level.txt",
        "mlflow-3.17.2.dist-info/RECORD",
    }, "metadata only: the mlflow module comes from mlflow-skinny"
    assert "Name: mlflow\nVersion: 3.17.2\n" in metadata
    assert "Requires-Dist: mlflow-skinny==3.17.2" in metadata
    assert "Requires-Dist: skops<1" in metadata
    assert "skops" not in mlflow_shim.wheel_bytes("3.17.2", skops=False).decode("latin-1")
    legacy = mlflow_shim.requirements("2.20.4")
    assert "pandas<3" in legacy
    assert "gunicorn<24" in legacy
    assert "Flask<4" in legacy, "MLflow 2.x's scoring server imports Flask"


def test_skops_only_for_models_that_need_it(tmp_path: Path) -> None:
    from turing_image_builder.context import _needs_skops
    from turing_image_builder.options import BuildOptions

    save_iris_model(tmp_path / "ctx" / "model_dir" / "iris")
    assert _needs_skops(BuildOptions(model_uri="x"), tmp_path / "ctx")
    assert _needs_skops(BuildOptions(), tmp_path / "empty"), "a template image may get any model"
    other = tmp_path / "other" / "model_dir" / "m"
    other.mkdir(parents=True)
    (other / "MLmodel").write_text("flavors:\n  python_function: {}\n")
    assert not _needs_skops(BuildOptions(model_uri="x"), tmp_path / "other")


def test_env_and_labels_from_the_user(mlflow_template_text: str, spec: df.ImageSpec) -> None:
    text = df.customise(
        mlflow_template_text,
        dataclasses.replace(
            spec,
            env={"TURING_NGINX_PROXY_TIMEOUT": "120", "GREETING": 'say "hi"'},
            labels={**spec.labels, "team": "ml"},
        ),
    )
    lines = _lines(text)
    env = next(line for line in lines if "TURING_NGINX_PROXY_TIMEOUT" in line)
    assert env == 'ENV TURING_NGINX_PROXY_TIMEOUT="120" \\\n    GREETING="say \\"hi\\""'
    assert lines.index(env) > next(i for i, ln in enumerate(lines) if "TURING_ENV_MANAGER" in ln)
    assert '"team"="ml"' in text


@pytest.mark.parametrize("bad", ["NOEQUALS", "=value", "two words=x"])
def test_bad_env_is_one_clear_error(bad: str) -> None:
    from turing_image_builder.errors import OptionsError
    from turing_image_builder.options import resolve

    with pytest.raises(OptionsError, match="expected KEY=VALUE"):
        resolve({"env": (bad,)}, ["env"], {})


def test_baked_images_check_the_model_once_at_build_time(
    baked_text: str, mlflow_template_text: str, lean: df.ImageSpec, baked: df.ImageSpec
) -> None:
    """MLflow's requirement and Python-version checks run in the build; containers skip them."""
    lines = _lines(df.customise(baked_text, baked))
    model_at = next(i for i, line in enumerate(lines) if "_install_model_dependencies" in line)
    server_at = next(i for i, line in enumerate(lines) if line.startswith("RUN pip wheel"))
    check_at = next(
        i
        for i, line in enumerate(lines)
        if line.startswith("RUN turing-scoring-server check-model")
    )
    assert "check-model --plugins" in lines[check_at]
    assert model_at < server_at < check_at
    assert lines[check_at + 1] == f"ENV {contract.ENV_CHECK_MODEL_REQUIREMENTS}=false"
    template = df.customise(mlflow_template_text, lean)
    assert "check-model" not in template, "a template image gets its model at run time"
    assert "RUN turing-scoring-server check-plugins" in template, "its plugins are checked"
    assert contract.ENV_CHECK_MODEL_REQUIREMENTS not in template
    legacy = df.customise(baked_text, dataclasses.replace(baked, legacy=True))
    assert "check-model" not in legacy


# --- an MLflow without its skinny twin: the stand-in made in the build --------------------------


@pytest.fixture
def no_twin(lean: df.ImageSpec) -> df.ImageSpec:
    return dataclasses.replace(lean, mlflow_version="3.18.0", skinny_like="3.17.2")


def test_lean_image_makes_the_missing_twin_from_mlflows_own_wheel(
    mlflow_template_text: str, no_twin: df.ImageSpec
) -> None:
    lines = _lines(df.customise(mlflow_template_text, no_twin))
    step = next(line for line in lines if df.TWIN_TMP in line)
    commands = step.removeprefix("RUN ").split(" \\\n && ")
    assert commands[:4] == [
        f"pip download --no-deps --only-binary :all: --dest {df.TWIN_TMP} "
        "mlflow-skinny==3.17.2 mlflow==3.18.0",
        f"python {df.SHIM_PATH}/{df.SHIM_SCRIPT} {df.TWIN_TMP} 3.18.0 3.17.2 --code",
        f"pip install --find-links {df.TWIN_TMP} {df.SHIM_PATH}/mlflow-3.18.0-py3-none-any.whl",
        f"rm -rf {df.TWIN_TMP}",
    ]
    assert commands[4] == df.SLIM
    assert lines[lines.index(step) - 2] == f"COPY {df.SHIM_DIR}/ {df.SHIM_PATH}/"
    assert not any(line.startswith("RUN pip install mlflow==") for line in lines)
    server = next(line for line in lines if line.startswith("RUN pip wheel"))
    assert "mlflow-skinny==3.18.0" in server, "the server's skinny pin is the stand-in's version"


def test_full_image_offers_metadata_stand_ins_to_mlflows_own_install(
    mlflow_template_text: str, no_twin: df.ImageSpec
) -> None:
    full = dataclasses.replace(no_twin, full_mlflow=True)
    lines = _lines(df.customise(mlflow_template_text, full))
    step = next(line for line in lines if df.TWIN_TMP in line)
    assert step.removeprefix("RUN ").split(" \\\n && ") == [
        f"pip download --no-deps --only-binary :all: --dest {df.TWIN_TMP} mlflow-skinny==3.17.2",
        f"python {df.SHIM_PATH}/{df.SHIM_SCRIPT} {df.TWIN_TMP} 3.18.0 3.17.2",
        f"pip install --find-links {df.TWIN_TMP} mlflow==3.18.0",
        f"rm -rf {df.TWIN_TMP}",
    ]
    assert lines[lines.index(step) - 1] == f"COPY {df.SHIM_DIR}/ {df.SHIM_PATH}/"
    assert "mlflow-skinny==3.17.2's requirements" in lines[lines.index(step) - 2]
    assert df.SLIM not in "\n".join(lines)


def _zip(path: Path, files: dict[str, str]) -> Path:
    with zipfile.ZipFile(path, "w") as wheel:
        for name, text in files.items():
            wheel.writestr(name, text)
    return path


@pytest.fixture
def downloaded(tmp_path: Path) -> Path:
    """What the build's ``pip download`` leaves: an ``mlflow`` and an older skinny wheel."""
    folder = tmp_path / "twin"
    folder.mkdir()
    _zip(folder / "mlflow-3.18.0-py3-none-any.whl", {
        "mlflow/__init__.py": "VERSION = '3.18.0'\n",
        "mlflow/genai/new_in_3_18.py": "",
        "mlflow/server/js/build/index.html": "<html/>",
        "mlflow/utils/model_catalog/models.json": "{}",
        "mlflow-3.18.0.dist-info/METADATA": "Name: mlflow\nVersion: 3.18.0\n"
        "Requires-Dist: mlflow-skinny==3.18.0\nRequires-Dist: pyarrow<27\n",
        "mlflow-3.18.0.dist-info/entry_points.txt": "[console_scripts]\nmlflow = mlflow.cli:cli\n",
    })  # fmt: skip
    _zip(folder / "mlflow_skinny-3.17.2-py3-none-any.whl", {
        "mlflow/__init__.py": "VERSION = '3.17.2'\n",
        "mlflow_skinny-3.17.2.dist-info/METADATA": "Metadata-Version: 2.4\nName: mlflow-skinny\n"
        "Version: 3.17.2\nSummary: MLflow\nLicense-File: LICENSE.txt\nRequires-Python: >=3.10\n"
        "Requires-Dist: click<9,>=7.0\nRequires-Dist: boto3; extra == \"extras\"\n"
        "Dynamic: license-file\n\n# MLflow\n\nVersion: not a header\n",
    })  # fmt: skip
    return folder


def test_the_lean_twin_is_mlflows_code_with_the_older_skinnys_requirements(
    downloaded: Path, tmp_path: Path
) -> None:
    # Run as the build runs it: a script on the image's bare Python (-S: no site-packages).
    script = Path(mlflow_shim.__file__)
    proc = subprocess.run(
        [sys.executable, "-S", str(script), str(downloaded), "3.18.0", "3.17.2", "--code"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert proc.stdout.startswith("mlflow_shim: wrote mlflow_skinny-3.18.0-py3-none-any.whl")
    (twin,) = downloaded.iterdir()
    assert twin.name == "mlflow_skinny-3.18.0-py3-none-any.whl", "downloaded wheels removed"
    with zipfile.ZipFile(twin) as wheel:
        names = set(wheel.namelist())
        metadata = wheel.read("mlflow_skinny-3.18.0.dist-info/METADATA").decode()
        code = wheel.read("mlflow/__init__.py").decode()
        entry = wheel.read("mlflow_skinny-3.18.0.dist-info/entry_points.txt").decode()
        record = wheel.read("mlflow_skinny-3.18.0.dist-info/RECORD").decode()
    assert code == "VERSION = '3.18.0'\n", "the code is mlflow 3.18.0's"
    assert "mlflow/genai/new_in_3_18.py" in names
    assert not any(n.startswith(mlflow_shim.SKINNY_LEAVES_OUT) for n in names)
    assert metadata == (
        "Metadata-Version: 2.4\nName: mlflow-skinny\nVersion: 3.18.0\nSummary: mlflow-skinny "
        "3.18.0 rebuilt by turing-image-builder: mlflow 3.18.0's code, mlflow-skinny 3.17.2's "
        "requirements\nRequires-Python: >=3.10\nRequires-Dist: click<9,>=7.0\n"
        'Requires-Dist: boto3; extra == "extras"\n'
    )
    assert "mlflow = mlflow.cli:cli" in entry
    assert len(record.splitlines()) == len(names)
    # pip takes it (offline): the name, version and dist-info layout are a valid wheel
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps",
         "--target", str(target), str(twin)],
        check=True, capture_output=True,
    )  # fmt: skip
    assert (target / "mlflow_skinny-3.18.0.dist-info").is_dir()
    assert (target / "mlflow" / "genai" / "new_in_3_18.py").is_file()


def test_the_full_images_stand_ins_are_metadata_only(downloaded: Path) -> None:
    (downloaded / "mlflow-3.18.0-py3-none-any.whl").unlink()  # full mode downloads skinny only
    made = mlflow_shim.make_twin(downloaded, "3.18.0", "3.17.2", code=False)
    assert (
        sorted(p.name for p in downloaded.iterdir())
        == sorted(p.name for p in made)
        == [
            "mlflow_skinny-3.18.0-py3-none-any.whl",
            "mlflow_tracing-3.18.0-py3-none-any.whl",
        ]
    )
    for path in made:
        with zipfile.ZipFile(path) as wheel:
            assert all(".dist-info/" in n for n in wheel.namelist()), "no code: mlflow brings it"
    with zipfile.ZipFile(downloaded / "mlflow_tracing-3.18.0-py3-none-any.whl") as wheel:
        tracing = wheel.read("mlflow_tracing-3.18.0.dist-info/METADATA").decode()
    assert "Requires-Dist: mlflow-skinny==3.18.0" in tracing
    with pytest.raises(SystemExit, match=r"expected one mlflow-skinny==3\.17\.2 wheel"):
        mlflow_shim.make_twin(downloaded, "3.18.0", "3.17.2", code=False)
