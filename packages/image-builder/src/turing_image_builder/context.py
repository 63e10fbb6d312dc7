"""Write a build context: MLflow generates its Dockerfile (and copies the model), we customise it.

Side effects live here (files, MLflow's model download, building the server wheel from source);
the text rules live in :mod:`dockerfile`. The context directory is complete: ``docker build`` on it
needs nothing else, which is what ``--dockerfile-only`` hands to users.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, distribution
from importlib.metadata import version as dist_version
from pathlib import Path
from urllib.parse import unquote, urlsplit

from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion

from turing_scoring_server import contract

from . import dockerfile as df
from . import versions
from .__about__ import __version__
from .errors import BuilderError, OptionsError
from .options import BuildOptions
from .text import shorten
from .wheels import build_wheel, hatch_executable

LABEL_PREFIX = "com.turintech.image-builder"
_LOCAL = contract.MODEL_ENV_MANAGERS[0]
"""The env manager baked and legacy images need: the model's dependencies in the image's Python."""


@dataclass(frozen=True)
class Plan:
    """Decisions taken before anything is written: versions, mode and the server to install."""

    mlflow_version: str
    builder_mlflow_version: str
    legacy: bool
    server_requirement: str | None
    """Index requirement for the server, or None when a local wheel or source is used."""
    snippets: tuple[tuple[df.Instruction, ...], ...] = ()
    """The ``--dockerfile-snippet`` files, read, parsed and checked once, before anything is
    written; rendered as they are."""
    server_dir: Path | None = None
    """Source directory the installed server came from (PEP 610): its wheel is built into the
    context, as ``--server-source`` would, but with pip (no hatch needed)."""
    server_wheel: Path | None = None
    """Wheel the installed server came from (PEP 610), copied in as ``--server-wheel`` would."""
    skinny_like: str | None = None
    """See :class:`versions.SkinnyChoice`: None when ``mlflow-skinny==mlflow_version`` exists."""
    notices: tuple[str, ...] = ()
    """One line each, printed before the build: what the builder did that a user would not guess."""


@dataclass(frozen=True)
class Context:
    """A written build context and what went into it."""

    path: Path
    dockerfile: str
    spec: df.ImageSpec
    server_version: str


def builder_mlflow_version() -> str:
    """MLflow version this builder runs with (the image's default MLflow version)."""
    from mlflow.version import VERSION

    return str(VERSION)


def installed_server_version() -> str:
    """Version of the turing-scoring-server installed with this builder: the default to put in."""
    try:
        return dist_version(contract.DISTRIBUTION)
    except PackageNotFoundError:  # pragma: no cover - the builder depends on it
        raise OptionsError(
            f"{contract.DISTRIBUTION} is not installed next to the builder: give --server-version, "
            "--server-wheel or --server-source"
        ) from None


@dataclass(frozen=True)
class ServerOrigin:
    """Where the installed server came from, as its PEP 610 ``direct_url.json`` tells."""

    kind: str
    """``index`` (no direct_url.json), ``dir`` (a local directory, editable or not), ``wheel``
    (a local wheel file) or ``other`` (a VCS or remote URL: the builder cannot reproduce it)."""
    version: str
    path: Path | None = None
    url: str = ""


_FLAGS_HINT = "give --server-wheel FILE, --server-source DIR or --server-version VERSION"


def installed_server_origin() -> ServerOrigin:
    """The installed server's version and origin (PEP 610), for a build without server flags."""
    try:
        dist = distribution(contract.DISTRIBUTION)
    except PackageNotFoundError:  # pragma: no cover - the builder depends on it
        raise OptionsError(
            f"{contract.DISTRIBUTION} is not installed next to the builder: {_FLAGS_HINT}"
        ) from None
    return classify_origin(dist.version, dist.read_text("direct_url.json"))


def classify_origin(version: str, direct_url: str | None) -> ServerOrigin:
    """A distribution's origin from its ``direct_url.json`` text (``None``: from an index)."""
    if not direct_url:
        return ServerOrigin("index", version)
    try:
        info = json.loads(direct_url)
        url = str(info["url"])
    except (ValueError, KeyError, TypeError):
        return ServerOrigin("other", version, url="an unreadable direct_url.json")
    parts = urlsplit(url)
    local = Path(unquote(parts.path)) if parts.scheme == "file" else None
    if local is not None and "dir_info" in info and local.is_dir():
        return ServerOrigin("dir", version, local, url)
    if local is not None and local.name.endswith(".whl") and local.is_file():
        return ServerOrigin("wheel", version, local, url)
    return ServerOrigin("other", version, local, url)


def plan(options: BuildOptions) -> Plan:
    """Check versions and modes without side effects, so bad options fail before any work."""
    versions.check_contract()
    if options.baked and options.env_manager != _LOCAL:
        # MLflow installs a baked model's dependencies into /opt/activate's environment, but the
        # server (0.1) only activates environments it creates at start-up: it would serve the
        # model from the image's Python, without them.
        raise OptionsError(
            f"--model-uri with --env-manager {options.env_manager}: turing-scoring-server serves "
            "baked models from the image's own Python, so use --env-manager local (the model's "
            "dependencies installed into it), or a template image (no --model-uri) whose "
            f"{options.env_manager} environment is created at start-up"
        )
    mine = builder_mlflow_version()
    choice = versions.decide_mlflow(options.mlflow_version, mine, options.legacy)
    if choice.legacy and options.env_manager != _LOCAL:
        raise OptionsError(
            f"legacy images with --env-manager {options.env_manager}: MLflow's own entrypoint "
            "would start gunicorn in the model's environment, where the server is not installed; "
            "use --env-manager local"
        )
    skinny = versions.SkinnyChoice()
    if versions.needs_index(choice.version):
        urls = _index_urls(options)
        found, where = index_versions("mlflow-skinny", urls, options.build_ca_bundle)
        skinny = versions.decide_skinny(choice.version, found, where)
    if skinny.like is not None and not options.baked and options.env_manager != _LOCAL:
        raise OptionsError(
            f"MLflow {choice.version} has no mlflow-skinny on the index, and a template image with "
            f"--env-manager {options.env_manager} installs the model's mlflow=={choice.version} "
            "into a new environment at start-up, where pip cannot resolve it; use --env-manager "
            "local, or --mlflow-version with a version that has mlflow-skinny"
        )
    notices = tuple(
        n for n in (versions.untested_notice(choice.version), skinny.notice) if n is not None
    )
    snippets = tuple(_read_snippet(path) for path in options.dockerfile_snippet)
    if choice.legacy and options.nginx_template is not None:
        raise OptionsError(
            "--nginx-template with a legacy image (MLflow < 2.21): MLflow starts nginx with the "
            "server's legacy render; use --nginx-server-snippet / --nginx-location-snippet"
        )
    requirement = None
    server_dir = server_wheel = None
    if options.server_wheel is not None:
        _check_server_wheel(options.server_wheel, "--server-wheel")
    elif options.server_source is None and options.server_version is not None:
        requirement = versions.server_requirement(
            options.server_version, installed_server_version()
        )
    elif options.server_source is None:
        # No server flag: put in what is installed here, the way it was installed.
        origin = installed_server_origin()
        if origin.kind == "index":
            requirement = versions.server_requirement(None, origin.version)
        elif origin.kind == "dir":
            versions.check_server_version(origin.version, "installed turing-scoring-server")
            server_dir = origin.path
        elif origin.kind == "wheel":
            assert origin.path is not None
            _check_server_wheel(origin.path, "installed turing-scoring-server")
            server_wheel = origin.path
        else:
            raise OptionsError(
                f"the installed {contract.DISTRIBUTION} came from "
                f"{origin.url or 'an unknown place'}, which the image cannot install from: "
                f"{_FLAGS_HINT}"
            )
    return Plan(
        choice.version, mine, choice.legacy, requirement, snippets, server_dir, server_wheel,
        skinny.like, notices,
    )  # fmt: skip


PYPI_SIMPLE = "https://pypi.org/simple/"
"""pip's default index, which the build's pip uses when no ``--index-url`` is given."""


def _index_urls(options: BuildOptions) -> list[str]:
    return [options.index_url or PYPI_SIMPLE, *options.extra_index_url]


def index_versions(
    project: str, index_urls: list[str], ca_bundle: Path | None, timeout: float = 15
) -> tuple[list[str] | None, str]:
    """The versions of ``project`` the indexes list, and how to name them in a message.

    The simple repository API (PEP 503 HTML, PEP 691 JSON) is what every index pip uses serves
    (PyPI, devpi, Artifactory, Nexus, a directory of files); ``file:`` URLs are read from disk.
    ``ca_bundle`` is ``--build-ca-bundle``, the CA a TLS-intercepting proxy needs. Returns
    ``None`` when no index answered: the caller then takes a safe default.
    """
    found: set[str] = set()
    answered = False
    errors = []
    for url in index_urls:
        try:
            page = url.rstrip("/") + f"/{canonicalize_name(project)}/"
            found |= _simple_versions(page, ca_bundle, timeout)
            answered = True
        except (OSError, ValueError) as exc:
            errors.append(shorten(str(exc) or type(exc).__name__, 120))
    where = "the index " + ", ".join(_safe_url(u) for u in index_urls)
    if not answered:
        return None, f"{where} ({'; '.join(errors)})"
    return sorted(found), where


def _safe_url(url: str) -> str:
    parts = urlsplit(url)
    return url if parts.password is None else url.replace(f":{parts.password}@", ":***@", 1)


def _simple_versions(url: str, ca_bundle: Path | None, timeout: float) -> set[str]:
    """Versions named by the files of one project page; a 404 is an answer: no such project."""
    import ssl
    import urllib.error
    import urllib.request

    parts = urlsplit(url)
    if parts.scheme == "file":
        folder = Path(unquote(parts.path))
        if not folder.exists():
            if not folder.parent.is_dir():
                raise FileNotFoundError(f"no index directory {folder.parent}")
            return set()  # the index is there and has no such project
        page = folder / "index.html"
        if page.is_file():
            return _versions_of_files(unquote(h) for h in _HREF.findall(page.read_text("utf-8")))
        return _versions_of_files(p.name for p in folder.iterdir())
    context = ssl.create_default_context(cafile=str(ca_bundle) if ca_bundle else None)
    request = urllib.request.Request(
        url, headers={"Accept": "application/vnd.pypi.simple.v1+json, text/html;q=0.1"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as resp:
            body = resp.read().decode("utf-8", errors="replace")
            kind = resp.headers.get("Content-Type", "")
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return set()
        raise
    if "json" in kind:
        data = json.loads(body)
        listed = {str(v) for v in data.get("versions", [])}
        files = (str(f.get("filename", "")) for f in data.get("files", []))
        return listed | _versions_of_files(files)
    return _versions_of_files(unquote(h) for h in _HREF.findall(body))


_HREF = re.compile(r"""<a\s[^>]*href=["']([^"'#?]+)""", re.I)


def _versions_of_files(names: Iterable[str]) -> set[str]:
    out: set[str] = set()
    for href in names:
        name = href.rsplit("/", 1)[-1]
        try:
            if name.endswith(".whl"):
                out.add(str(parse_wheel_filename(name)[1]))
            elif name.endswith((".tar.gz", ".zip")):
                out.add(str(parse_sdist_filename(name)[1]))
        except (InvalidWheelFilename, InvalidSdistFilename, InvalidVersion):
            continue  # not a distribution file (a README, an odd legacy name)
    return out


def _check_server_wheel(wheel: Path, source: str) -> None:
    name, version = versions.wheel_version(wheel.name)
    if name != contract.DISTRIBUTION:
        raise OptionsError(f"{source} {wheel.name} is not a {contract.DISTRIBUTION} wheel")
    versions.check_server_version(version, source)


# Files MLflow creates in the working directory when it resolves runs:/ or models:/ URIs without
# MLFLOW_TRACKING_URI (3.x defaults to sqlite:///mlflow.db); removed when the build made them.
_TRACKING_LEFTOVERS = ("mlflow.db", "mlruns", "mlartifacts")

# Client libraries MLflow imports for a URI scheme, and the distribution that brings them.
_SCHEME_PACKAGES = {
    "boto3": "boto3",
    "botocore": "boto3",
    "google": "google-cloud-storage",
    "azure": "azure-storage-file-datalake",
    "pyarrow": "pyarrow",
    "paramiko": "paramiko",
    "pysftp": "pysftp",
}


@contextmanager
def _no_leftovers(cwd: Path) -> Iterator[None]:
    before = {name for name in _TRACKING_LEFTOVERS if (cwd / name).exists()}
    try:
        yield
    finally:
        for name in set(_TRACKING_LEFTOVERS) - before:
            target = cwd / name
            if target.is_dir():
                shutil.rmtree(target, ignore_errors=True)
            elif target.exists():
                target.unlink()


def model_uri_error(uri: str, exc: BaseException) -> BuilderError:
    """One line naming why MLflow could not fetch ``uri`` and what to do."""
    scheme = urlsplit(uri).scheme
    if isinstance(exc, ModuleNotFoundError):
        module = (exc.name or "").split(".", 1)[0]
        package = _SCHEME_PACKAGES.get(module, exc.name or module)
        return OptionsError(
            f"--model-uri {uri}: MLflow needs the Python package {package} for {scheme}:// URIs "
            f"(No module named {exc.name!r}): pip install {package} next to turing-image-builder"
        )
    lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
    # MLflow's download errors list the failures below a generic first line; the last says why.
    why = lines[-1] if lines else type(exc).__name__
    if scheme in ("", "file") and not Path(unquote(urlsplit(uri).path)).exists():
        why = f"no such file or directory ({why})"
    hint = {
        "runs": "check the run id and MLFLOW_TRACKING_URI (the tracking server that has the run)",
        "models": "check the name and version and MLFLOW_TRACKING_URI (the registry that has it)",
    }.get(scheme, "give a model directory or a URI MLflow can read (runs:/, models:/, s3://...)")
    return OptionsError(f"cannot get the model {uri}: {shorten(why, 300)}; {hint}")


def _mlflow_dockerfile(options: BuildOptions, out: Path) -> str:
    """Let MLflow write its Dockerfile (and copy the model) into ``out``; return the text."""
    if options.model_uri is not None:
        from mlflow.pyfunc.backend import PyFuncBackend

        # The same call `mlflow models build-docker` makes: model copied in, deps installed now.
        try:
            with _no_leftovers(Path.cwd()):
                PyFuncBackend(config={}, env_manager=options.env_manager).generate_dockerfile(
                    model_uri=options.model_uri,
                    output_dir=str(out),
                    base_image=options.base_image,
                    install_java=options.install_java,
                )
        except Exception as exc:
            raise model_uri_error(options.model_uri, exc) from exc
    else:
        from mlflow.models import docker_utils

        # What `mlflow sagemaker build-and-push-container` writes: no model, its environment is
        # created when the container starts (MLFLOW_DISABLE_ENV_CREATION=False).
        docker_utils.generate_dockerfile(
            output_dir=str(out),
            base_image=options.base_image or docker_utils.UBUNTU_BASE_IMAGE,
            model_install_steps="",
            entrypoint=(
                "import sys; from mlflow.models import container as C; "
                f"C._init(sys.argv[1], '{options.env_manager}')"
            ),
            env_manager=options.env_manager,  # type: ignore[arg-type]
            disable_env_creation_at_runtime=False,
            install_java=options.install_java,
        )
    return (out / "Dockerfile").read_text(encoding="utf-8")


def _build_server_wheel(source: Path, wheels: Path) -> str:
    """``hatch build -t wheel`` the server's source into the context; return the wheel's name."""
    if hatch_executable() is None:
        raise OptionsError(
            "--server-source needs hatch: pip install 'turing-image-builder[source]'"
        )
    try:
        built = build_wheel(source, wheels)
    except BuilderError as exc:
        # Same one line as before the helper existed, naming the option the user gave.
        raise BuilderError(
            str(exc).replace(f"from {source}:", f"from --server-source {source}:", 1)
        ) from exc
    name, version = versions.wheel_version(built.name)
    if name != contract.DISTRIBUTION:
        raise OptionsError(f"--server-source {source} builds {name}, not {contract.DISTRIBUTION}")
    versions.check_server_version(version, "--server-source")
    return built.name


def _pip_server_wheel(source: Path, wheels: Path) -> str:
    """The installed server's source directory built into a wheel with this Python's pip."""
    before = set(os.listdir(wheels))
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", str(wheels)]
    try:
        import hatchling  # noqa: F401 - present: build offline, without an isolated env
    except ImportError:
        pass
    else:
        command.append("--no-build-isolation")
    proc = subprocess.run([*command, str(source)], capture_output=True, text=True)
    built = sorted(n for n in set(os.listdir(wheels)) - before if n.endswith(".whl"))
    if proc.returncode != 0 or len(built) != 1:
        detail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no wheel produced"]
        raise BuilderError(
            f"cannot build the installed {contract.DISTRIBUTION}'s wheel from {source}: "
            f"{shorten(detail[0], 200)}; {_FLAGS_HINT}"
        )
    _check_server_wheel(wheels / built[0], f"the wheel built from {source}")
    return built[0]


def _labels(options: BuildOptions, the_plan: Plan, server: str) -> dict[str, str]:
    return {
        "org.opencontainers.image.title": options.tag.rsplit("/", 1)[-1].split(":", 1)[0],
        "org.opencontainers.image.description": (
            "MLflow pyfunc model server for SageMaker (turing-scoring-server on MLflow "
            f"{the_plan.mlflow_version}), built by turing-image-builder {__version__}"
        ),
        "org.opencontainers.image.vendor": "TurinTech",
        "org.opencontainers.image.version": server,
        "org.opencontainers.image.base.name": options.base_image or "mlflow-default",
        f"{LABEL_PREFIX}.builder-version": __version__,
        f"{LABEL_PREFIX}.server-version": server,
        f"{LABEL_PREFIX}.mlflow-version": the_plan.mlflow_version,
        f"{LABEL_PREFIX}.model-uri": options.model_uri or "",
        f"{LABEL_PREFIX}.legacy": str(the_plan.legacy).lower(),
        f"{LABEL_PREFIX}.contract-version": contract.CONTRACT_VERSION,
    }


def _needs_skops(options: BuildOptions, out: Path) -> bool:
    """Whether the lean image must carry skops: a template image (any model may come), or a
    baked scikit-learn model saved in the skops format (MLflow 3's default)."""
    if options.model_uri is None:
        return True
    import yaml

    for mlmodel in out.rglob("MLmodel"):
        flavors = yaml.safe_load(mlmodel.read_text(encoding="utf-8")).get("flavors", {})
        return bool(flavors.get("sklearn", {}).get("serialization_format") == "skops")
    return True


def write(
    options: BuildOptions,
    the_plan: Plan,
    out: Path,
    base_env: tuple[str, ...] | None = None,
) -> Context:
    """Write the complete context into ``out`` (created; must be empty when it exists).

    ``base_env`` is the base image's ``ENV`` when the engine could tell it: flattened images are
    then built ``FROM scratch`` (see :func:`dockerfile.flatten_with_build_ca`).
    """
    if out.exists() and any(out.iterdir()):
        raise OptionsError(f"{out} is not empty: give a new or empty directory")
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    try:
        return _write(options, the_plan, out, base_env)
    except BaseException:
        # A failed write leaves nothing behind (a --dockerfile-only directory it made included).
        if created:
            shutil.rmtree(out, ignore_errors=True)
        raise


def _write(
    options: BuildOptions, the_plan: Plan, out: Path, base_env: tuple[str, ...] | None
) -> Context:
    mlflow_text = _mlflow_dockerfile(options, out)

    wheels = out / df.WHEELS_DIR
    wheels.mkdir()
    (wheels / "README.txt").write_text(
        f"Wheels copied to {contract.WHEELHOUSE}: the server and endpoint plugins.\n",
        encoding="utf-8",
    )
    local: list[str] = []
    index: list[str] = []
    given_wheel = options.server_wheel or the_plan.server_wheel
    if given_wheel is not None:
        shutil.copy2(given_wheel, wheels / given_wheel.name)
        local.append(given_wheel.name)
    elif options.server_source is not None:
        local.append(_build_server_wheel(options.server_source, wheels))
    elif the_plan.server_dir is not None:
        local.append(_pip_server_wheel(the_plan.server_dir, wheels))
    if local:
        server_install = f"{contract.WHEELHOUSE}/{local[0]}"
        server = versions.wheel_version(local[0])[1]
    else:
        assert the_plan.server_requirement is not None
        server_install = the_plan.server_requirement
        server = the_plan.server_requirement.removeprefix(contract.DISTRIBUTION).removeprefix("==")
        index.append(the_plan.server_requirement)
    for item in options.extra_pip:
        if item.endswith(".whl") and Path(item).is_file():
            shutil.copy2(item, wheels / Path(item).name)
            local.append(Path(item).name)
        else:
            index.append(item)

    if not options.full_mlflow or the_plan.skinny_like is not None:
        from . import mlflow_shim

        shim = out / df.SHIM_DIR
        shim.mkdir()
        if not options.full_mlflow:
            (shim / mlflow_shim.filename(the_plan.mlflow_version)).write_bytes(
                mlflow_shim.wheel_bytes(the_plan.mlflow_version, skops=_needs_skops(options, out))
            )
        if the_plan.skinny_like is not None:
            # The module's own source: stdlib only, the build runs it to make the missing twin.
            shutil.copyfile(mlflow_shim.__file__, shim / df.SHIM_SCRIPT)
    if options.build_ca_bundle is not None:
        shutil.copyfile(options.build_ca_bundle, out / df.BUILD_CA_NAME)
    if options.runtime_ca_bundle is not None:
        shutil.copyfile(options.runtime_ca_bundle, out / df.RUNTIME_CA_NAME)

    copies = _user_files(options, out)
    snippets = the_plan.snippets
    nginx_files = _nginx_files(options, out)
    settings = {}
    if options.timeout is not None:
        settings[contract.ENV_REQUEST_TIMEOUT] = str(options.timeout)
    if options.max_body_size is not None:
        settings[contract.ENV_MAX_BODY_SIZE] = options.max_body_size

    spec = df.ImageSpec(
        mlflow_version=the_plan.mlflow_version,
        builder_mlflow_version=the_plan.builder_mlflow_version,
        env_manager=options.env_manager,
        baked=options.baked,
        legacy=the_plan.legacy,
        server_install=server_install,
        index_packages=tuple(index),
        local_wheels=tuple(local),
        index_url=options.index_url,
        extra_index_urls=options.extra_index_url,
        runtime_ca=options.runtime_ca_bundle is not None,
        build_ca=options.build_ca_bundle is not None,
        labels={**_labels(options, the_plan, server), **dict(options.label)},
        env={**settings, **dict(options.env)},
        full_mlflow=options.full_mlflow,
        skinny_like=the_plan.skinny_like,
        apt_packages=options.apt_packages,
        user_copies=copies,
        user_snippets=snippets,
        nginx_files=nginx_files,
        nginx_template=options.nginx_template is not None,
        base_env=base_env,
    )
    text = df.customise(mlflow_text, spec)
    (out / "Dockerfile").write_text(text, encoding="utf-8")
    return Context(path=out, dockerfile=text, spec=spec, server_version=server)


def _user_files(options: BuildOptions, out: Path) -> tuple[tuple[str, str], ...]:
    """``--copy`` sources into numbered context directories (same names never clash)."""
    pairs = []
    for i, item in enumerate(options.copy, 1):
        where = out / df.USER_FILES_DIR / str(i)
        where.mkdir(parents=True)
        if item.src.is_dir():
            shutil.copytree(item.src, where / item.src.name, symlinks=True)
        else:
            shutil.copy2(item.src, where / item.src.name)
        pairs.append((f"{df.USER_FILES_DIR}/{i}/{item.src.name}", item.dest))
    return tuple(pairs)


def _read_snippet(path: Path) -> tuple[df.Instruction, ...]:
    return tuple(df.check_snippet(path.read_text(encoding="utf-8"), str(path)))


def _nginx_files(options: BuildOptions, out: Path) -> bool:
    """Users' nginx snippets (``server.d``/``location.d``) and template into the context."""
    root = out / df.NGINX_DIR
    for sub, paths in (
        ("server.d", options.nginx_server_snippet),
        ("location.d", options.nginx_location_snippet),
    ):
        for i, path in enumerate(paths, 1):
            (root / sub).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, root / sub / f"{i:02d}-{path.stem}.conf")
    if options.nginx_template is not None:
        root.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(options.nginx_template, root / df.NGINX_TEMPLATE_NAME)
    return root.is_dir()


def temporary_dir() -> Path:
    """A fresh directory for a context that is removed after the build."""
    return Path(tempfile.mkdtemp(prefix="turing-image-build-"))
