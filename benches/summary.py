#!/usr/bin/env python3
"""Prints the tables BENCHMARKS.md shows, from the last `cargo bench --bench latency` run:
criterion's own estimates (medians) under target/criterion, and the bench's capacity.json,
concurrency.json and paired.json beside them. Every ratio compares two measurements of the same
run."""
import json
import pathlib
import statistics
import sys

root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "target/criterion")
SIZES = (1024, 10240, 102400)
DELAYS = (0, 1, 5)
# On-demand prices, us-east-1, Standard table class (since November 2024), US dollars per
# million request units. Reads are eventually consistent: half a unit per 4 KB.
WRITE_PRICE, READ_PRICE = 0.625, 0.125


def us(group, name, size):
    path = root / group / name / str(size) / "new" / "estimates.json"
    return json.loads(path.read_text())["median"]["point_estimate"] / 1000.0


def fmt(v):
    if v >= 10_000:
        return f"{v / 1000:.1f} ms"
    return f"{v:.1f} µs" if v < 100 else f"{v:.0f} µs"


def turns(samples):
    """The median of the samples' ratios, and their range."""
    ratios = [op / base for base, op in samples]
    return statistics.median(ratios), min(ratios), max(ratios)


# Every paired measurement (see `paired` in latency.rs), by `group/name/size`.
try:
    PAIRED = dict(json.loads((root / "paired.json").read_text()))
except FileNotFoundError:
    PAIRED = {}


def table(title, first, columns, rows):
    print(f"\n{title}\n")
    print(f"| {first} | " + " | ".join(columns) + " |")
    print("| --- | " + " | ".join("---" for _ in columns) + " |")
    for label, cells in rows:
        print(f"| {label} | " + " | ".join(cells) + " |")


def kb(size):
    return f"{size // 1024} KB"


# Hits and misses at each network setting.
for d in DELAYS:
    hit, miss = f"net{d}ms_hit", f"net{d}ms_miss"
    rows = []
    for s in SIZES:
        h, g = us(hit, "dynamodb_hit", s), us(hit, "raw_get_item", s)
        m, f = us(miss, "dynamodb_miss", s), us(miss, "origin_get_put", s)
        # The miss in turns with its floor (GetItem, origin, PutItem); measured apart in runs
        # before it was also measured in turns (marked *).
        samples = PAIRED.get(f"{miss}/dynamodb_miss_paired/{s}")
        inline = "**%.2f** (%.2f–%.2f)" % turns(samples) if samples else f"**{m / f:.2f}***"
        # The miss with background writes, in turns with its floor (GetItem, origin, and the
        # PutItem in a task not waited for): the median of the samples' ratios and their range.
        samples = PAIRED.get(f"{miss}/dynamodb_miss_background_write_paired/{s}")
        if samples:
            fb = statistics.median(b for b, _ in samples)
            b = statistics.median(o for _, o in samples)
            bg = "**%.2f** (%.2f–%.2f)" % turns(samples)
        else:
            # Runs before the floor made the PutItem too: GetItem and origin only (marked *).
            b, fb = us(miss, "dynamodb_miss_background_write", s), us(miss, "origin_get", s)
            bg = f"**{b / fb:.2f}***"
        rows.append((kb(s), [fmt(h), fmt(g), f"**{h / g:.2f}**", fmt(m), fmt(f), inline,
                             fmt(b), fmt(fb), bg]))
    where = "loopback, no proxy" if d == 0 else f"{d} ms each way to DynamoDB"
    table(f"Network {d} ms ({where}): targets hit ≤ 1.05, miss ≤ 1.10, background-write miss ≤ 1.10",
          "body", ["hit", "raw GetItem", "hit ÷ GetItem", "miss", "origin + GetItem + PutItem", "miss ÷ floor, in turns",
                   "miss, background write", "origin + GetItem + PutItem not waited for",
                   "ratio, in turns"], rows)
    if any(r[1][5].endswith("***") for r in rows):
        print("\n\\* Miss: not in turns, the two measured apart (runs before the miss was also measured in turns).")
    if any(r[1][-1].endswith("***") for r in rows):
        print("\n\\* Background write: not in turns: against GetItem and origin only, measured apart (runs before the floor made the PutItem).")

# Time to the first byte of a 10 MB miss.
LARGE = 10 * 1000 * 1000
rows = []
for d in DELAYS:
    g = f"net{d}ms_first_byte"
    try:
        t, f, o = us(g, "dynamodb_miss", LARGE), us(g, "get_item_then_origin", LARGE), us(g, "origin", LARGE)
    except FileNotFoundError:
        continue
    rows.append((f"{d} ms", [fmt(t), fmt(f), f"**{t / f:.2f}**", fmt(o), f"{(t - o) / 1000:.2f} ms"]))
if rows:
    table("Time to the first byte of a 10 MB body of unknown length: a miss through the cache, against a GetItem "
          "then the origin by hand, and the origin alone", "network",
          ["miss, first byte", "GetItem + origin", "ratio", "origin alone", "miss − origin"], rows)

