"""Why a process missed the JAX persistent cache: reads the lines that `TUNE_EXPLAIN_CACHE=1`
makes each worker write to its log (`tuner.training.compile_cache.explain_cache`), and sorts every miss into
- new: no other process looked up that program (the same computation) before it;
- written before: another process had the very same key earlier (a read that failed: the
  entry was not there yet, or could not be read);
- same program, differs in PARTS: another process looked up the same computation earlier under
  a key that differs in these other parts (compile_options, accelerator_config, XLA flags, ...):
  what to fix.

    python bench/cache_keys.py results/cifar10/logs/worker-*.log
"""

from __future__ import annotations

import argparse
import collections
import json
import re
from pathlib import Path

PART = re.compile(r"cache-key (\S+) (\d+) (\S+) get_cache_key hash of serialized (.+): ([0-9a-f]+)$")
LOOKUP = re.compile(r"cache-key (\S+) (\d+) (\S+) (Persistent compilation cache hit|PERSISTENT COMPILATION CACHE MISS)"
                    r" for '(.+)' with key '(.+)'$")


def lookups(paths: list[Path]) -> list[dict]:
    """Every lookup in the logs, in time order, with the hashes of its key's parts."""
    found, parts = [], collections.defaultdict(dict)
    for path in paths:
        for line in path.read_text(errors="replace").splitlines():
            if m := PART.search(line):
                parts[(m[2], m[3])][m[4]] = m[5]
            elif m := LOOKUP.search(line):
                found.append({"time": float(m[1]), "pid": m[2], "hit": m[4].startswith("Persistent"), "program": m[5],
                              "key": m[6], "parts": parts.pop((m[2], m[3]), {})})
    return sorted(found, key=lambda r: r["time"])


def explain(found: list[dict]) -> collections.Counter:
    """The cause of each miss (see the module's text)."""
    causes: collections.Counter = collections.Counter()
    for i, miss in enumerate(found):
        if miss["hit"]:
            continue
        program = miss["parts"].get("computation")
        same = [r for r in found[:i] if r["pid"] != miss["pid"] and r["parts"].get("computation") == program]
        if not same:
            causes["new"] += 1
        elif any(r["key"] == miss["key"] for r in same):
            causes["written before"] += 1
        else:
            diffs = [sorted(k for k in miss["parts"] if r["parts"].get(k) != miss["parts"][k]) for r in same]
            causes["same program, differs in " + ", ".join(min(diffs, key=len))] += 1
    return causes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("logs", nargs="+", type=Path)
    args = parser.parse_args()
    found = lookups(args.logs)
    per_pid = collections.Counter((r["pid"], "hits" if r["hit"] else "misses") for r in found)
    print(json.dumps({"lookups": len(found), "per_process": {f"{p} {k}": n for (p, k), n in sorted(per_pid.items())},
                      "misses": dict(explain(found))}, indent=1))


if __name__ == "__main__":
    main()
