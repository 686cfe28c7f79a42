"""The parameter vocabulary and the search spaces: YAML files parsed into a typed `Space`."""
