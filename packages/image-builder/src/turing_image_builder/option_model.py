"""Every build option declared once: its flag, config key, type, default, help and reference row.

The click options (:mod:`cli`), the ``[tool.turing-image-build]`` keys and their coercion
(:func:`options.load_config`), the parsing of each raw value into a typed one
(:func:`options.resolve`) and the options table of ``docs/reference/image-builder-cli.md``
(checked by a test against :func:`markdown_table`) are all derived from :data:`OPTIONS`, so a new
option is one entry here plus its field on :class:`options.BuildOptions`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

from turing_scoring_server import contract


class Kind(Enum):
    """How an option is given on the command line and in a config file."""

    TEXT = "text"
    """A string (``--tag x``; ``tag = "x"``)."""
    INT = "int"
    """A positive integer (``--timeout 120``; ``timeout = 120``)."""
    FLAG = "flag"
    """An on-only switch (``--push``; ``push = true``)."""
    SWITCH = "switch"
    """An on/off pair left unset by default (``--legacy/--no-legacy``; ``legacy = false``)."""
    PATH = "path"
    """A file or directory; relative paths in a config file are read relative to it."""
    CHOICE = "choice"
    """One of :attr:`Option.choices`."""


@dataclass(frozen=True)
class Option:
    """One build option. ``name`` is the :class:`options.BuildOptions` field."""

    name: str
    kind: Kind
    help: str
    """The ``--help`` line."""
    doc_default: str
    """The reference table's *default* cell (Markdown)."""
    doc: str
    """The reference table's *meaning* cell (Markdown)."""
    short: str | None = None
    multiple: bool = False
    """Repeatable flag; a string or a list of strings in a config file."""
    default: Any = None
    show_default: bool = False
    choices: tuple[str, ...] = ()
    metavar: str | None = None
    """Shown after the flag in the reference (``--copy SRC:DEST``)."""
    in_config: bool = True
    """Accepted as a ``[tool.turing-image-build]`` key."""
    in_options: bool = True
    """A field of :class:`options.BuildOptions` (``--config`` is not: it says where they are)."""
    long: str | None = None
    """The long flag when it is not the name dashed (``--config`` for ``config_file``)."""
    sets_env: str | None = None
    """The image setting (``ENV``) this option writes: giving it and ``--env`` of the same name
    is refused, as the two would silently disagree."""

    @property
    def flag(self) -> str:
        return self.long or "--" + self.name.replace("_", "-")

    @property
    def key(self) -> str:
        """Config-file key: the long flag without its dashes."""
        return self.flag.removeprefix("--")

    @property
    def decls(self) -> tuple[str, ...]:
        """click's parameter declarations: the flag(s), then the Python name."""
        if self.kind is Kind.SWITCH:
            return (f"{self.flag}/--no-{self.key}", self.name)
        return (self.flag, *((self.short,) if self.short else ()), self.name)

    def doc_flag_cell(self) -> str:
        if self.kind is Kind.SWITCH:
            text = f"`{self.flag}/--no-{self.key}`"
        else:
            text = f"`{self.flag}{' ' + self.metavar if self.metavar else ''}`"
            if self.short:
                text += f", `{self.short}`"
        return text + (" (repeatable)" if self.multiple else "")

    def doc_key_cell(self) -> str:
        if not self.in_config:
            return ""
        suffix = {Kind.INT: " (integer)"}.get(self.kind, "")
        return f"`{self.key}`" + (" (string or list)" if self.multiple else suffix)


ENV_MANAGERS: tuple[str, ...] = contract.MODEL_ENV_MANAGERS
DEFAULT_TAG = "c7-mlflow-pyfunc-sagemaker"

