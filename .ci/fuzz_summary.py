"""Per-operation status distribution of a schemathesis run, read from its HAR report.

    python .ci/fuzz_summary.py fuzz.har

One line per operation (its path under /api/): how many requests, the share answered 2xx, and
the count of each status. An operation reached mostly with 401/403/400 answers is barely
exercised: the fuzz tested the guard, not the operation.
"""

from __future__ import annotations

import json
import sys
from collections import Counter, defaultdict
from urllib.parse import urlsplit


def distribution(har: dict) -> dict[str, Counter[int]]:
    by_operation: dict[str, Counter[int]] = defaultdict(Counter)
    for entry in har["log"]["entries"]:
        path = urlsplit(entry["request"]["url"]).path
        operation = f"{entry['request']['method']} {path.removeprefix('/api/')}"
        by_operation[operation][int(entry["response"]["status"])] += 1
    return by_operation


def main(path: str) -> None:
    with open(path, encoding="utf-8") as file:
        by_operation = distribution(json.load(file))
    # The coverage phase's probes of undocumented methods (each a 405): one line for them all.
    probes = {name for name, counts in by_operation.items() if set(counts) == {405}}
    width = max((len(name) for name in by_operation), default=10)
    total: Counter[int] = Counter()
    print(f"{'operation':<{width}} {'requests':>8} {'2xx':>5}  statuses")
    for name in sorted(set(by_operation) - probes):
        counts = by_operation[name]
        total.update(counts)
        sent = sum(counts.values())
        ok = sum(n for status, n in counts.items() if 200 <= status < 300)
        statuses = " ".join(f"{status}:{n}" for status, n in sorted(counts.items()))
        print(f"{name:<{width}} {sent:>8} {ok / sent:>5.0%}  {statuses}")
    if probes:
        count = sum(sum(by_operation[name].values()) for name in probes)
        print(f"{'other methods (405)':<{width}} {count:>8}")
        total[405] += count
    sent = sum(total.values())
    ok = sum(n for status, n in total.items() if 200 <= status < 300)
    statuses = " ".join(f"{status}:{n}" for status, n in sorted(total.items()))
    print(f"{'all':<{width}} {sent:>8} {(ok / sent) if sent else 0:>5.0%}  {statuses}")


if __name__ == "__main__":
    main(sys.argv[1])
