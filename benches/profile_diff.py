#!/usr/bin/env python3
"""Where a hit's CPU goes beyond the raw GetItem's: two flat profiles from benches/profile.sh
(the raw GetItem's first), each function's share scaled to the CPU of one operation, and the
difference summed by library. One SigV4 signature is made per operation in both, so the share
of `aws_sigv4::http_request::sign::sign` (self time of the signing code) is the yardstick that
scales the two profiles to one operation each."""
import re
import sys

YARDSTICK = r"aws_sigv4::"
CATEGORIES = [
    ("allocator", r"malloc|free|_int_|unlink_chunk|realloc|__rdl_|__rust_alloc|__rust_dealloc|cfree"),
    ("memcpy", r"memmove|memcpy|memset"),
    ("zstd", r"ZSTD|HUF_|FSE_|zstd"),
    ("hashing, maps", r"sip::|hash_one|hashbrown|hash_elem"),
    ("this crate", r"reqwest_dynamodb_cache"),
    ("http-cache-semantics", r"http_cache_semantics"),
    ("url, idna", r"^url::|idna"),
    ("http headers, uri", r"^http::|<http::"),
    ("sha2, hmac", r"sha2|hmac"),
    ("formatting", r"core::fmt|Display|Debug"),
    ("DynamoDB SDK (smithy, sigv4, JSON)", r"aws_|smithy"),
    ("reqwest, hyper", r"reqwest|hyper|h2::"),
    ("tokio, futures", r"tokio|futures"),
    ("kernel", r"^\[k\]"),
]


def load(path):
    shares = {}
    for line in open(path):
        m = re.match(r"\s*([\d.]+)%\s+\[(.)\]\s+(.*)", line)
        if m:
            name = ("[k] " if m.group(2) == "k" else "") + m.group(3).strip()
            shares[name] = shares.get(name, 0.0) + float(m.group(1))
    return shares


def per_op(shares):
    stick = sum(v for k, v in shares.items() if re.search(YARDSTICK, k))
    return {k: v / stick for k, v in shares.items()}


base, other = (per_op(load(p)) for p in sys.argv[1:3])
total_base, total_other = sum(base.values()), sum(other.values())
extra = total_other - total_base
print(f"CPU per operation, second ÷ first: {total_other / total_base:.2f}\n")
print("| where | share of the first's CPU | share of the difference |")
print("| --- | --- | --- |")
sums = {name: 0.0 for name, _ in CATEGORIES}
sums["other"] = 0.0
for k in set(base) | set(other):
    d = other.get(k, 0.0) - base.get(k, 0.0)
    for name, pattern in CATEGORIES:
        if re.search(pattern, k):
            sums[name] += d
            break
    else:
        sums["other"] += d
for name, d in sorted(sums.items(), key=lambda x: -x[1]):
    print(f"| {name} | {100 * d / total_base:.1f} % | {100 * d / extra:.0f} % |")
