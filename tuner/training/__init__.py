"""Training: the only package that imports Keras at module level. Backend set-up, the model, the optimizer,
augmentation, initializers, the predictor and the fit loop; nothing here knows about studies."""
