"""Trials in worker processes.

`--jobs N` runs N worker processes on one study at once. They cooperate through the store
exactly as workers on several machines do, so on one GPU one trial compiles while another
trains. A worker also retires, and a fresh process takes its slot, once its resident memory
grew by `RETIRE_GROWTH` over what it was after its first trial: TensorFlow keeps every traced
trial's graphs for the life of its process (tensorflow/tensorflow#61791), so on that backend
even one job trains in a worker. A worker that dies (out of host memory, a crash in native
code) costs its running trial only; another takes its place.

The parent never imports Keras. It shows what its workers report, forwards Ctrl-C to them
once per press (they run in their own process group) and turns their exit reports back into
the errors an in-process search raises. Each worker reports through a pipe of its own: a worker
killed while it writes (the out-of-memory killer's SIGKILL) must not hold a lock that the others'
reports wait on, as one shared multiprocessing.Queue's writer lock did.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import signal
import threading
import time
import traceback
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any, Callable

from tuner import interrupts
from tuner.errors import SearchStopped, UserError, describe_fault
from tuner.search.observer import SearchObserver
from tuner.search.runner import fail_own_trials
from tuner.store import SearchStore, TrialRecord

RETIRE_GROWTH = 0.15  # memory growth (fraction) after which a worker is replaced
STOP_WAIT_SECONDS = 30.0  # after a second Ctrl-C: time for workers to record their trial
POLL_SECONDS = 0.5
SEED_STRIDE = 1_000_003  # between workers' sampler seeds

# target(store, request, observer) -> True when the study is done, False when the worker retired
Target = Callable[[SearchStore, Any, SearchObserver], bool]
WarmUp = Callable[[Any], None]  # warm_up(request): a standby worker's slow imports


def run_workers(store: SearchStore, request: Any, observer: SearchObserver, target: Target, warm_up: WarmUp) -> None:
    """Run `target` in `request.jobs` worker processes until the study is done. Raises
    KeyboardInterrupt after Ctrl-C, SearchStopped or UserError as a worker reported it."""
    _Pool(store, request, observer, target, warm_up).run()


class _Pool:
    """Workers are numbered in start order (their log files too); at most `jobs` run at once.
    With --isolate a standby worker waits with its imports done, so that a retiring worker is
    replaced at once."""

    def __init__(self, store: SearchStore, request: Any, observer: SearchObserver, target: Target, warm_up: WarmUp):
        self.store, self.request, self.observer, self.target, self.warm_up = store, request, observer, target, warm_up
        self.mp = multiprocessing.get_context("spawn")  # a fork would copy a half-initialised backend
        self.inboxes: dict[int, Connection] = {}  # worker -> the read end of its reports
        self.workers: dict[int, Any] = {}
        self.standby: tuple[int, Any, Any, Connection] | None = None  # (number, process, its start pipe, inbox)
        self.started = 0
        self.growth = RETIRE_GROWTH if request.retire_growth is None else request.retire_growth
        self.reports: dict[int, tuple[str, str]] = {}  # worker -> (status, message) of its exit
        self.deadline = None if request.timeout is None else time.monotonic() + request.timeout
        self.announced = False
        self.crashes = 0  # workers that died in a row, without a trial finishing in between
        self.fatal: Exception | None = None
        self.forwarded = False
        self.next_reap = 0.0
        self.pids: set[int] = set()  # of every worker started: their trials are failed if left running

    def run(self) -> None:
        try:
            for _ in range(self.request.jobs):
                self._start()
            while self.workers:
                self._step()
        except KeyboardInterrupt as e:
            # Their second Ctrl-C, or SIGTERM passed on: they fail their running trial now.
            self._signal(signal.SIGTERM if interrupts.cause(e) == "SIGTERM" else signal.SIGINT)
            raise
        finally:
            self._wait_or_kill()
            fail_own_trials(self.store, self.request.study, self.pids)
        if self.fatal is not None:
            raise self.fatal
        if interrupts.requested():
            raise KeyboardInterrupt

    def _step(self) -> None:
        if interrupts.requested() and not self.forwarded:
            self.forwarded = True
            self._signal(signal.SIGINT)
        self._receive_ready(POLL_SECONDS)
        if time.monotonic() >= self.next_reap:  # also while busy workers report without pause
            self.next_reap = time.monotonic() + POLL_SECONDS
            self._reap()

    def _start(self) -> None:
        """Start a worker: the standby if there is one, else a new process."""
        if self.standby is None or not self.standby[1].is_alive():
            if self.standby is not None:
                self.standby[3].close()
            self.standby = self._spawn()
        number, process, go, inbox = self.standby
        self.standby = None
        self.inboxes[number] = inbox
        remaining = None if self.deadline is None else max(self.deadline - time.monotonic(), 0.0)
        try:
            go.send(remaining)  # its timeout: the search's deadline counts from the parent's start
        except OSError:
            pass  # it died meanwhile: _reap reports it and starts another
        go.close()
        self.workers[number] = process
        self.pids.add(process.pid)
        if self.request.isolate and self._may_continue():
            # With --isolate a standby is always ready. It holds about 300 MiB of its own
            # (TensorFlow's libraries are shared), and replacing a retiring worker then takes no
            # time instead of 5-7 s of imports. Where workers rarely retire (--jobs on JAX) a
            # standby would only hold memory, on the GPU too, so there is none.
            self.standby = self._spawn()

    def _spawn(self) -> tuple[int, Any, Any]:
        number, self.started = self.started, self.started + 1
        # Workers started together see the same number of trials in the study, from which the
        # Optuna engine offsets its seed: without a stride of their own they would propose alike.
        seed = None if self.request.seed is None else (self.request.seed + SEED_STRIDE * number) % 2**32
        request = dataclasses.replace(self.request, retire_growth=self.growth, jobs=1, isolate=False, seed=seed)
        spec = (self.store.url, self.store.results_dir, self.store.heartbeat)
        receive, go = self.mp.Pipe(duplex=False)
        inbox, outbox = self.mp.Pipe(duplex=False)
        process = self.mp.Process(target=_worker_main, name=f"tune-worker-{number}", daemon=True,
                                  args=(self.target, self.warm_up, spec, request, number, self.request.jobs,
                                        outbox, os.getpid(), self.log_path(number), receive))
        process.start()
        receive.close()
        outbox.close()  # the worker holds the only write end: its exit reads as end of file here
        return number, process, go, inbox

    def log_path(self, worker: int) -> Path:
        return self.store.artifacts.folder(self.request.study, "logs") / f"worker-{worker}.log"

    def _dispatch(self, kind: str, worker: int, payload: Any) -> None:
        if kind == "exit":
            self.reports[worker] = payload
        elif kind == "search_started":
            if not self.announced:
                self.announced = True
                self.observer.search_started({**payload, "jobs": str(self.request.jobs)})
        elif kind == "trial_finished":
            self.crashes = 0
            self.observer.trial_finished(payload)
        else:  # trial_started, epoch_ended
            getattr(self.observer, kind)(*payload)

    def _reap(self) -> None:
        for worker, process in list(self.workers.items()):
            if process.is_alive():
                continue
            process.join()
            self._drain(worker)  # its last reports may still be in the pipe
            del self.workers[worker]
            self._after_exit(worker, self.reports.pop(worker, None), process.exitcode)

    def _receive_ready(self, timeout: float) -> None:
        senders = {conn: worker for worker, conn in self.inboxes.items()}
        for conn in wait(list(senders), timeout=timeout):
            self._receive(senders[conn])

    def _receive(self, worker: int) -> bool:
        """Dispatch one report of `worker`; False (and its inbox closed) once it has no more."""
        conn = self.inboxes[worker]
        try:
            report = conn.recv()
        except (EOFError, OSError):  # it exited (or was killed mid-write: a torn report is dropped)
            conn.close()
            del self.inboxes[worker]
            return False
        self._dispatch(*report)
        return True

    def _drain(self, worker: int) -> None:
        while worker in self.inboxes and self._receive(worker):
            pass

    def _after_exit(self, worker: int, report: tuple[str, str] | None, exitcode: int | None) -> None:
        status, message = report or ("died", f"exit code {exitcode}")
        if status == "done" or status == "interrupted":
            return
        if status == "stopped":
            return self._fail(SearchStopped(message))
        if status == "error":
            return self._fail(UserError(message))
        if status != "retired" and not interrupts.requested():
            self.crashes += 1
            last = message.strip().splitlines()[-1] if message.strip() else "no message"
            self.observer.note(f"worker {worker} ended unexpectedly ({last}); its running trial is marked failed"
                               f"; log: {self.log_path(worker)}")
            if self.crashes >= self.request.max_failures:
                return self._fail(SearchStopped(f"{self.crashes} worker processes died in a row; stopping"))
        if self._may_continue():
            self._start()

    def _may_continue(self) -> bool:
        late = self.deadline is not None and time.monotonic() >= self.deadline
        return self.fatal is None and not interrupts.requested() and not late

    def _fail(self, error: Exception) -> None:
        if self.fatal is None:
            self.fatal = error
            self._signal(signal.SIGINT)  # the others stop at their epoch's end

    def _signal(self, signum: int) -> None:
        for process in self.workers.values():
            if process.is_alive() and process.pid is not None:
                try:
                    os.kill(process.pid, signum)
                except ProcessLookupError:
                    pass

    def _wait_or_kill(self) -> None:
        if self.standby is not None:
            process = self.standby[1]
            process.kill()  # it holds no trial
            process.join()
            self.standby[3].close()
        deadline = time.monotonic() + STOP_WAIT_SECONDS
        while any(p.is_alive() for p in self.workers.values()) and time.monotonic() < deadline:
            self._receive_ready(0.1)  # a worker blocked on a full pipe could not end
        for process in self.workers.values():
            if process.is_alive():
                process.kill()  # its trial is failed later: its pid is gone (tuner.store.workers)
            process.join()


class _Forward:
    """A worker's observer: every event goes to the parent. Notes are dropped: the only ones
    come from opening the study, which the parent did first and showed."""

    def __init__(self, outbox: Connection, worker: int):
        self.outbox, self.worker = outbox, worker

    def search_started(self, setup: dict[str, str]) -> None:
        self._send("search_started", setup)

    def trial_started(self, number: int, params: dict[str, Any], max_epochs: int) -> None:
        self._send("trial_started", (number, params, max_epochs))

    def epoch_ended(self, number: int, epoch: int, metrics: dict[str, float]) -> None:
        self._send("epoch_ended", (number, epoch, metrics))

    def trial_finished(self, record: TrialRecord) -> None:
        self._send("trial_finished", record)

    def note(self, message: str) -> None:
        pass

    def _send(self, kind: str, payload: Any) -> None:
        try:
            self.outbox.send((kind, self.worker, payload))
        except (BrokenPipeError, ConnectionResetError):
            # The parent is gone (killed). Raising here would record the running trial as failed
            # with this error; ending at once leaves it running under a dead pid, which the next
            # run marks interrupted, as for a parent killed together with its workers.
            os._exit(3)


def _worker_main(target: Target, warm_up: WarmUp, spec: tuple[str, Path, bool], request: Any, worker: int, jobs: int,
                 outbox: Connection, parent: int, log_path: Path, go: Any) -> None:
    os.setpgid(0, 0)  # a terminal's Ctrl-C reaches the parent only, which forwards it once
    _log_to(log_path)
    _exit_with(parent)
    _share_device(jobs)
    warm_up(request)
    try:
        timeout = go.recv()
    except EOFError:
        return  # not needed after all
    request = dataclasses.replace(request, timeout=timeout)
    os.write(2, f"--- worker pid {os.getpid()} started {time.strftime('%Y-%m-%d %H:%M:%S')}\n".encode())
    try:
        with interrupts.catching_ctrl_c():
            done = target(SearchStore(*spec), request, _Forward(outbox, worker))
        report = ("done" if done else "retired", "")
    except KeyboardInterrupt:
        report = ("interrupted", "")
    except SearchStopped as e:
        report = ("stopped", str(e))
    except UserError as e:
        report = ("error", str(e))
    except BaseException as e:
        traceback.print_exc()
        fault = describe_fault(e) if isinstance(e, Exception) else None  # a full disk, a read-only database
        report = ("stopped", fault) if fault else ("crashed", traceback.format_exc())
    _Forward(outbox, worker)._send("exit", report)
    outbox.close()


def _log_to(path: Path) -> None:
    """The worker's stderr (backend warnings, tracebacks) goes to a log file: in the terminal it
    would tear the parent's live view."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o644)  # never through a link
    os.dup2(fd, 2)
    os.close(fd)


def _exit_with(parent: int) -> None:
    """End this worker soon after its parent is gone (killed): its trial is failed by the next run."""
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(3)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _share_device(jobs: int) -> None:
    """With several workers on one machine: a share of the GPU's memory (JAX preallocates 75%
    by default) and of the CPU's threads each. A user's own settings win."""
    if jobs <= 1:
        return
    os.environ.setdefault("XLA_PYTHON_CLIENT_MEM_FRACTION", f"{0.9 / jobs:.2f}")
    os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")
    threads = str(max(1, (os.cpu_count() or 1) // jobs))
    for name in ("OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS"):
        os.environ.setdefault(name, threads)
