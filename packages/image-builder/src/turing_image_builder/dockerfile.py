"""Pure text functions: MLflow's generated Dockerfile plus an :class:`ImageSpec` -> our Dockerfile.

MLflow writes the Dockerfile (base image, Python, Java, ``pip install mlflow``, the model and its
dependencies); these functions only insert our steps at anchors in that text and swap the
entrypoint, so MLflow's template is reused, never forked. Nothing here touches the disk, Docker or
the network, so every rule is unit-tested on strings.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from turing_scoring_server import contract

from .errors import BuilderError

WHEELS_DIR = "turing-wheels"
"""Directory of the build context copied to ``contract.WHEELHOUSE``."""
BUILD_CA_NAME = "turing-build-ca.pem"
"""Build-time CA bundle in the context; lives only in the throw-away ``build`` stage."""
RUNTIME_CA_NAME = "turing-runtime-ca.pem"
RUNTIME_CA_PATH = "/opt/turing/ca/runtime-ca.pem"
BUILD_CA_PATH = "/tmp/turing-build-ca.pem"
BUILD_STAGE = "turing-build"
APT_CA_CONF = "/etc/apt/apt.conf.d/99turing-build-ca"
"""apt reads no CA variable; this file points it at the build CA. Build stage only."""

# Every variable a tool used during a build reads for its CA bundle: pip, requests, curl, git
# (pyenv's clone), conda, and OpenSSL-based clients generally.
CA_ENV_NAMES = (
    "PIP_CERT", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "GIT_SSL_CAINFO",
    "CONDA_SSL_VERIFY",
)  # fmt: skip

# Instructions that only set image configuration; a flattened final stage must re-declare them.
_CONFIG_KEYWORDS = frozenset({"ENV", "WORKDIR", "LABEL", "EXPOSE", "USER", "ENTRYPOINT", "CMD",
                              "STOPSIGNAL", "HEALTHCHECK", "SHELL", "VOLUME"})  # fmt: skip

TELEMETRY_ENV = contract.ENV_MLFLOW_TELEMETRY
"""MLflow's own switch; images set it ``true`` from the first
step, so no build step or container reports to MLflow unless ``--env ...=false`` asks for it."""
TELEMETRY_FILE = '"${XDG_CONFIG_HOME:-$HOME/.config}/mlflow/telemetry.json"'
"""Where MLflow 3.x keeps its telemetry ``installation_id`` (mlflow/telemetry/installation_id.py):
one per machine, so one left in an image would be shared by every container of it."""
NO_TELEMETRY_ID = (
    f"rm -f {TELEMETRY_FILE} {TELEMETRY_FILE.replace('.json', '.tmp')} "
    '&& { rmdir "${XDG_CONFIG_HOME:-$HOME/.config}/mlflow" 2>/dev/null || true; }'
)
"""Run in the layer of every step that imports MLflow: no per-build id can reach the image."""

_MLFLOW_PIN = re.compile(r"\bmlflow==[^\s\"']+")
USER_FILES_DIR = "turing-user-files"
"""Context directory holding ``--copy`` sources, one numbered sub-directory per item."""
NGINX_DIR = "turing-nginx"
"""Context directory copied to ``contract.NGINX_SNIPPETS_DIR`` (snippets and template)."""
NGINX_TEMPLATE_NAME = "nginx.conf.template"
SHIM_DIR = "turing-mlflow"
"""Context directory of the lean ``mlflow`` stand-in wheel, copied to ``SHIM_PATH``."""
SHIM_PATH = "/opt/turing/mlflow"
SHIM_SCRIPT = "mlflow_shim.py"
""":mod:`mlflow_shim`'s own source in ``SHIM_DIR``: run in the build to make a missing twin."""
TWIN_TMP = "/tmp/turing-mlflow-twin"
"""Where the build downloads MLflow's wheels and writes the stand-ins; removed in the same step."""
# What serving never reads, removed in the layer that installed it: test suites shipped inside
# packages (pandas alone: 45 MB) and C/Cython sources and headers used only to compile them.
SLIM = (
    'find "$(python -c \'import sysconfig; print(sysconfig.get_paths()["purelib"])\')" '
    "-mindepth 2 \\( -type d \\( -name tests -o -name test \\) -prune -exec rm -rf {} + \\) "
    "-o \\( -type f \\( -name '*.pyx' -o -name '*.pxd' -o -name '*.pxi' -o -name '*.c' "
    "-o -name '*.cpp' -o -name '*.h' -o -name '*.hpp' \\) -exec rm -f {} + \\)"
)
# MLflow's own baked-model step (its text, with our model path and env manager in it).
_LOCAL = contract.MODEL_ENV_MANAGERS[0]
_PYFUNC_DEPS = re.compile(
    re.escape(
        f"C._install_pyfunc_deps('{contract.MODEL_PATH}', install_mlflow=False, "
        f"env_manager='{_LOCAL}')"
    )
)