# Compression at 100 KB.
rows = []
for d in DELAYS:
    for kind in ("sequential", "random"):
        g = f"net{d}ms_compression_{kind}"
        s = 102400
        hz, hp = us(g, "hit_zstd", s), us(g, "hit_plain", s)
        gz, gp = us(g, "raw_get_item_zstd", s), us(g, "raw_get_item_plain", s)
        rows.append((f"{d} ms, {kind}", [fmt(hz), fmt(hp), fmt(gp), fmt(gz), f"**{hz / gp:.2f}**", f"{hz / gz:.2f}"]))
table("100 KB hits with and without compression (target: compressed hit ÷ uncompressed GetItem < 1)",
      "network, body", ["hit, zstd", "hit, uncompressed", "raw GetItem, uncompressed item",
                        "raw GetItem, compressed item", "zstd hit ÷ uncompressed GetItem",
                        "zstd hit ÷ its own GetItem"], rows)

# Concurrency.
seen = dict(json.loads((root / "concurrency.json").read_text()))
rows = []
for d in DELAYS:
    g = f"net{d}ms_concurrent"
    c = seen[f"{g}/coalesced_misses"]
    one = us(f"net{d}ms_miss", "dynamodb_miss", 10240)
    batch = us(g, "coalesced_misses", 10240)
    hot, tier = seen[f"{g}/hot_hits"], seen[f"{g}/hot_hits_tiered"]
    hot_t, tier_t = us(g, "hot_hits", 10240), us(g, "hot_hits_tiered", 10240)
    rows.append((f"{d} ms", [
        fmt(batch), f"{batch / one:.2f}", f"{c['origin'] / c['batches']:.2f}",
        f"{c['get_items'] / c['batches']:.1f}",
        f"{64e6 / hot_t:.0f}/s", f"{hot['get_items'] / hot['seconds']:.0f}/s",
        f"**{hot['get_items'] / hot['batches']:.1f}**",
        f"{64e6 / tier_t:.0f}/s", f"{tier['get_items'] / tier['seconds']:.1f}/s"]))
table("64 concurrent requests of one 10 KB URL (target: at most 8 GetItems per 64 hot hits at 1 ms)",
      "network", ["64 misses (coalesced)", "÷ one miss", "origin requests per 64",
                  "GetItems per 64 misses", "hot hits", "GetItems reaching DynamoDB",
                  "GetItems per 64 hits", "hot hits, tiered", "GetItems, tiered"], rows)

# In-process.
rows = []
for s in SIZES:
    t, m, p = us("in_process", "tiered_hit", s), us("in_process", "memory_hit", s), us("in_process", "http_cache_reqwest_moka_hit", s)
    rows.append((kb(s), [fmt(t), fmt(m), fmt(p), f"**{t / p:.2f}**", f"{m / p:.2f}"]))
table("In-process hits vs http-cache-reqwest with its moka manager (target ≤ 0.5)", "body",
      ["TieredStore hit", "MemoryStore hit", "http-cache-reqwest moka hit", "tiered ÷ peer", "memory ÷ peer"], rows)

# CPU.
rows = []
for s in SIZES:
    g = us("cpu", "raw_get_item", s)
    h, t = us("cpu", "dynamodb_hit", s), us("cpu", "tiered_hit", s)
    m, f = us("cpu", "dynamodb_miss", s), us("cpu", "origin_get_put", s)
    rows.append((kb(s), [fmt(g), fmt(h), f"**{h / g:.2f}**", fmt(t), f"{t / g:.2f}", fmt(m), fmt(f), f"**{m / f:.2f}**"]))
table("Client CPU time (user + system) per operation, servers in another process", "body",
      ["raw GetItem", "hit", "hit ÷ GetItem", "tiered hit", "tiered ÷ GetItem", "miss",
       "origin + GetItem + PutItem", "miss ÷ floor"], rows)

# The hit against the raw GetItem measured in turns (each iteration runs both): each sample's
# ratio, so the spread is that of one run, not of the machine's drift between two benchmarks.
try:
    paired = PAIRED
    rows = []
    for s in SIZES:
        cells = []
        for name in ("dynamodb_hit_paired", "dynamodb_hit_uncompressed_paired"):
            samples = paired[f"cpu/{name}/{s}"]
            base = statistics.median(b for b, _ in samples)
            op = statistics.median(o for _, o in samples)
            cells += [fmt(op), fmt(base), "**%.2f** (%.2f–%.2f)" % turns(samples)]
        # Where the hit's share over the raw read goes (absent from older runs): the store's read
        # alone, and the floor of any cache over the store (read, answer, judge nothing); the hit
        # over that floor is what this crate's own work costs.
        hit = turns(paired[f"cpu/dynamodb_hit_paired/{s}"])[0]
        for name in ("store_get_paired", "store_answer_paired"):
            samples = paired.get(f"cpu/{name}/{s}")
            cells.append("%.2f (%.2f–%.2f)" % turns(samples) if samples else "")
        floor = paired.get(f"cpu/store_answer_paired/{s}")
        cells.append(f"**{hit / turns(floor)[0]:.2f}**" if floor else "")
        rows.append((kb(s), cells))
    table("Client CPU of a hit against the raw GetItem of its item, measured in turns (median of the samples' ratios, their range; target ≤ 1.15)",
          "body", ["hit", "raw GetItem", "hit ÷ GetItem", "hit, uncompressed item",
                   "raw GetItem, uncompressed", "hit ÷ GetItem, uncompressed",
                   "store's read alone ÷ GetItem", "floor (read and answer) ÷ GetItem",
                   "hit ÷ floor"], rows)
