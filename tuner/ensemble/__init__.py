"""After the search: calibration, ensemble selection, refit, the one test evaluation, export."""
