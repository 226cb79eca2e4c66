"""One exception base and the one table of exit codes.

Every error the library raises on purpose is a ``GatesError``; the CLI maps it to its
``exit_code`` and prints its message once. Anything else escaping is a bug and exits 3
(infrastructure), never 0.

Exit codes of every ``gates`` command (docs/cli.md repeats this table):

====  ================  ==========================================================================
code  name              meaning
====  ================  ==========================================================================
0     PASS              the gate passed; the command did what was asked, or there was nothing to do
1     FAIL              the gate rejected the candidate; a canary was rolled back or refused
2     BAD_INPUT         config, data file, argument or event payload is wrong: fix the input
3     INFRA             infrastructure error (a server died, a timeout) or an INCONCLUSIVE verdict
4     NOT_AUTHORIZED    the actor may not do this (promotion.approvers, CODEOWNERS); nothing changed
130   (interrupted)     Ctrl-C or SIGTERM; servers were stopped
====  ================  ==========================================================================
"""

from __future__ import annotations

import enum
from collections.abc import Sequence


class ExitCode(enum.IntEnum):
    PASS = 0
    FAIL = 1  # the gate rejected the candidate
    BAD_INPUT = 2  # config, golden file, event payload
    INFRA = 3  # infrastructure error or INCONCLUSIVE
    NOT_AUTHORIZED = 4  # the actor may not promote, roll back or set the canary; nothing was changed


class GatesError(Exception):
    """Base of every error gates raises deliberately."""

    exit_code: ExitCode = ExitCode.INFRA


class BadInputError(GatesError):
    """The user's input (config, data file, payload) is wrong; fix the input."""

    exit_code = ExitCode.BAD_INPUT


class ConfigError(BadInputError):
    """A pipeline config is invalid; the message names file, key path and line."""

    def __init__(self, message: str, path: str | None = None, line: int | None = None):
        super().__init__(message)
        self.path = path  # where CI annotations point (the first problem)
        self.line = line


class DataError(BadInputError):
    """A data file (golden suite, calibration set) failed its expectations."""


class UnsupportedError(BadInputError):
    """The config asks for something this machine cannot do (e.g. a GPU-only format)."""


class NotAuthorizedError(GatesError):
    """The actor may not do what was asked (``promotion.approvers``, CODEOWNERS); nothing was changed."""

    exit_code = ExitCode.NOT_AUTHORIZED


class InfraError(GatesError):
    """Something we depend on broke: a server died, a timeout, a tool is missing."""

    exit_code = ExitCode.INFRA


class SubprocessError(InfraError):
    """A child process failed; the message shows command, exit code, stdout and stderr."""

    def __init__(self, what: str, cmd: Sequence[str], returncode: int | None, stdout: str, stderr: str):
        self.cmd = list(cmd)
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        super().__init__(
            f"{what}\n  command: {' '.join(self.cmd)}\n  exit code: {returncode}\n"
            f"  stdout:\n{_indent(_tail(stdout))}\n  stderr:\n{_indent(_tail(stderr))}"
        )


def _tail(text: str, limit: int = 4000) -> str:
    return text if len(text) <= limit else "…" + text[-limit:]


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in (text.rstrip() or "(empty)").splitlines())


class CapabilityError(InfraError):
    """This machine lacks what a valid config needs (a GPU, TensorRT-LLM); run it elsewhere."""
