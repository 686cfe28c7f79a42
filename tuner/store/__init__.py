"""The store: typed records over Optuna's RDB storage, and the artifact files beside it."""