OPTIONS: tuple[Option, ...] = (
    Option(
        "tag", Kind.TEXT, "Image reference (full ref with --push).",
        f"`{DEFAULT_TAG}`",
        "image reference; with `--push` the full reference, registry included; the repository "
        "part must be lower case (Docker's rule, checked before building)",
        short="-t", default=DEFAULT_TAG, show_default=True,
    ),
    Option(
        "model_uri", Kind.TEXT,
        "Bake this model in (any URI MLflow takes); without it: the template image.",
        "none",
        "bake this model in (a path or any URI MLflow accepts): copied to "
        f"`{contract.MODEL_PATH}`, dependencies installed at build time. Without it: the "
        f"template image, model mounted at `{contract.MODEL_PATH}` at run time",
        short="-m",
    ),
    Option(
        "base_image", Kind.TEXT, "Base image (python>=3.10 and pip) [default: MLflow's choice].",
        "MLflow's choice (`python:<model's version>-slim` for baked models, `ubuntu:24.04` "
        "otherwise)",
        "any image with Python >= 3.10 and `pip` on `PATH`; nginx is installed with apt when "
        "missing",
    ),
    Option(
        "env_manager", Kind.CHOICE, "", "`local`",
        "`local`, `virtualenv` or `conda`: how the model's environment is made at start-up "
        "(template images). Baked and legacy images need `local` (the model's dependencies "
        "installed into the image's Python): server 0.1 serves baked models from the image's "
        "Python and legacy images run gunicorn in the model's environment, where the server is "
        "not installed; the builder refuses the other combinations",
        default=ENV_MANAGERS[0], show_default=True, choices=ENV_MANAGERS,
    ),
    Option(
        "install_java", Kind.SWITCH, "Install Java (MLflow decides by default).",
        "MLflow decides (Java flavors)",
        "install a JDK (MLflow's step; Ubuntu base images only)",
    ),
    Option(
        "extra_pip", Kind.TEXT,
        "Extra pip requirement or local wheel (repeatable), e.g. your endpoint plugin.",
        "none",
        "requirement specs from the index, or local wheel files (e.g. your endpoint plugin); all "
        f"land in `{contract.WHEELHOUSE}` and are installed next to the server",
        multiple=True,
    ),
    Option(
        "network", Kind.TEXT, "Network for RUN steps during the build.", "engine default",
        "network for `RUN` steps during the build",
    ),
    Option(
        "platform", Kind.TEXT, "Target platform, e.g. linux/amd64.", "engine default",
        "target platform, e.g. `linux/amd64`",
    ),
    Option(
        "index_url", Kind.TEXT, "pip index for every install in the build.", "pip's",
        "`PIP_INDEX_URL` for every pip call in the build, MLflow's included (kept in the image's "
        "environment, so start-up installs use it too)",
    ),
    Option(
        "extra_index_url", Kind.TEXT, "Extra pip index (repeatable).", "none",
        "`PIP_EXTRA_INDEX_URL`, same scope", multiple=True,
    ),
    Option(
        "build_ca_bundle", Kind.PATH, "CA bundle trusted during the build only (never in a layer).",
        "none",
        "CA bundle pip, requests, curl, git, conda and apt trust during the build; never in a "
        "layer of the image (see below)",
        metavar="FILE",
    ),
    Option(
        "runtime_ca_bundle", Kind.PATH, "CA bundle copied into the image and trusted at run time.",
        "none",
        "CA bundle copied to `/opt/turing/ca/runtime-ca.pem` and trusted at run time "
        "(`PIP_CERT`, `SSL_CERT_FILE`, `REQUESTS_CA_BUNDLE`, ...), for template images that "
        "install the model's dependencies at start-up through a TLS-intercepting proxy",
        metavar="FILE",
    ),
    Option(
        "dockerfile_only", Kind.PATH,
        "Write the build context to DIR and stop (no engine needed).", "off",
        "write the complete build context (Dockerfile, model, wheels, CA files) to `DIR` (new or "
        "empty) and print the `docker build` command; needs no engine",
        metavar="DIR",
    ),
    Option(
        "push", Kind.FLAG, "Push to the registry named in --tag.", "off",
        "push `--tag` to its registry after the build", default=False,
    ),
    Option(
        "ecr", Kind.FLAG, "Push to AWS ECR (boto3 auth, repository created when missing).", "off",
        "push to AWS ECR: credentials from boto3's usual chain, `ecr:GetAuthorizationToken` for "
        "the docker login, repository created when missing (as `mlflow sagemaker "
        "build-and-push-container` does, without the AWS CLI). Needs `pip install "
        "'turing-image-builder[ecr]'`",
        default=False,
    ),
    Option(
        "region", Kind.TEXT, "AWS region for --ecr.", "boto3's (`AWS_DEFAULT_REGION`, profile)",
        "ECR region; only with `--ecr`",
    ),
    Option(
        "repository", Kind.TEXT, "ECR repository for --ecr [default: the --tag's name].",
        "the repository part of `--tag`",
        "ECR repository; the image tag is `--tag`'s tag part (`latest` when none)",
    ),
    Option(
        "server_version", Kind.TEXT,
        "Server version or specifier [default: the installed server's version].",
        "the version of the `turing-scoring-server` installed next to the builder",
        "a version (`0.1.3`, meaning `==`) or a specifier (`>=0.1.2`), always intersected with "
        "the versions this builder supports",
        metavar="SPEC",
    ),
    Option(
        "server_wheel", Kind.PATH, "Install the server from this wheel.", "none",
        "install the server from this wheel (no index needed)", metavar="FILE",
    ),
    Option(
        "server_source", Kind.PATH,
        "Build the server wheel from this source directory (hatch).", "none",
        "build the server's wheel from this source tree with `hatch build -t wheel` into the "
        "context (`pip install 'turing-image-builder[source]'`)",
        metavar="DIR",
    ),
    Option(
        "mlflow_version", Kind.TEXT, "MLflow in the image [default: the builder's own].",
        "the builder's own MLflow version",
        "MLflow in the image ({{ mlflow_supported }} are tested, see [MLflow "
        "versions](../compatibility.md)): MLflow's `pip install mlflow==X` step is rewritten "
        "(with `pandas<3`, `numpy<3` for MLflow 2.x). Older than 2.21 means legacy wiring",
    ),
    Option(
        "legacy", Kind.SWITCH, "Wire into MLflow < 2.21's own entrypoint [default: auto].",
        "automatic: legacy exactly when `--mlflow-version` < 2.21",
        "see below; `--legacy` with MLflow >= 2.21 is refused (MLflow no longer runs gunicorn)",
    ),
    Option(
        "env", Kind.TEXT,
        f"KEY=VALUE set in the image (repeatable), e.g. {contract.ENV_PROXY_TIMEOUT}=120; "
        "docker run -e still overrides it.",
        "none",
        "environment variables set in the image after ours (any server setting, e.g. "
        f"`{contract.ENV_PROXY_TIMEOUT}=120`); `docker run -e` still overrides them. A variable "
        "that an option of its own sets (`--timeout`, `--max-body-size`) is refused next to "
        "that option (see [precedence](#precedence))",
        multiple=True, metavar="KEY=VALUE",
    ),
    Option(
        "label", Kind.TEXT, "KEY=VALUE image label (repeatable).", "none", "extra image labels",
        multiple=True, metavar="KEY=VALUE",
    ),
    Option(
        "full_mlflow", Kind.FLAG,
        "Install the whole mlflow distribution (tracking server, UI, pyarrow...) instead of "
        "the lean mlflow-skinny.",
        "off (lean)",
        "install the whole `mlflow` distribution as MLflow's own Dockerfile does, instead of the "
        "lean `mlflow-skinny` (see [lean images](#lean-images))",
        default=False,
    ),
    Option(
        "timeout", Kind.INT,
        "Seconds a request may take; raises the app's, gunicorn's and nginx's limits together "
        "[default: 60, MLflow's].",
        "60",
        f"how long one request may take: sets `{contract.ENV_REQUEST_TIMEOUT}`, from which the "
        "server derives nginx's proxy timeouts (+5 s) and gunicorn's worker timeout (+30 s), so "
        "every layer is raised together. Past it the answer is a 504 JSON `DEADLINE_EXCEEDED`",
        metavar="SECONDS", sets_env=contract.ENV_REQUEST_TIMEOUT,
    ),
    Option(
        "max_body_size", Kind.TEXT,
        "Largest request body nginx accepts, e.g. 500m [default: 100m].", "`100m`",
        f"`{contract.ENV_MAX_BODY_SIZE}`: the largest body nginx accepts (413 JSON above it); "
        f"`/invocations` alone: `--env {contract.ENV_INVOCATIONS_MAX_BODY_SIZE}=1g`",
        metavar="SIZE", sets_env=contract.ENV_MAX_BODY_SIZE,
    ),
    Option(
        "apt_packages", Kind.TEXT,
        "Debian packages to install (repeatable, or space/comma separated), e.g. libgomp1.",
        "none",
        "Debian packages installed right after `FROM` (space or comma separated; `name`, "
        "`name:arch`, `name=version`), e.g. `libgomp1` for LightGBM and XGBoost models",
        multiple=True, metavar="PKGS",
    ),
    Option(
        "dockerfile_snippet", Kind.PATH,
        "Dockerfile lines inserted after the model's dependencies, before the server "
        "(repeatable; no FROM, ENTRYPOINT or CMD).",
        "none",
        "Dockerfile lines inserted after MLflow's steps (the model and its dependencies) and "
        "before nginx and the server (step 3 above). Any instruction but `FROM`, `ENTRYPOINT` "
        "and `CMD`; files it needs come in with `--copy`",
        multiple=True, metavar="FILE",
    ),
    Option(
        "copy", Kind.TEXT,
        "SRC:DEST file or directory copied into the image (repeatable), before the snippets.",
        "none",
        "a file or directory copied into the image before the snippets (`DEST` absolute; a "
        "directory's contents land in `DEST`)",
        multiple=True, metavar="SRC:DEST",
    ),
    Option(
        "nginx_server_snippet", Kind.PATH,
        "nginx directives for the server block (repeatable); checked with nginx -t.", "none",
        "nginx directives included in the `server` block (headers, timeouts, `limit_req`...), "
        f"copied to `{contract.NGINX_SNIPPETS_DIR}/server.d/`; see [custom "
        "endpoints](../custom-endpoints.md#nginx-settings-and-snippets)",
        multiple=True, metavar="FILE",
    ),
    Option(
        "nginx_location_snippet", Kind.PATH,
        "nginx directives for every proxied location (repeatable); checked with nginx -t.",
        "none",
        "nginx directives included in `/invocations` and the catch-all location (every app "
        f"route, not `/ping`), copied to `{contract.NGINX_SNIPPETS_DIR}/location.d/`",
        multiple=True, metavar="FILE",
    ),
    Option(
        "nginx_template", Kind.PATH,
        "Your whole nginx.conf template (last resort; see the docs); checked with nginx -t.",
        "the packaged template",
        "your whole nginx.conf template with the server's `@PLACEHOLDERS@` (start from "
        f"`{' '.join(contract.RENDER_NGINX_CHECK_COMMAND[:2])}`'s source, `nginx.conf` in the "
        "package); copied to "
        f"`{contract.NGINX_SNIPPETS_DIR}/nginx.conf.template` and named by "
        f"`{contract.ENV_NGINX_TEMPLATE}`. "
        "Not for legacy images",
        metavar="FILE",
    ),
    Option(
        "config_file", Kind.PATH,
        "TOML file with [tool.turing-image-build] [default: ./pyproject.toml].",
        "`./pyproject.toml` when present",
        "TOML with a `[tool.turing-image-build]` table (a dedicated file may hold the keys at "
        "top level)",
        metavar="FILE", in_config=False, in_options=False, long="--config",
    ),
    Option(
        "verbose", Kind.FLAG,
        "Print the build's whole output as it runs, and tracebacks with errors.", "off",
        "the build's whole output as it runs, and tracebacks with errors",
        short="-v", default=False, in_config=False,
    ),
)  # fmt: skip
"""In ``--help`` and reference order."""

BY_NAME: dict[str, Option] = {o.name: o for o in OPTIONS}
CONFIG_KEYS: tuple[str, ...] = tuple(o.key for o in OPTIONS if o.in_config)
"""Keys accepted in ``[tool.turing-image-build]``."""


def markdown_table() -> str:
    """The reference's options table, row for row."""
    rows = ["| flag | config key | default | meaning |", "| --- | --- | --- | --- |"]
    rows += [
        f"| {o.doc_flag_cell()} | {o.doc_key_cell()} | {o.doc_default} | {o.doc} |" for o in OPTIONS
    ]
    return "\n".join(rows)