except (FileNotFoundError, KeyError):
    pass

# The miss's client CPU against its floor (origin, GetItem, PutItem by hand), in turns.
rows = []
for s in SIZES:
    samples = PAIRED.get(f"cpu/dynamodb_miss_paired/{s}")
    if samples:
        rows.append((kb(s), [fmt(statistics.median(o for _, o in samples)),
                             fmt(statistics.median(b for b, _ in samples)),
                             "**%.2f** (%.2f–%.2f)" % turns(samples)]))
if rows:
    table("Client CPU of a miss against its floor, measured in turns (median of the samples' ratios, their range)",
          "body", ["miss", "origin + GetItem + PutItem", "miss ÷ floor"], rows)

# The hit against the raw GetItem in wall time, measured in turns at each network setting.
try:
    rows = []
    for d in DELAYS:
        cells = []
        for s in SIZES:
            samples = paired[f"net{d}ms_hit/dynamodb_hit_paired/{s}"]
            ratios = [op / base for base, op in samples]
            cells.append(f"**{statistics.median(ratios):.2f}** ({min(ratios):.2f}–{max(ratios):.2f})")
        rows.append((f"{d} ms", cells))
    table("Hit ÷ raw GetItem in wall time, measured in turns (median of the samples' ratios, their range; target ≤ 1.05 at 1 and 5 ms)",
          "network", [kb(s) for s in SIZES], rows)
except (NameError, KeyError):
    pass

# What the servers spend on the same operations, and where a 1 ms miss's time over its floor goes.
try:
    rows, account = [], []
    for s in SIZES:
        sv = lambda name: us("cpu", f"servers_{name}", s)
        g, h, m, f = sv("raw_get_item"), sv("dynamodb_hit"), sv("dynamodb_miss"), sv("origin_get_put")
        rows.append((kb(s), [fmt(g), fmt(h), f"{h - g:+.0f} µs", fmt(m), fmt(f), f"{m - f:+.0f} µs"]))
        wall = us("net1ms_miss", "dynamodb_miss", s) - us("net1ms_miss", "origin_get_put", s)
        floor = us("net1ms_miss", "origin_get_put", s)
        client = us("cpu", "dynamodb_miss", s) - us("cpu", "origin_get_put", s)
        account.append((kb(s), [f"{wall:.0f} µs", f"{0.05 * floor:.0f} µs", f"{client:.0f} µs",
                                f"{m - f:.0f} µs", f"{client + m - f:.0f} µs"]))
    table("Server CPU time per operation (the embedded DynamoDB and the origin, in their own process; loopback)",
          "body", ["raw GetItem", "hit", "hit − GetItem", "miss", "origin + GetItem + PutItem", "miss − floor"], rows)
    table("A miss at 1 ms: its time over the floor, against the CPU it adds on each side (the two share two cores)",
          "body", ["miss − floor, 1 ms", "5 % of the floor", "client CPU added", "server CPU added",
                   "CPU added, both"], account)
except FileNotFoundError:
    pass

# Capacity.
cap = json.loads((root / "capacity.json").read_text())
units = {}
for r in cap["rows"]:
    units[(r["kind"], r["size"], r["compression"], r["operation"])] = r
rows = []
for kind in ("random", "sequential"):
    for s in SIZES:
        for comp in ("none", "zstd"):
            u = lambda op: units[(kind, s, comp, op)]
            miss, hit, rev, inv = u("miss"), u("hit"), u("revalidation"), u("invalidation")
            # 1 M hits and 100 k misses a month.
            read = 1e6 * hit["read_units"] + 1e5 * miss["read_units"]
            write = 1e5 * miss["write_units"]
            cost = read / 1e6 * READ_PRICE + write / 1e6 * WRITE_PRICE
            rows.append((f"{kind} {kb(s)}, {comp}", [
                f"{miss['item_bytes']:,}", f"{hit['read_units']:g}",
                f"{miss['read_units']:g} / {miss['write_units']:g}",
                f"{rev['read_units']:g} / {rev['write_units']:g}",
                f"{inv['write_units']:g}", f"${cost:.2f}"]))
table("Capacity units per operation as DynamoDB reported them (read / write), and the monthly cost "
      f"of 1 M hits + 100 k misses on demand (${READ_PRICE}/M reads, ${WRITE_PRICE}/M writes)",
      "body, compression", ["item bytes", "hit", "miss", "revalidation", "invalidation (write)", "1 M hits + 100 k misses"], rows)

print("\nLargest body that fits in one item with the default compression (zstd level 3):\n")
for kind, v in cap["largest"].items():
    print(f"- {kind}: {v['bytes']:,} bytes (zstd level 3 ratio {v['zstd3_ratio']:.2f})")
