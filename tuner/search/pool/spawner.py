"""Starting worker processes: each is spawned with its own seed, log file and pipes, then waits,
its imports done, for the parent's go (the search's remaining time)."""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from tuner.search.pool.worker import Target, WarmUp, WorkerSpec, worker_main
from tuner.search.request import SearchRequest
from tuner.store import SearchStore

SEED_STRIDE = 1_000_003  # between workers' sampler seeds


@dataclass
class Launch:
    """A spawned worker: its number (start order), its process, the pipe its go is sent on and
    the read end of its reports."""

    number: int
    process: Any
    go: Connection
    inbox: Connection

    def release(self, remaining: float | None) -> None:
        """Let it search, for `remaining` seconds at most (None: no deadline)."""
        try:
            self.go.send(remaining)
        except OSError:
            pass  # it died meanwhile: the supervisor's reaping reports it and starts another
        self.go.close()

    def discard(self) -> None:
        """End a worker that never got its go: it holds no trial."""
        self.process.kill()
        self.process.join()
        self.inbox.close()


class Spawner:
    """Spawns workers numbered in start order, and with --isolate keeps one standby ready."""

    def __init__(self, store: SearchStore, request: SearchRequest, target: Target, warm_up: WarmUp,
                 retire_growth: float):
        self.store, self.request, self.target, self.warm_up = store, request, target, warm_up
        self.retire_growth = retire_growth
        self.mp = multiprocessing.get_context("spawn")  # a fork would copy a half-initialised backend
        self.started = 0
        self.standby: Launch | None = None

    def take(self) -> Launch:
        """The standby if it is alive, else a new worker."""
        launch, self.standby = self.standby, None
        if launch is not None and launch.process.is_alive():
            return launch
        if launch is not None:
            launch.inbox.close()
        return self.spawn()

    def keep_standby(self) -> None:
        """With --isolate a standby is always ready. It holds about 300 MiB of its own
        (TensorFlow's libraries are shared), and replacing a retiring worker then takes no time
        instead of 5-7 s of imports. Where workers rarely retire (--jobs on JAX) a standby would
        only hold memory, on the GPU too, so there is none."""
        if self.request.isolate and self.standby is None:
            self.standby = self.spawn()

    def close(self) -> None:
        if self.standby is not None:
            self.standby.discard()
            self.standby = None

    def spawn(self) -> Launch:
        number, self.started = self.started, self.started + 1
        # Workers started together see the same number of trials in the study, from which the
        # Optuna engine offsets its seed: without a stride of their own they would propose alike.
        seed = None if self.request.seed is None else (self.request.seed + SEED_STRIDE * number) % 2**32
        request = dataclasses.replace(self.request, retire_growth=self.retire_growth, jobs=1, isolate=False, seed=seed)
        spec = WorkerSpec(self.target, self.warm_up, (self.store.url, self.store.results_dir, self.store.db.heartbeat),
                          request, number, self.request.jobs, os.getpid(), self.log_path(number))
        receive, go = self.mp.Pipe(duplex=False)
        inbox, outbox = self.mp.Pipe(duplex=False)
        process = self.mp.Process(target=worker_main, name=f"tune-worker-{number}", daemon=True,
                                  args=(spec, outbox, receive))
        process.start()
        receive.close()
        outbox.close()  # the worker holds the only write end: its exit reads as end of file here
        return Launch(number, process, go, inbox)

    def log_path(self, worker: int) -> Path:
        return self.store.artifacts.folder(self.request.study, "logs") / f"worker-{worker}.log"
