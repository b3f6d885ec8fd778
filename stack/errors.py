"""Errors the stack reports to a person: one line saying what failed and the fix."""

from __future__ import annotations


class StackError(RuntimeError):
    """A service could not be set up, started or stopped; the message names the fix."""


class ArtefactUnavailable(StackError):
    """A service's binary cannot be obtained on this machine (e.g. the registry refuses it).

    `ensure_go_binary` turns to the next source on it (a vendored source archive);
    when none is left, `up` stops with the message, which names the fix.
    """