class DockerfileError(BuilderError):
    """MLflow's generated text lacks an anchor we insert at (its template changed)."""


@dataclass(frozen=True)
class Instruction:
    """One Dockerfile instruction (or comment) with its original text, continuations included."""

    text: str

    @property
    def keyword(self) -> str:
        """``RUN``, ``ENV``, ... upper-cased; ``#`` for a comment line."""
        stripped = self.text.lstrip()
        return "#" if stripped.startswith("#") else stripped.split(None, 1)[0].upper()


@dataclass(frozen=True)
class ImageSpec:
    """What to add to MLflow's Dockerfile. Built by :mod:`context` from the options."""

    mlflow_version: str
    builder_mlflow_version: str
    env_manager: str = _LOCAL
    """The model environment's manager; the builder's own choice (``--env-manager``), the one
    it hands MLflow, never read back from MLflow's text."""
    baked: bool = False
    """The model is copied in at build time (``--model-uri``): it is checked in the build, and a
    lean layered image may drop its installers."""
    legacy: bool = False
    server_install: str = f"{contract.DISTRIBUTION}"
    """The server as pip takes it: a requirement from the index or a wheel path inside the image."""
    index_packages: tuple[str, ...] = ()
    """Requirements fetched from the index into the wheelhouse (server, ``--extra-pip`` specs)."""
    local_wheels: tuple[str, ...] = ()
    """Wheel file names under ``WHEELS_DIR`` in the context (server and plugins)."""
    index_url: str | None = None
    extra_index_urls: tuple[str, ...] = ()
    runtime_ca: bool = False
    build_ca: bool = False
    labels: Mapping[str, str] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)
    """Users' ``--env``: set after ours, so they win; ``docker run -e`` still overrides them."""
    full_mlflow: bool = False
    """Keep MLflow's ``pip install mlflow==X``; else the lean stand-in (:mod:`mlflow_shim`)."""
    skinny_like: str | None = None
    """No ``mlflow-skinny==X`` on the index: the build makes it from ``mlflow==X``'s wheel with
    this skinny version's requirements (see :func:`twin_commands`); None: it exists."""
    apt_packages: tuple[str, ...] = ()
    """``--apt-packages``: installed right after the base, before MLflow's own steps."""
    user_copies: tuple[tuple[str, str], ...] = ()
    """``--copy``: (path in the context, destination in the image)."""
    user_snippets: tuple[Sequence[Instruction], ...] = ()
    """``--dockerfile-snippet`` instructions (parsed once, by :func:`check_snippet`), inserted
    before nginx and the server."""
    nginx_files: bool = False
    """The context has ``NGINX_DIR`` (users' nginx snippets and/or template) to copy in."""
    nginx_template: bool = False
    base_env: tuple[str, ...] | None = None
    """The base image's ``ENV`` (``KEY=value``), when known: a flattened image is then built
    ``FROM scratch`` with them re-declared, instead of copying the build over the base again."""


def parse(text: str) -> list[Instruction]:
    """Split Dockerfile text into instructions, joining ``\\`` continuations; drop blank lines."""
    out: list[Instruction] = []
    pending: list[str] = []
    for line in text.splitlines():
        if not pending and (not line.strip()):
            continue
        if not pending and line.lstrip().startswith("#"):
            out.append(Instruction(line))
            continue
        pending.append(line)
        if line.rstrip().endswith("\\"):
            continue
        out.append(Instruction("\n".join(pending)))
        pending = []
    if pending:
        out.append(Instruction("\n".join(pending)))
    return out


