#!/usr/bin/env python3
"""Self time by category and by the nearest caller that owns it.

Reads `perf script -F comm,tid,ip,sym,dso` (DWARF call graphs) on stdin, one block per
sample, leaf frame first. Each sample is put in a category by its leaf (allocation,
memcpy, zstd, tokio sync, kernel, ...) and charged to its nearest "owner": the first
frame, walking up from the leaf, in kafka_producer, rskafka, prost, zstd, the harness or
librdkafka, skipping std/core/alloc/tokio internals. So `malloc` called from
`rskafka::...::write_records` and `malloc` called from `EncodedEvent::new` are told apart.
Prints percentages of all samples, largest first. Used by scripts/bench/profile.sh.
"""

import re
import sys
from collections import Counter

CATEGORIES = [
    ("kernel", re.compile(r"\[kernel|kallsyms")),
    ("allocation", re.compile(r"malloc|free|realloc|calloc|_int_|arena|tcache|unlink_chunk|__rust_alloc|__rust_dealloc")),
    ("memcpy/memmove", re.compile(r"memcpy|memmove|memset")),
    ("zstd", re.compile(r"ZSTD|HUF_|FSE_|HIST_|zstd")),
    ("prost encode", re.compile(r"prost::")),
    ("tokio sync", re.compile(r"tokio::sync|oneshot|mpsc|batch_semaphore")),
    ("tokio runtime", re.compile(r"tokio::runtime|mio::|parking_lot")),
    ("crc32c", re.compile(r"crc32")),
    ("drop", re.compile(r"drop_in_place")),
]

OWNER = re.compile(
    r"^(<)?(kafka_producer::|rskafka::|prost::|zstd::|vs_librdkafka::|rd_kafka|rdkafka::|tokio::sync::)"
)
# Generic frames that say nothing about who did the work.
SKIP = re.compile(r"^(<?(core|alloc|std)::|\{closure|poll<|call_once|__rust|\[unknown\])")


def category(sym: str, dso: str) -> str:
    if "kernel" in dso or dso.startswith("[k"):
        return "kernel"
    for name, pattern in CATEGORIES[1:]:
        if pattern.search(sym):
            return name
    return "other"


def short(sym: str) -> str:
    sym = re.sub(r"<[^<>]*(<[^<>]*(<[^<>]*>[^<>]*)*>[^<>]*)*>", "<..>", sym)
    return sym[:110]


def main() -> None:
    samples = 0
    by_cat = Counter()
    by_pair = Counter()
    frames = []

    def flush():
        nonlocal samples, frames
        if not frames:
            return
        samples += 1
        leaf_sym, leaf_dso = frames[0]
        cat = category(leaf_sym, leaf_dso)
        owner = "?"
        for sym, _ in frames:
            if OWNER.search(sym) and not SKIP.search(sym):
                owner = short(sym)
                break
        by_cat[cat] += 1
        by_pair[(cat, owner)] += 1
        frames = []

    for line in sys.stdin:
        if not line.strip():
            flush()
            continue
        if not line.startswith(("\t", " ")):
            flush()  # a new sample's header line
            continue
        m = re.match(r"\s*[0-9a-f]+\s+(.*?)\s+\(([^)]*)\)\s*$", line)
        if m:
            frames.append((m.group(1), m.group(2)))
    flush()

    if samples == 0:
        print("no samples")
        return
    print(f"{samples} samples in the timed phase")
    print("\nself time by category:")
    for cat, n in by_cat.most_common():
        print(f"{100 * n / samples:6.1f}%  {cat}")
    print("\nself time by category and nearest owning caller (>= 0.5 %):")
    for (cat, owner), n in by_pair.most_common():
        if 100 * n / samples < 0.5:
            break
        print(f"{100 * n / samples:6.1f}%  {cat:16s} {owner}")


if __name__ == "__main__":
    main()
