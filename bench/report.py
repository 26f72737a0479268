"""Results: ``bench/results/<date>.json`` (one entry per size, so sizes sit side by side) and a Markdown table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench import rfm as bench_rfm

RESULTS_DIR = Path(__file__).resolve().parent / "results"
SIZE_ORDER = ("large", "default", "small")


def save(date: str, run: dict[str, Any]) -> tuple[Path, Path]:
    RESULTS_DIR.mkdir(exist_ok=True)
    json_path = RESULTS_DIR / f"{date}.json"
    data: dict[str, Any] = {"date": date, "runs": {}}
    if json_path.exists():
        data = json.loads(json_path.read_text())
    data["runs"][run["size"]] = run
    json_path.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
    md_path = RESULTS_DIR / f"{date}.md"
    md_path.write_text(markdown(data))
    return json_path, md_path


def latest_runs() -> dict[str, dict[str, Any]]:
    """The newest run of each size across all result files (for the memory comparison)."""
    runs: dict[str, dict[str, Any]] = {}
    for path in sorted(RESULTS_DIR.glob("*.json")):
        try:
            data = json.loads(path.read_text())
        except ValueError:
            continue
        runs.update(data.get("runs", {}))
    return runs


def _ms(d: dict[str, Any] | None) -> str:
    if not d:
        return "-"
    return f"{d['p50_ms']:.1f} / {d['p99_ms']:.1f} ms"


def _rate(d: dict[str, Any]) -> str:
    return f"{d['events_per_s']:,.0f} ev/s ({d['p50_ms']:.1f} / {d['p99_ms']:.1f} ms)"


def _status(ok: bool | None) -> str:
    return "-" if ok is None else ("met" if ok else "**MISSED**")


def run_table(run: dict[str, Any]) -> str:
    rows = ["| figure | app | raw baseline | app vs raw | target | status |", "| --- | --- | --- | --- | --- | --- |"]
    load = run.get("load")
    if load:
        path = (
            "COPY (bench/bulk.py)"
            if load.get("path") == "COPY"
            else f"`events_upsert` x50, {load['workers']} processes"
        )
        rows.append(
            f"| dataset load: {path} | "
            f"{load['events_per_s']:,.0f} ev/s ({load['load_s']:.0f} s for {load['events']:,}) | - | - | - | - |"
        )
    storage = run.get("dataset", {}).get("storage")
    if storage and storage.get("bytes_per_event") is not None:
        mib = {name: (t["heap_bytes"] + t["index_bytes"]) / 2**20 for name, t in storage["tables"].items()}
        sizes = ", ".join(f"{name.removeprefix('contacts_')} {size:,.0f} MiB" for name, size in mib.items())
        rows.append(
            f"| stored bytes per event (heap + indexes of events and timeline: {sizes}; "
            f"{len(storage['indexes'])} indexes) | {storage['bytes_per_event']:,} B | - | - | "
            f"{storage['target']} B | {_status(storage['met'])} |"
        )
    for row in run.get("ingest", {}).values():
        app, raw = row["app"], row["raw"]
        target = row.get("target")
        floor = row.get("floor")
        share = f"{row['ratio'] * 100:.0f}% of raw rate"
        if floor:
            share += f", {row['floor_ratio'] * 100:.0f}% of floor"
        rows.append(
            f"| ingest {row['label']} | {_rate(app)} | {_rate(raw)} | {share} | "
            f"{target or '-'} | {_status(row.get('met'))} |"
        )
        if floor:
            rows.append(
                f"| ingest floor: the same, one statement into a minimal table | - | {_rate(floor)} | "
                f"raw is {row['raw_floor_ratio'] * 100:.0f}% of floor | - | - |"
            )
    for slug, row in run.get("builds", {}).items():
        same = "same members" if row["equal"] else f"**DIFFERENT members** ({row['diff']})"
        rows.append(
            f"| full build `{slug}` ({row['members']:,} members, {same}; "
            f"median of {row.get('repetitions', 1)}) | {row['app_s']:.2f} s "
            f"(query {row['app_query_s']:.2f} s) | {row['raw_s']:.2f} s (query {row['raw_query_s']:.2f} s) | "
            f"{row['ratio']:.2f}x | <= {row.get('limit', 1.2)}x | {_status(row['met'])} |"
        )
    fresh = run.get("freshness")
    if fresh:
        rows.append(
            f"| freshness: upsert response -> membership visible ({fresh['n']} events, {fresh['timeouts']} timeouts) "
            f"| p50 {fresh['p50_ms'] / 1000:.2f} s / p99 {fresh['p99_ms'] / 1000:.2f} s | - | - | p50 < 2 s | "
            f"{_status(fresh['met'])} |"
        )
    rows += bench_rfm.table_rows(run.get("rfm", {}))
    for row in run.get("reads", {}).values():
        if row.get("app") is None:
            rows.append(f"| {row['label']} | {row.get('note', 'not built yet')} | - | - | - | - |")
            continue
        if row.get("raw") is None:
            target = f"p50 < {row['target_ms']:.0f} ms" if row.get("target_ms") else "-"
            status = _status(row.get("met")) if row.get("target_ms") else "-"
            rows.append(f"| {row['label']} (p50 / p99) | {_ms(row['app'])} | - | - | {target} | {status} |")
            continue
        ratio = row["app"]["p50_ms"] / row["raw"]["p50_ms"] if row["raw"]["p50_ms"] else 0
        rows.append(
            f"| {row['label']} (p50 / p99) | {_ms(row['app'])} | {_ms(row['raw'])} | {ratio:.1f}x p50 | "
            f"{row.get('target', '-')} | {_status(row.get('met'))} |"
        )
    hooks = run.get("webhooks")
    if hooks:
        for key in [k for k in hooks if k.startswith("import_rate")]:
            rate = hooks[key]
            rows.append(
                f"| webhooks: {rate['label']} | {_rate(rate['with'])} | {_rate(rate['none'])} (no subscription) | "
                f"{rate['ratio'] * 100:.0f}% of the no-webhook rate | {rate.get('target') or '-'} | "
                f"{_status(rate.get('met'))} |"
            )
        latency = hooks["latency"]
        rows.append(
            f"| webhooks: {latency['label']} ({latency['n']} upserts, {latency['timeouts']} timeouts) | "
            f"p50 {latency['p50_ms']:.0f} / p99 {latency['p99_ms']:.0f} ms | - | - | p50 < 1 s | "
            f"{_status(latency['met'])} |"
        )
        tp = hooks["throughput"]
        rows.append(
            f"| webhooks: {tp['label']} | {tp['per_s']:,.0f} deliveries/s ({tp['received']:,} in "
            f"{tp['elapsed_s']:.1f} s) | - | - | - | - |"
        )
    memory = run.get("memory")
    if memory:
        web, worker = memory["web"], memory["worker"]
        rows.append(
            f"| peak RSS: web (per gunicorn worker / all {memory['web_workers']} + master) | "
            f"{web['peak_rss_per_process_mib']:.0f} / {web['peak_rss_total_mib']:.0f} MiB | - | - | "
            "flat as N, M grow | - |"
        )
        rows.append(
            f"| peak RSS: celery worker | {worker['peak_rss_per_process_mib']:.0f} MiB | - | - | "
            "flat as N, M grow | - |"
        )
    return "\n".join(rows)


def memory_table(runs: dict[str, dict[str, Any]]) -> str:
    rows = [
        "| size | contacts / events | web: peak per worker | web: all processes | celery worker |",
        "| --- | --- | --- | --- | --- |",
    ]
    for size in sorted(runs, key=lambda s: SIZE_ORDER.index(s) if s in SIZE_ORDER else 99):
        run = runs[size]
        memory = run.get("memory")
        if not memory:
            continue
        rows.append(
            f"| {size} ({run['date']}) | {run['contacts']:,} / {run['events']:,} | "
            f"{memory['web']['peak_rss_per_process_mib']:.0f} MiB | {memory['web']['peak_rss_total_mib']:.0f} MiB | "
            f"{memory['worker']['peak_rss_per_process_mib']:.0f} MiB |"
        )
    return "\n".join(rows)


def _growth_figures(run: dict[str, Any]) -> dict[str, tuple[str, float, str]]:
    """(label, value, unit) of each figure that both sizes measure, for the growth table."""
    figures: dict[str, tuple[str, float, str]] = {}
    if run.get("load"):
        figures["load"] = (f"dataset load ({run['load'].get('path', 'events_upsert')})", run["load"]["load_s"], "s")
    for slug, row in run.get("builds", {}).items():
        figures[f"build_{slug}"] = (f"full build `{slug}`, app", row["app_s"], "s")
        figures[f"build_{slug}_raw"] = (f"full build `{slug}`, raw", row["raw_s"], "s")
    for key, row in run.get("ingest", {}).items():
        figures[f"ingest_{key}"] = (f"ingest {row['label']}, app p50 per request", row["app"]["p50_ms"], "ms")
        figures[f"ingest_{key}_raw"] = (f"ingest {row['label']}, raw p50", row["raw"]["p50_ms"], "ms")
        if row.get("floor"):
            figures[f"ingest_{key}_floor"] = (f"ingest {row['label']}, floor p50", row["floor"]["p50_ms"], "ms")
    for key, row in run.get("reads", {}).items():
        if row.get("app"):
            figures[f"read_{key}"] = (f"{row['label']}, app p50", row["app"]["p50_ms"], "ms")
        if row.get("raw"):
            figures[f"read_{key}_raw"] = (f"{row['label']}, raw p50", row["raw"]["p50_ms"], "ms")
    memory = run.get("memory")
    if memory:
        figures["rss_web"] = ("peak RSS per web worker", memory["web"]["peak_rss_per_process_mib"], "MiB")
        figures["rss_worker"] = ("peak RSS celery worker", memory["worker"]["peak_rss_per_process_mib"], "MiB")
    return figures


# Two runs whose floor single upserts differ by more than this factor ran on machines of
# different speed (seen: 0.3 ms one evening, 1.4-1.8 ms the next morning, the same 2-core kind).
MACHINE_SPEED_TOLERANCE = 1.5


def machine_speed_ratio(before: dict[str, Any], after: dict[str, Any]) -> float | None:
    """How much longer the floor's single upsert took in ``after`` than in ``before`` (None when
    either run has no floor figure): the same statement on a minimal table, so the machine's speed."""
    try:
        was = before["ingest"]["upsert_1"]["floor"]["p50_ms"]
        now = after["ingest"]["upsert_1"]["floor"]["p50_ms"]
    except (KeyError, TypeError):
        return None
    return now / was if was else None