def render(instructions: Sequence[Instruction]) -> str:
    """Instructions back to text, a blank line before each comment block for readability."""
    lines: list[str] = []
    for i, ins in enumerate(instructions):
        if ins.keyword == "#" and i and instructions[i - 1].keyword != "#":
            lines.append("")
        if ins.keyword == "FROM" and i:
            lines.append("")
        lines.append(ins.text)
    return "\n".join(lines) + "\n"


def _q(value: str) -> str:
    """A double-quoted Dockerfile value (ENV, LABEL): JSON string escaping is what Docker reads."""
    return json.dumps(value)


def _index_of(instructions: Sequence[Instruction], predicate: str, what: str) -> int:
    for i, ins in enumerate(instructions):
        if ins.text.lstrip().startswith(predicate):
            return i
    raise DockerfileError(
        f"MLflow's generated Dockerfile has no {what} ({predicate!r}); this MLflow version is not "
        "supported by turing-image-builder"
    )


def pin_mlflow(instruction: Instruction, version: str, builder_version: str) -> Instruction:
    """Rewrite MLflow's ``pip install mlflow==<its version>`` to the requested version.

    MLflow 2.x does not support pandas 3 or numpy 3, and an older pip resolver may still pick
    them, so they are capped alongside.
    """
    if version == builder_version:
        return instruction
    if not _MLFLOW_PIN.search(instruction.text):
        raise DockerfileError(
            "--mlflow-version needs MLflow's 'pip install mlflow==X' step, but this Dockerfile "
            "installs MLflow another way (from source?)"
        )
    text = _MLFLOW_PIN.sub(f"mlflow=={version}", instruction.text)
    if version.split(".", 1)[0] == "2":
        text += " 'pandas<3' 'numpy<3'"
    return Instruction(text)


def lean_mlflow_steps(spec: ImageSpec) -> list[Instruction]:
    """Replace MLflow's ``pip install mlflow==X`` with the metadata-only stand-in for ``mlflow``.

    The stand-in pulls ``mlflow-skinny==X`` and what a pyfunc model needs at load time (see
    :mod:`mlflow_shim`), so the image has the ``mlflow`` module and every ``mlflow==X``
    requirement is met, without the tracking server, UI and their 800 MB.
    """
    from .mlflow_shim import filename

    wheel = f"{SHIM_PATH}/{filename(spec.mlflow_version)}"
    out = [
        Instruction(
            "# turing-image-builder: lean MLflow: mlflow-skinny plus a metadata-only 'mlflow' "
            "(--full-mlflow installs the whole distribution)"
        ),
        Instruction(f"COPY {SHIM_DIR}/ {SHIM_PATH}/"),
    ]
    if spec.skinny_like is None:
        return [*out, Instruction(f"RUN pip install {wheel} \\\n && {SLIM}")]
    commands = [
        *twin_commands(spec.mlflow_version, spec.skinny_like, code=True),
        f"pip install --find-links {TWIN_TMP} {wheel}",
        f"rm -rf {TWIN_TMP}",
        SLIM,
    ]
    return [*out, twin_comment(spec), Instruction("RUN " + " \\\n && ".join(commands))]


def twin_comment(spec: ImageSpec) -> Instruction:
    return Instruction(
        f"# turing-image-builder: the index has no mlflow-skinny=={spec.mlflow_version}: it is "
        f"made from mlflow=={spec.mlflow_version}'s wheel with mlflow-skinny=={spec.skinny_like}'s "
        "requirements"
    )


