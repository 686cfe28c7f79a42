"""Worker processes: the supervisor that starts and watches them, what they send, and the
worker's own entry point."""