# Issue 14 at the large size: a 50-event import at most 1.5x slower per batch, memory flat.
GROWTH_LIMITS = {"ingest_import_1": 1.5, "ingest_import_8": 1.5, "rss_web": 1.2, "rss_worker": 1.2}


def growth_table(runs: dict[str, dict[str, Any]], small: str = "default", large: str = "large") -> str | None:
    """How each figure grows from the ``small`` size to the ``large`` one (None without both runs)."""
    if small not in runs or large not in runs:
        return None
    before, after = runs[small], runs[large]
    head = f"{small} ({before['contacts']:,} / {before['events']:,}, {before['date']})"
    tail = f"{large} ({after['contacts']:,} / {after['events']:,}, {after['date']})"
    rows = [f"| figure | {head} | {tail} | growth | target | status |", "| --- | --- | --- | --- | --- | --- |"]
    grown = _growth_figures(after)
    speed = machine_speed_ratio(before, after)
    comparable = speed is None or 1 / MACHINE_SPEED_TOLERANCE <= speed <= MACHINE_SPEED_TOLERANCE
    if not comparable:
        rows.insert(
            0,
            f"**Not comparable**: the floor's single upsert (one statement into a minimal table, a measure of the "
            f"machine) took {speed:.2f}x as long in the {large} run as in the {small} one, so these runs were on "
            "machines of different speed and the growth below is mostly theirs. Run both sizes on one machine.\n",
        )
    for key, (label, value, unit) in _growth_figures(before).items():
        if key not in grown:
            continue
        if key == "load" and grown[key][0] != label:
            continue  # loaded by different paths (events_upsert, COPY): no growth figure
        later = grown[key][1]
        factor = later / value if value else 0.0
        limit = GROWTH_LIMITS.get(key)
        target = f"<= {limit}x" if limit else "-"
        judged = comparable or key.startswith("rss_")  # memory does not follow the machine's speed
        status = (_status(factor <= limit) if judged else "not judged") if limit else "-"
        digits = 2 if unit == "s" else 1
        values = f"{value:,.{digits}f} {unit} | {later:,.{digits}f} {unit}"
        rows.append(f"| {label} | {values} | {factor:.2f}x | {target} | {status} |")
    return "\n".join(rows)