def twin_commands(version: str, like: str, code: bool) -> list[str]:
    """Download what the stand-in ``mlflow-skinny==version`` is made of, and make it.

    In the build, not on the client: pip there already uses the image's index, CA and network,
    and the step's layer caches. ``code``: the lean image's twin carries ``mlflow==version``'s
    code; without it (full MLflow) the stand-ins are metadata only. See :mod:`mlflow_shim`.
    """
    wanted = [f"mlflow-skinny=={like}", *([f"mlflow=={version}"] if code else [])]
    return [
        f"pip download --no-deps --only-binary :all: --dest {TWIN_TMP} " + " ".join(wanted),
        f"python {SHIM_PATH}/{SHIM_SCRIPT} {TWIN_TMP} {version} {like}"
        + (" --code" if code else ""),
    ]


def full_mlflow_twin_steps(instruction: Instruction, spec: ImageSpec) -> list[Instruction]:
    """MLflow's ``pip install mlflow==X``, with the missing ``mlflow-skinny==X`` and
    ``mlflow-tracing==X`` it requires offered by metadata-only stand-ins (``--find-links``).

    The full wheel brings all of MLflow's code; the stand-ins only satisfy its requirements, with
    skinny's from the newest released skinny, so pip installs the same dependencies it would
    have.
    """
    assert spec.skinny_like is not None
    text = instruction.text.strip()
    if not text.startswith("RUN pip install "):
        raise DockerfileError(
            f"MLflow's install step {text!r} is not 'RUN pip install ...': cannot add the "
            f"stand-in mlflow-skinny=={spec.mlflow_version}"
        )
    install = text.removeprefix("RUN ").replace(
        "pip install ", f"pip install --find-links {TWIN_TMP} ", 1
    )
    commands = [
        *twin_commands(spec.mlflow_version, spec.skinny_like, code=False),
        install,
        f"rm -rf {TWIN_TMP}",
    ]
    return [
        twin_comment(spec),
        Instruction(f"COPY {SHIM_DIR}/ {SHIM_PATH}/"),
        Instruction("RUN " + " \\\n && ".join(commands)),
    ]


def model_deps_without_gevent(instruction: Instruction) -> Instruction:
    """MLflow's baked-model step, minus the ``gunicorn[gevent]`` it adds and nothing uses.

    ``_install_pyfunc_deps`` = MLflow's ``_install_model_dependencies_to_env`` (the model's own
    requirements) + ``pip install gunicorn[gevent]``; we call the former, MLflow's own code.
    """
    text = _PYFUNC_DEPS.sub(
        f"C._install_model_dependencies_to_env('{contract.MODEL_PATH}', env_manager='{_LOCAL}')",
        instruction.text,
    )
    return Instruction(f"{text} \\\n && {SLIM}")


def model_check_steps() -> list[Instruction]:
    """MLflow's load-time checks on the baked model, and the app built once, at build time.

    ``mlflow.pyfunc.load_model`` compares the model's requirements and Python version with the
    environment on every load (0.16 s of each start here, warnings only); the environment of a
    baked image cannot change, so the build runs them (warnings land in the build log) and the
    containers skip them. ``--plugins`` then builds the app as the container does (model loaded,
    every plugin and app hook imported and registered), so a broken plugin fails the build with
    the error the container would stop with, not the first start.
    """
    return [
        Instruction(
            "# turing-image-builder: MLflow's model checks (requirements, Python version) run "
            "here once, not at every start; the app, plugins and hooks are built as at start-up"
        ),
        Instruction(f"RUN {shlex.join(contract.CHECK_MODEL_COMMAND)} \\\n && {NO_TELEMETRY_ID}"),
        Instruction(f"ENV {contract.ENV_CHECK_MODEL_REQUIREMENTS}=false"),
    ]


def plugin_check_steps() -> list[Instruction]:
    """Template images (no model yet): every plugin and app hook imported and registered."""
    return [
        Instruction(
            "# turing-image-builder: endpoint plugins and app hooks imported and registered as "
            "at start-up, so a broken one fails the build"
        ),
        Instruction(f"RUN {shlex.join(contract.CHECK_PLUGINS_COMMAND)} \\\n && {NO_TELEMETRY_ID}"),
    ]


