"""`Application`: what every command is handed (click's context object): the one terminal,
opening the store, picking a study, showing or making the test evaluation. `abort` is the
one way a command reports an error."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from tuner.wording import clipped, plural, printable
from tuner.errors import UserError

if TYPE_CHECKING:
    from tuner.store import Evaluation, SearchStore
    from tuner.ui.terminal import Terminal


MAX_ERROR = 1500  # characters of an error line; a path near PATH_MAX is clipped in its middle


def abort(message: str, code: int = 2) -> NoReturn:
    """One line on stderr, then the exit code (2: the input; 1: the search stopped or the system
    refused; 130 Ctrl-C; 129 SIGHUP; 143 SIGTERM)."""
    # One line, and only text: a path or URL the user gave may hold a terminal's escape sequences.
    # At most MAX_ERROR characters: a 20,000-character `--set` value made a 40,000-character line.
    line = clipped(printable(" ".join(str(message).split())), MAX_ERROR) or "failed"
    try:
        from tuner.ui.terminal import Terminal

        Terminal().error(line)
    except BaseException:  # interrupted while importing, say: the line must still come out
        sys.stderr.write(f"error: {line}\n")
    if code in (129, 130, 143):
        # A signal may have cut native code (TensorFlow's threads) short, which can crash the
        # interpreter's teardown: leave at once, with what was written flushed.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


class Application:
    def __init__(self) -> None:
        self._terminal: Terminal | None = None

    @property
    def terminal(self) -> Terminal:
        """Made on first use: rich is imported only by commands that print."""
        if self._terminal is None:
            from tuner.ui.terminal import Terminal

            self._terminal = Terminal()
        return self._terminal

    def open_store(self, storage: str | None, results_dir: Path, heartbeat: bool = False,
                   create: bool = False) -> SearchStore:
        """The store; only `create` (the search) may create a database or a results folder."""
        from tuner.store import SearchStore

        return SearchStore(storage, results_dir, heartbeat=heartbeat, create=create)

    def pick_study(self, store: SearchStore, study: str | None) -> str:
        """The named study, or the only one in the storage."""
        if study is not None:
            store.studies.require(study)
            return study
        names, unreadable = store.studies.names(), store.studies.unreadable()
        if len(names) + len(unreadable) == 1:  # one that cannot be read may be the one meant: say why
            if unreadable:
                raise unreadable[0][1]
            return names[0]
        names += [name for name, _ in unreadable]
        raise UserError("no studies in the storage yet; run `tune search` first" if not names else
                        f"several studies in the storage; pick one with --study ({', '.join(names)})")

    def show_evaluation(self, record: Evaluation, meta: dict[str, Any]) -> None:
        from tuner.ui.board import shows_balanced
        from tuner.ui.tables import evaluation_tables

        for table in evaluation_tables(record, shows_balanced(meta)):
            self.terminal.console.print(table)

    def evaluation(self, store: SearchStore, study: str, data: Path | None, top: int = 10, size: int = 20,
                   metric: str = "auto", when: str = "changed", refit: bool = False,
                   show: bool = True) -> Evaluation:
        """The latest recorded evaluation, or a new one: `when` is 'changed' (the study has
        finished trials the record does not cover), 'missing' (no record yet) or 'always'; with
        `refit`, a record without a refit counts as missing. Shown unless `show` is False."""
        from tuner import config
        from tuner.ensemble.evaluate import run_ensemble
        from tuner.ensemble.export import trials_named

        record = store.evaluations.latest(study)
        finished = store.trials.count_finished(study)
        stale = record is not None and record.n_finished != finished
        if refit and record is not None and record.refit is None:
            record = None
        say: Any = self.terminal.info if show else (lambda line: None)
        if record is not None and when != "always" and not (when == "changed" and stale):
            trials_named(store, study, record)  # a record naming trials the study lacks is damaged: one line
            say(f"recorded evaluation of {record.when}; the test set was not read again"
                + (f" (the study has {plural(finished - record.n_finished, 'more finished trial')} since)" if stale else "")
                + "; --reevaluate selects and evaluates anew")
        else:
            store.check_writable(study)
            reads = store.evaluations.test_reads(study)
            intro = (f"selecting an ensemble among the top {plural(top, 'trial')} on validation data"
                     + ("; its members trained again on train + validation" if refit else "")
                     + "; one pass over the test split"
                     + (f" (read {plural(reads, 'time')} before in this study)" if reads else ""))
            record = run_ensemble(store, study, top, size, metric, data, config.cache_dir(), refit, say, intro)
        if show:
            self.show_evaluation(record, store.studies.meta(study))
        return record
