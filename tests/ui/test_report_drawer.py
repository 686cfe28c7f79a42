"""The report's forked drawer: nothing of it reaches the terminal under the command's one line."""

from __future__ import annotations

import multiprocessing
import os
import sys

import pytest


def _write_to_stderr(_: int) -> int:
    sys.stderr.write("Traceback (most recent call last):\n  a drawer's own output\n")
    sys.stderr.flush()
    return os.getpid()


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="the drawer is forked only where it can be")
def test_the_forked_drawer_writes_nothing_to_the_terminal(capfd):
    """A SIGTERM while `tune report` drew its figures ended the command with its one line, and then
    the orphaned drawer, writing into the pipe its parent took with it, printed two tracebacks
    (4 of 7 tries)."""
    from tuner.ui.report import _plain_signals

    with multiprocessing.get_context("fork").Pool(1, initializer=_plain_signals) as pool:
        pid = pool.map(_write_to_stderr, [0])[0]
    assert pid != os.getpid()  # it ran in the drawer
    assert capfd.readouterr().err == ""