def drop_installers() -> list[Instruction]:
    """Baked lean images install nothing at run time: pip, setuptools and wheel go.

    Only when the model environment is never created at start-up (``MLFLOW_DISABLE_ENV_CREATION``
    true), and only effective in flattened images (in a layered one the base keeps them).
    """
    return [
        Instruction(
            "# turing-image-builder: a baked image installs nothing at run time; "
            "its installers go (--full-mlflow keeps them)"
        ),
        Instruction("RUN python -m pip uninstall -y -q pip setuptools wheel"),
    ]


def nginx_step() -> list[Instruction]:
    """Install nginx only when the base lacks it (Debian's small ``nginx-light`` when it exists)."""
    return [
        Instruction(
            "# turing-image-builder: nginx fronts the server as SageMaker expects; "
            "installed only when the base image lacks it"
        ),
        Instruction(
            "RUN command -v nginx >/dev/null 2>&1 || { apt-get update \\\n"
            " && { DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \\\n"
            "      nginx-light \\\n"
            "   || DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \\\n"
            "      nginx; } \\\n"
            " && rm -rf /var/lib/apt/lists/*; }"
        ),
    ]


def server_steps(spec: ImageSpec) -> list[Instruction]:
    """Copy wheels into the wheelhouse and pip install the server and ``--extra-pip`` items.

    ``mlflow-skinny`` is pinned to the image's MLflow: the server depends on it, and a different
    skinny version would overwrite the files of the ``mlflow`` already installed (same package).
    """
    wheelhouse = contract.WHEELHOUSE
    local = [f"{wheelhouse}/{name}" for name in spec.local_wheels]
    install = [
        spec.server_install,
        *local,
        *spec.index_packages,
        f"mlflow-skinny=={spec.mlflow_version}",
    ]
    install = list(dict.fromkeys(install))  # the server spec may also be an index package
    commands = []
    if spec.index_packages:
        commands.append(
            f"pip wheel --no-deps --wheel-dir {wheelhouse} "
            + " ".join(shlex.quote(p) for p in spec.index_packages)
        )
    commands.append(
        f"pip install --find-links {wheelhouse} " + " ".join(shlex.quote(p) for p in install)
    )
    commands.append(f"{contract.ENTRYPOINT[0]} -c {shlex.quote(contract.IMPORT_CHECK)}")
    if not spec.full_mlflow:
        commands.append(SLIM)
    return [
        Instruction(
            "# turing-image-builder: the server and plugins, after MLflow's own layers so "
            "changing them rebuilds only these"
        ),
        Instruction(f"COPY {WHEELS_DIR}/ {wheelhouse}/"),
        Instruction("RUN " + " \\\n && ".join(commands)),
    ]


def index_steps(spec: ImageSpec) -> list[Instruction]:
    """Point every pip call in the build (MLflow's included) at the configured index."""
    env = {}
    if spec.index_url:
        env["PIP_INDEX_URL"] = spec.index_url
    if spec.extra_index_urls:
        env["PIP_EXTRA_INDEX_URL"] = " ".join(spec.extra_index_urls)
    if not env:
        return []
    return [Instruction("ENV " + " ".join(f"{k}={_q(v)}" for k, v in env.items()))]


def runtime_ca_steps() -> list[Instruction]:
    """Trust a CA bundle at run time, for images that create model environments at start-up."""
    env = " ".join(f"{name}={RUNTIME_CA_PATH}" for name in CA_ENV_NAMES)
    return [
        Instruction("# turing-image-builder: CA bundle trusted at run time (--runtime-ca-bundle)"),
        Instruction(f"COPY {RUNTIME_CA_NAME} {RUNTIME_CA_PATH}"),
        Instruction(f"ENV {env}"),
    ]


def legacy_nginx_step() -> list[Instruction]:
    """Replace MLflow's packaged nginx.conf with the server's legacy render, inside the image."""
    where = (
        "python -c 'import pathlib, mlflow.models as m; "
        'print(pathlib.Path(m.__file__).parent / "container/scoring_server/nginx.conf")\''
    )
    return [
        Instruction(
            "# turing-image-builder: MLflow < 2.21 starts nginx with its packaged conf; "
            "render ours over it"
        ),
        Instruction(f'RUN {shlex.join(contract.RENDER_NGINX_LEGACY_COMMAND)} "$({where})"'),
    ]


