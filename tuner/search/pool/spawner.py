"""Starting worker processes: each is started (forked from the preloaded server, or spawned:
`tuner.search.pool.processes`) with its own seed, log file and pipes, then waits, its imports
done, for the parent's go (its request as the search finally has it, the
search's deadline with it). Workers can be spawned before the search starts (`prepare`, while the
checks run), so their imports overlap that work."""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from tuner import interrupts
from tuner.search.pool.processes import start_helper, wait_until_ready
from tuner.search.pool.worker import Target, WarmUp, WorkerSpec, worker_main
from tuner.search.request import SearchRequest
from tuner.store import SearchStore

SEED_STRIDE = 1_000_003  # between workers' sampler seeds
RETIRE_GROWTH = 0.15  # memory growth (fraction) after which a worker is replaced


@dataclass
class Launch:
    """A spawned worker: its number (start order), its process, the pipe its go is sent on and
    the read end of its reports."""

    number: int
    process: Any
    go: Connection
    inbox: Connection

    def release(self, request: SearchRequest) -> None:
        """Let it search `request`, until its deadline: the parent's, on the machine's one
        monotonic clock (a worker still importing when released must not count from its end)."""
        try:
            self.go.send(request)
        except OSError:
            pass  # it died meanwhile: the supervisor's reaping reports it and starts another
        self.go.close()

    def discard(self) -> None:
        """End a worker that never got its go: it holds no trial."""
        self.process.kill()
        self.process.join()
        self.inbox.close()


class Spawner:
    """Spawns workers numbered in start order, and with --isolate a standby when asked."""

    def __init__(self, store: SearchStore, request: SearchRequest, target: Target, warm_up: WarmUp):
        self.store, self.request, self.target, self.warm_up = store, request, target, warm_up
        self.retire_growth = RETIRE_GROWTH if request.retire_growth is None else request.retire_growth
        self.started = 0
        self.ready: list[Launch] = []  # spawned ahead by `prepare`, oldest first
        self.standby: Launch | None = None

    def prepare(self) -> None:
        """Spawn the search's workers now; `take` hands them out first."""
        self.ready += [self.spawn() for _ in range(self.request.jobs)]

    def adopt(self, request: SearchRequest) -> None:
        """The search's request as it finally is (the checks' findings added), sent with each go. How
        the workers were started (their share of the machine, the engine they imported) stays."""
        if (request.jobs, request.engine) != (self.request.jobs, self.request.engine):
            raise ValueError("workers spawned ahead were started for other jobs or another engine")
        self.request = request

    def take(self) -> Launch:
        """A worker spawned ahead or the standby if alive, else a new worker."""
        while self.ready or self.standby is not None:
            launch, self.standby = (self.ready.pop(0), self.standby) if self.ready else (self.standby, None)
            if launch.process.is_alive():
                return launch
            launch.inbox.close()
        return self.spawn()

    def release(self, launch: Launch) -> None:
        launch.release(self.worker_request(launch.number))

    def keep_standby(self) -> None:
        """With --isolate, a standby ready (the supervisor asks once a worker is halfway to
        retiring). It holds about 300 MiB of its own (TensorFlow's libraries are shared), and
        replacing a retiring worker then takes no time instead of its start (a spawned one imports
        for 5-7 s; a forked one opens the study and loads its data). Where workers
        rarely retire (--jobs on JAX) a standby would only hold memory, on the GPU too, so there is none."""
        if self.request.isolate and self.standby is None:
            self.standby = self.spawn()

    def close(self) -> None:
        """End the workers that never got their go (idempotent)."""
        for launch in self.ready + ([self.standby] if self.standby is not None else []):
            launch.discard()
        self.ready, self.standby = [], None

    def worker_request(self, number: int) -> SearchRequest:
        # Workers started together see the same number of trials in the study, from which the
        # Optuna engine offsets its seed: without a stride of their own they would propose alike.
        seed = None if self.request.seed is None else (self.request.seed + SEED_STRIDE * number) % 2**32
        return dataclasses.replace(self.request, retire_growth=self.retire_growth, jobs=1, isolate=False, seed=seed)

    def spawn(self) -> Launch:
        number, self.started = self.started, self.started + 1
        spec = WorkerSpec(self.target, self.warm_up, (self.store.url, self.store.results_dir, self.store.db.heartbeat),
                          self.worker_request(number), number, self.request.jobs, os.getpid(), self.log_path(number))
        receive, go = multiprocessing.Pipe(duplex=False)
        inbox, outbox = multiprocessing.Pipe(duplex=False)
        wait_until_ready()  # with signals live: the start below holds them
        with interrupts.starting_own_group():
            process = start_helper(worker_main, (spec, outbox, receive), f"tune-worker-{number}")
        receive.close()
        outbox.close()  # the worker holds the only write end: its exit reads as end of file here
        return Launch(number, process, go, inbox)

    def log_path(self, worker: int) -> Path:
        return self.store.artifacts.folder(self.request.study, "logs") / f"worker-{worker}.log"
