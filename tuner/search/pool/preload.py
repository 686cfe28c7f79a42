"""What the helpers' server imports once before it forks them (`tuner.search.pool.processes`):
Keras with TensorFlow, training, the checks and the Optuna engine, the imports that take a
spawned helper 5-8 s on the 2-core CPU. Nothing here may fail the server: an import that fails
is left to the helper, which imports it again and reports the error as it always does."""

import contextlib
import gc
import importlib
import os

# A process group of its own, as each helper takes: a terminal's Ctrl-C or hang-up reaches the
# command, which ends its helpers; the server ends when the command does (its pipe closes).
with contextlib.suppress(OSError):
    os.setpgid(0, 0)

with contextlib.suppress(Exception):
    from tuner.keras_backend import load_keras

    load_keras()
    for module in ("tuner.training.fit", "tuner.training.probes", "tuner.check.playbook",
                   "tuner.search.engines.optuna_engine", "tuner.search.run"):
        importlib.import_module(module)

gc.freeze()  # all of it lives as long as the server: out of the collector's sight in every fork
