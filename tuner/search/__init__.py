"""The search: a request, the runner that runs and records each trial, the engines that
propose parameters, and the pool of worker processes."""
