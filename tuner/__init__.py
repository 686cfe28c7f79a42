"""tune: automated hyperparameter search for Keras 3 image classifiers."""

import os

# TensorFlow's C++ start-up chatter drowns the terminal view; errors still show.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"
