#!/usr/bin/env python3
"""Prints the medians of the last `cargo bench --bench latency` run, and the ratios
BENCHMARKS.md reports, from criterion's own estimates under target/criterion."""
import json
import pathlib
import sys

root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "target/criterion")
SIZES = (1024, 10240, 102400)


def us(group, name, size):
    path = root / group / name / str(size) / "new" / "estimates.json"
    return json.loads(path.read_text())["median"]["point_estimate"] / 1000.0


def table(title, columns, rows):
    print(f"\n{title}\n")
    print("| body | " + " | ".join(columns) + " |")
    print("| --- | " + " | ".join("---" for _ in columns) + " |")
    for size, cells in rows:
        print(f"| {size // 1024} KB | " + " | ".join(cells) + " |")


def fmt(v):
    return f"{v:.1f} µs" if v < 100 else f"{v:.0f} µs"


rows = []
for s in SIZES:
    hit, get = us("hit", "dynamodb_hit", s), us("hit", "raw_get_item", s)
    rows.append((s, [fmt(hit), fmt(get), f"**{hit / get:.2f}**", fmt(us("hit", "uncached_origin", s))]))
table("DynamoDB hit vs the raw SDK GetItem of the same item (target ≤ 1.10)",
      ["DynamoDB hit", "raw GetItem", "hit ÷ GetItem", "uncached origin"], rows)

rows = []
for s in SIZES:
    tiered, mem, peer = us("hit", "tiered_hit", s), us("hit", "memory_hit", s), us("hit", "http_cache_reqwest_moka_hit", s)
    rows.append((s, [fmt(tiered), fmt(mem), fmt(peer), f"**{tiered / peer:.2f}**", f"{mem / peer:.2f}"]))
table("In-process hits vs http-cache-reqwest with its moka manager (target ≤ 0.5)",
      ["TieredStore hit", "MemoryStore hit", "http-cache-reqwest moka hit", "tiered ÷ peer", "memory ÷ peer"], rows)

rows = []
for s in SIZES:
    miss, floor = us("miss", "dynamodb_miss", s), us("miss", "origin_get_put", s)
    bg, floor_bg = us("miss", "dynamodb_miss_background_write", s), us("miss", "origin_get", s)
    rows.append((s, [fmt(miss), fmt(floor), f"**{miss / floor:.2f}**", fmt(bg), fmt(floor_bg), f"**{bg / floor_bg:.2f}**"]))
table("Misses vs doing the same calls by hand (target ≤ 1.10)",
      ["miss", "origin + GetItem + PutItem", "ratio", "miss, background write", "origin + GetItem", "ratio"], rows)

rows = []
for s in SIZES:
    hit, get = us("hit_x8", "dynamodb_hit", s), us("hit_x8", "raw_get_item", s)
    # Same work per iteration on both sides (8 operations): throughput ratio = time ratio inverted.
    rows.append((s, [f"{8e6 / hit:.0f}/s", f"{8e6 / get:.0f}/s", f"**{get / hit:.2f}**"]))
table("Throughput with 8 concurrent tasks (target ≥ 0.9)",
      ["DynamoDB hits", "raw GetItems", "hits ÷ GetItems"], rows)