def legacy_gunicorn_args(extra: str = "") -> str:
    """``GUNICORN_CMD_ARGS`` for legacy images: ends with ``-- <our app>``.

    MLflow 2.20 runs ``gunicorn ... ${GUNICORN_CMD_ARGS} -- mlflow...wsgi:app`` and gunicorn
    serves the first positional argument. Our app cannot simply come first: Python's argparse
    (3.11) then rejects the trailing ``-- mlflow...:app`` as unrecognised, since gunicorn's
    positional ``nargs="*"`` was already consumed. After our own ``--`` every later word, the
    second ``--`` included, is positional, so gunicorn gets ``[our app, "--", MLflow's app]``
    and serves ours. Options (``extra``) must stay before that ``--``.
    """
    options = f"-c {contract.GUNICORN_CONFIG} {extra}".strip()
    return f"{options} -- {contract.WSGI_APP}"


def apt_steps(packages: Sequence[str]) -> list[Instruction]:
    """``--apt-packages`` in one layer, apt lists removed in it; early, as system libraries
    rarely change and a model's pip install may need them (libgomp for LightGBM...)."""
    if not packages:
        return []
    names = " ".join(shlex.quote(p) for p in packages)
    return [
        Instruction("# turing-image-builder: system packages (--apt-packages)"),
        Instruction(
            "RUN apt-get update \\\n"
            " && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \\\n"
            f"    {names} \\\n"
            " && rm -rf /var/lib/apt/lists/*"
        ),
    ]


# A snippet runs in the middle of our single-stage Dockerfile: it may add files and run commands,
# but not start another stage or replace the contract's entrypoint.
_SNIPPET_FORBIDDEN = frozenset({"FROM", "ENTRYPOINT", "CMD"})


def check_snippet(text: str, name: str) -> list[Instruction]:
    """A ``--dockerfile-snippet`` parsed, or a :class:`DockerfileError` naming what is refused."""
    ins = parse(text)
    for x in ins:
        if x.keyword in _SNIPPET_FORBIDDEN:
            raise DockerfileError(
                f"--dockerfile-snippet {name}: {x.keyword} is not allowed in a snippet "
                "(--base-image chooses the base; the entrypoint is the server's contract)"
            )
    if not ins:
        raise DockerfileError(f"--dockerfile-snippet {name} is empty")
    return ins


def user_steps(spec: ImageSpec) -> list[Instruction]:
    """``--copy`` then ``--dockerfile-snippet``s: after MLflow's steps (model and its
    dependencies), before nginx and the server, so a server upgrade reuses their layers."""
    out: list[Instruction] = []
    if spec.user_copies:
        out.append(Instruction("# turing-image-builder: extra files (--copy)"))
        out += [Instruction(f"COPY {_json_args(src, dest)}") for src, dest in spec.user_copies]
    for i, snippet in enumerate(spec.user_snippets, 1):
        out.append(Instruction(f"# turing-image-builder: your Dockerfile snippet {i} starts"))
        out += snippet
        out.append(Instruction(f"# turing-image-builder: your Dockerfile snippet {i} ends"))
    return out


def _json_args(*args: str) -> str:
    """Exec-form (JSON array) arguments: paths with spaces stay whole."""
    return json.dumps(list(args))


def nginx_check_steps(spec: ImageSpec) -> list[Instruction]:
    """Users' nginx files copied in, then ``nginx -t`` on the configuration the container will
    render, so a broken snippet or template fails the build, not the first start."""
    out: list[Instruction] = []
    if spec.nginx_files:
        out.append(
            Instruction("# turing-image-builder: your nginx snippets / template (--nginx-*)")
        )
        out.append(Instruction(f"COPY {NGINX_DIR}/ {contract.NGINX_SNIPPETS_DIR}/"))
    if spec.nginx_template:
        template = f"{contract.NGINX_SNIPPETS_DIR}/{NGINX_TEMPLATE_NAME}"
        out.append(Instruction(f"ENV {contract.ENV_NGINX_TEMPLATE}={_q(template)}"))
    if not spec.legacy:
        out.append(
            Instruction("# turing-image-builder: nginx -t on the configuration this image serves")
        )
        out.append(Instruction(f"RUN {shlex.join(contract.RENDER_NGINX_CHECK_COMMAND)}"))
    return out


