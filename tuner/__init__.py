"""tune: automated hyperparameter search for Keras 3 image classifiers."""

__version__ = "0.1.0"