def markdown(data: dict[str, Any]) -> str:
    parts = [f"# Benchmark results {data['date']}", ""]
    runs = data["runs"]
    for size in sorted(runs, key=lambda s: SIZE_ORDER.index(s) if s in SIZE_ORDER else 99):
        run = runs[size]
        parts += [
            f"## {size}: {run['contacts']:,} contacts, {run['events']:,} events",
            "",
            f"Run {run['started_at']} in {run['duration_s']:.0f} s on {run['machine']}. "
            f"Ingest and pages go through gunicorn ({run['memory']['web_workers']} sync workers, DEBUG off, "
            "loopback HTTP, client-side wall time); builds run `segment_build` in-process; the Celery worker runs "
            "throughout the HTTP figures. The raw baseline is plain psycopg on the same database "
            "(see bench/baseline.py). Latencies are p50 / p99.",
            "",
            run_table(run),
            "",
        ]
        if run.get("what_dominates"):
            parts += ["### What dominates", "", run["what_dominates"], ""]
        if run.get("profile"):
            parts += [f"Profile ({run['profile']['figure']}): `{run['profile']['text']}`.", ""]
    everything = {**latest_runs(), **runs}
    parts += ["## Memory by size", "", memory_table(everything), ""]
    growth = growth_table(everything)
    if growth:
        parts += ["## Growth from the default size to the large one", "", growth, ""]
    return "\n".join(parts)