def labels_step(labels: Mapping[str, str]) -> list[Instruction]:
    """One LABEL instruction (one config change) with every label, values JSON-quoted."""
    if not labels:
        return []
    body = " \\\n      ".join(f"{_q(k)}={_q(v)}" for k, v in sorted(labels.items()))
    return [Instruction(f"LABEL {body}")]


def customise(mlflow_text: str, spec: ImageSpec) -> str:
    """MLflow's Dockerfile text -> final text (flattened with a build stage when ``build_ca``)."""
    ins = parse(mlflow_text)
    from_at = _index_of(ins, "FROM", "FROM line")
    # No pip cache in any layer, whatever the base image sets.
    ins[from_at + 1 : from_at + 1] = [
        Instruction("ENV PIP_NO_CACHE_DIR=1"),
        Instruction(f"ENV {TELEMETRY_ENV}=true"),
        *index_steps(spec),
        *apt_steps(spec.apt_packages),
    ]

    pin_at = next(
        (i for i, x in enumerate(ins) if re.match(r"RUN pip install\b.*mlflow", x.text.lstrip())),
        None,
    )
    if pin_at is None:
        raise DockerfileError("MLflow's generated Dockerfile has no 'RUN pip install mlflow' step")
    if spec.full_mlflow:
        ins[pin_at] = pin_mlflow(ins[pin_at], spec.mlflow_version, spec.builder_mlflow_version)
        if spec.skinny_like is not None:
            ins[pin_at : pin_at + 1] = full_mlflow_twin_steps(ins[pin_at], spec)
    else:
        ins[pin_at : pin_at + 1] = lean_mlflow_steps(spec)
    for i, x in enumerate(ins):
        if x.keyword == "RUN" and _PYFUNC_DEPS.search(x.text):
            ins[i] = model_deps_without_gevent(x)

    # MLflow's env-creation line is only the anchor; whether the model is baked is our decision.
    env_at = _index_of(ins, f"ENV {contract.ENV_DISABLE_ENV_CREATION}=", "env-creation ENV")
    installers = drop_installers() if spec.baked and not spec.full_mlflow and spec.build_ca else []
    checks = []
    if not spec.legacy:
        checks = model_check_steps() if spec.baked else plugin_check_steps()
    ins[env_at:env_at] = user_steps(spec) + nginx_step() + server_steps(spec) + installers

    entry_at = _index_of(ins, "ENTRYPOINT", "ENTRYPOINT")
    tail: list[Instruction] = []
    # Non-legacy images leave it empty: the server's defaults live in its gunicorn config
    # module, and users set it with --env or docker run -e.
    gunicorn = legacy_gunicorn_args() if spec.legacy else ""
    tail.append(
        Instruction("# turing-image-builder: run-time settings; override with docker run -e")
    )
    tail.append(
        Instruction(
            f"ENV {contract.ENV_ENV_MANAGER}={_q(spec.env_manager)} \\\n"
            f"    {contract.ENV_GUNICORN_CMD_ARGS}={_q(gunicorn)}"
        )
    )
    if spec.env:
        tail.append(Instruction("# turing-image-builder: --env settings"))
        tail.append(
            Instruction("ENV " + " \\\n    ".join(f"{k}={_q(v)}" for k, v in spec.env.items()))
        )
    # After the ENV above: the checks (and a legacy image's render) see the image's settings,
    # users' TURING_ENDPOINTS and TURING_DISABLED_PLUGINS included.
    tail += checks
    tail += nginx_check_steps(spec)
    if spec.legacy:
        tail += legacy_nginx_step()
    if spec.runtime_ca:
        tail += runtime_ca_steps()
    tail += labels_step({contract.SAGEMAKER_BIND_TO_PORT_LABEL: "true", **spec.labels})
    if not spec.legacy:
        # Exec form: the server is PID 1 and gets SageMaker's SIGTERM; SageMaker appends "serve".
        ins[entry_at] = Instruction("ENTRYPOINT " + json.dumps(list(contract.ENTRYPOINT)))
    ins[entry_at:entry_at] = tail
    return render(flatten(ins, spec.base_env) if spec.build_ca else ins)


