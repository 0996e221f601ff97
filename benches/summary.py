#!/usr/bin/env python3
"""Prints the medians of the last `cargo bench --bench latency` run and the ratios the README
reports, read from criterion's own estimates under target/criterion."""
import json
import pathlib
import sys

root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "target/criterion")


def median(group, name, size):
    path = root / group / name / str(size) / "new" / "estimates.json"
    return json.loads(path.read_text())["median"]["point_estimate"] / 1000.0  # µs


rows = []
for size in (1024, 10240, 102400):
    hit = median("hit", "dynamodb_hit", size)
    get = median("hit", "raw_get_item", size)
    mem = median("hit", "memory_hit", size)
    origin = median("hit", "uncached_origin", size)
    miss = median("miss", "dynamodb_miss", size)
    floor = median("miss", "origin_get_put", size)
    rows.append((size, hit, get, hit / get, mem, origin, mem / origin, miss, floor, miss / floor))

print("| body | DynamoDB hit | raw GetItem | hit ÷ GetItem | memory hit | uncached origin | memory hit ÷ origin | miss | origin+GetItem+PutItem | miss ÷ floor |")
print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
for s, hit, get, r1, mem, origin, r2, miss, floor, r3 in rows:
    print(f"| {s // 1024} KB | {hit:.0f} µs | {get:.0f} µs | {r1:.2f} | {mem:.1f} µs | {origin:.0f} µs | {r2:.2f} | {miss:.0f} µs | {floor:.0f} µs | {r3:.2f} |")
