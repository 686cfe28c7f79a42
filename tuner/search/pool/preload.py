"""What the helpers' server imports once before it forks them (`tuner.search.pool.processes`):
Keras with TensorFlow, training, the checks, the Optuna engine and scikit-learn's splitter and
digits, the imports that take a spawned helper 6-9 s on the 2-core CPU. Nothing here may fail
the server: an import that fails is left to the helper, which imports it again and reports the
error as it always does."""

import contextlib
import gc
import importlib
import os
import threading

# A process group of its own, as each helper takes: a terminal's Ctrl-C or hang-up reaches the
# command, which ends its helpers; the server ends when the command does (its pipe closes).
with contextlib.suppress(OSError):
    os.setpgid(0, 0)


def _end_with_the_command(command: int, done: threading.Event) -> None:
    """While importing, the server cannot see its pipe close: a command that ended then (refused,
    interrupted, killed) left it importing for seconds, holding the command's output open."""
    while not done.wait(0.2):
        if os.getppid() != command:
            os._exit(0)


_imported = threading.Event()
_watch = threading.Thread(target=_end_with_the_command, args=(os.getppid(), _imported), daemon=True)
_watch.start()
with contextlib.suppress(Exception):
    from tuner.data import SPLITTER
    from tuner.keras_backend import load_keras

    load_keras()
    for module in ("tuner.training.fit", "tuner.training.probes", "tuner.check.playbook",
                   "tuner.search.engines.optuna_engine", "tuner.search.run", SPLITTER, "sklearn.datasets"):
        importlib.import_module(module)
_imported.set()
_watch.join()  # no thread of ours into the forks

gc.freeze()  # all of it lives as long as the server: out of the collector's sight in every fork