def flatten_with_build_ca(text: str, base_env: Sequence[str] | None = None) -> str:
    """:func:`flatten` for a Dockerfile given as text (one written by hand or by MLflow)."""
    return render(flatten(parse(text), base_env))


def flatten(ins: Sequence[Instruction], base_env: Sequence[str] | None = None) -> list[Instruction]:
    """Two stages so a build-time CA bundle never lands in a layer of the final image.

    The classic builder (all the docker SDK drives) has no ``RUN --mount=type=secret``, and a file
    deleted in a later layer stays in the earlier one. So every build step runs in a ``build``
    stage that has the CA, the CA is deleted at its end, and the final stage copies that stage's
    file system over the same base in one layer and re-declares the configuration (ENV, LABEL,
    WORKDIR, ENTRYPOINT...). When the base image's ``ENV`` is known (``base_env``), the final
    stage is ``FROM scratch`` with those re-declared, so the base's files are not stored twice;
    otherwise it copies over the base. Trade-off: the final image is one layer, so pushes resend
    it whole; the build stage's layers still cache every step. Works on the instructions
    :func:`customise` built, so nothing it decided is re-read from rendered text.
    """
    froms = [i for i, x in enumerate(ins) if x.keyword == "FROM"]
    if len(froms) != 1:
        raise DockerfileError("--build-ca-bundle supports single-stage Dockerfiles only")
    base = ins[froms[0]].text.split(None, 1)[1].strip()
    head, body = ins[: froms[0]], ins[froms[0] + 1 :]
    ca_env = " ".join(f"{name}={BUILD_CA_PATH}" for name in CA_ENV_NAMES)
    build = [
        Instruction(f"FROM {base} AS {BUILD_STAGE}"),
        Instruction(
            "# turing-image-builder: build-time CA (--build-ca-bundle); this stage is thrown away"
        ),
        Instruction(f"COPY {BUILD_CA_NAME} {BUILD_CA_PATH}"),
        Instruction(f"ENV {ca_env}"),
        Instruction(
            f"RUN if [ -d /etc/apt/apt.conf.d ]; then "
            f"echo 'Acquire::https::CaInfo \"{BUILD_CA_PATH}\";' > {APT_CA_CONF}; fi"
        ),
        *(x for x in body if x.keyword not in {"ENTRYPOINT", "CMD", "LABEL", "EXPOSE", "#"}),
        Instruction(f"RUN rm -f {BUILD_CA_PATH} {APT_CA_CONF}"),
    ]
    if base_env is not None:
        start = [
            Instruction(
                "# turing-image-builder: final image = the build stage's files in one layer, "
                f"with {base}'s environment"
            ),
            Instruction("FROM scratch"),
            Instruction(f"COPY --from={BUILD_STAGE} / /"),
            *([Instruction("ENV " + " ".join(_env_pair(e) for e in base_env))] if base_env else []),
        ]
    else:
        start = [
            Instruction(
                "# turing-image-builder: final image = base + the build stage's files in one layer"
            ),
            Instruction(f"FROM {base}"),
            Instruction(f"COPY --from={BUILD_STAGE} / /"),
        ]
    final = [*start, *(x for x in body if x.keyword in _CONFIG_KEYWORDS)]
    return [*head, *build, *final]


def _env_pair(entry: str) -> str:
    key, _, value = entry.partition("=")
    return f"{key}={_q(value)}"


def config_of(text: str) -> dict[str, list[str]]:
    """Configuration instructions by keyword, in order; used by tests and ``--dockerfile-only``."""
    out: dict[str, list[str]] = {}
    for x in parse(text):
        if x.keyword in _CONFIG_KEYWORDS:
            out.setdefault(x.keyword, []).append(x.text.split(None, 1)[1] if " " in x.text else "")
    return out
