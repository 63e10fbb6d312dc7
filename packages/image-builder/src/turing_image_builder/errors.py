"""One error base for the builder; the CLI turns any of them into one line and a non-zero exit."""

from __future__ import annotations


class BuilderError(Exception):
    """Base of every error the builder raises on purpose; its message is the one line users see."""

    exit_code: int = 1


class OptionsError(BuilderError):
    """An option or config key has a value the builder cannot use."""

    exit_code = 2


class VersionError(OptionsError):
    """A requested MLflow or server version cannot be combined with this builder or mode."""


class EngineError(BuilderError):
    """No Docker engine answers, or it refused a request."""


class BuildError(BuilderError):
    """``docker build`` failed; the message names the failed step and the saved log."""


class PushError(BuilderError):
    """Pushing the image (or authenticating to its registry) failed."""


class VerifyError(BuilderError):
    """``verify`` could not run its checks at all (failed checks are reported in the table)."""
