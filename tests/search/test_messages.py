"""What workers tell their parent, through real pipes: every event arrives typed and in order,
an exited worker's last reports are read before its end, a torn or closed pipe ends only that
worker's inbox."""

from __future__ import annotations

import multiprocessing

from tuner.search.pool.inboxes import Inboxes
from tuner.search.pool.messages import ExitReport, ExitStatus, Forward, Kind, Report, deliver
from tuner.search.pool.supervisor import CrashCount
from tuner.store import TrialRecord


class Recorder:
    def __init__(self):
        self.events: list[tuple] = []

    def search_started(self, setup):
        self.events.append(("search_started", setup))

    def trial_started(self, number, params, max_epochs, plan=""):
        self.events.append(("trial_started", number, params, max_epochs, plan))

    def epoch_ended(self, number, epoch, metrics):
        self.events.append(("epoch_ended", number, epoch, metrics))

    def trial_finished(self, record):
        self.events.append(("trial_finished", record))

    def note(self, message):
        self.events.append(("note", message))


def _pipe():
    inbox, outbox = multiprocessing.get_context("spawn").Pipe(duplex=False)
    return inbox, outbox


def test_a_workers_events_arrive_typed_and_in_order_and_its_exit_report_last():
    inbox, outbox = _pipe()
    record = TrialRecord(4, "complete", 0.9, {"depth": 1}, history={"val_loss": [0.3]})
    forward = Forward(outbox, worker=7)
    forward.search_started({"keras": "3"})
    forward.trial_started(4, {"depth": 1}, 2, "about 0:05 an epoch")
    forward.epoch_ended(4, 0, {"val_accuracy": 0.9})
    forward.note("dropped: the parent showed its own notes")
    forward.trial_finished(record)
    forward.send(Kind.EXIT, ExitReport(ExitStatus.DONE))
    outbox.close()
    reports: list[Report] = []
    inboxes = Inboxes(reports.append)
    inboxes.add(7, inbox)
    inboxes.drain(7)
    assert [r.kind for r in reports] == [Kind.SEARCH_STARTED, Kind.TRIAL_STARTED, Kind.EPOCH_ENDED,
                                         Kind.TRIAL_FINISHED, Kind.EXIT]
    assert {r.worker for r in reports} == {7} and reports[-1].payload == ExitReport(ExitStatus.DONE)
    assert 7 not in inboxes.open  # end of file closed it
    seen = Recorder()
    for r in reports:
        deliver(r, seen)
    assert seen.events == [("trial_started", 4, {"depth": 1}, 2, "about 0:05 an epoch"), ("epoch_ended", 4, 0, {"val_accuracy": 0.9}),
                           ("trial_finished", record)]  # search_started and exit are the supervisor's


def test_reports_are_read_from_whichever_worker_has_one_and_a_closed_pipe_ends_its_inbox_only():
    reports: list[Report] = []
    inboxes = Inboxes(reports.append)
    pipes = {n: _pipe() for n in (0, 1)}
    for n, (inbox, _) in pipes.items():
        inboxes.add(n, inbox)
    Forward(pipes[1][1], 1).trial_started(3, {}, 1)
    inboxes.receive_ready(timeout=1.0)
    assert [(r.worker, r.kind) for r in reports] == [(1, Kind.TRIAL_STARTED)]
    pipes[0][1].close()  # worker 0 died without a word
    inboxes.receive_ready(timeout=1.0)
    assert set(inboxes.open) == {1} and len(reports) == 1
    inboxes.receive_ready(timeout=0.05)  # nothing to read: returns after the timeout
    assert len(reports) == 1


def test_workers_dying_in_a_row_stop_the_search_and_a_finished_trial_resets_the_count():
    crashes = CrashCount(3)
    assert not crashes.died() and not crashes.died()
    crashes.trial_finished()
    assert not crashes.died() and not crashes.died() and crashes.died() and crashes.count == 3
