#!/usr/bin/env python3
"""Swift allocations a span on the bench load, by thread and type, or by caller.

A diagnostic, not a bench row: it counts every `swift_allocObject` the
collector makes while `tracefold-loadgen` sends REQUESTS batches of 512
spans (random ids, fsync + SQLite + JSONL, as `make bench` runs them),
through a perf uprobe on libswiftCore, and names each type in the live
process (`swift_getTypeName`, called by gdb). A CPU profile shows where the
runtime and the allocator spend their time, not who asked; this does.

    python3 bench/allocations.py [--bin-dir DIR] [--requests N]
    python3 bench/allocations.py --thread tracefold-pipel --callers

Needs root (perf probe) and gdb. With --callers, each allocation's call
stack is recorded (frame pointers) and the counts go by type and the first
three callers outside the runtime.
"""
import argparse
import collections
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402

LIBSWIFTCORE = "/opt/swift/usr/lib/swift/linux/libswiftCore.so"
EVENT = "probe_libswiftCore:swift_allocObject"
# Frames of the runtime and the standard library's collection machinery,
# skipped to find who asked.
RUNTIME = ("swift_", "_swift", "outlined", "[unknown]", "specialized _ContiguousArrayBuffer", "_ContiguousArrayBuffer",
           "specialized static Array._allocate", "Array._allocate", "specialized Array.init", "specialized _copy",
           "specialized _NativeDictionary", "_NativeDictionary", "static _DictionaryStorage", "specialized Array._createNewBuffer",
           "specialized Array.append", "specialized Array._reserve", "specialized Array.reserveCapacity",
           "specialized Collection._copyToContiguousArray", "specialized Array._makeUnique", "specialized Dictionary",
           "Dictionary.init", "specialized Array.replaceSubrange", "specialized Sequence._copy",
           "specialized protocol witness for Sequence", "specialized _ArrayBufferProtocol", "_allocateStringStorage",
           "specialized static __StringStorage", "static _SetStorage", "specialized _NativeSet", "_NativeSet")


def add_probe():
    listed = subprocess.run(["perf", "probe", "-l"], capture_output=True, text=True).stdout
    if EVENT in listed:
        return
    subprocess.run(["perf", "probe", "-x", LIBSWIFTCORE, "--add", "swift_allocObject md=%di:u64 size=%si:u64"],
                   check=True, capture_output=True)


def type_names(pid, metadata):
    """Each metadata address's type name, asked of the running process."""
    commands = []
    for md in metadata:
        commands += ["-ex", f'printf "MD {md} %s\\n", ((char*(*)(void*,int))swift_getTypeName)((void*){md}, 1)']
    names = {}
    for start in range(0, len(commands), 400):
        out = subprocess.run(["gdb", "-p", str(pid), "-batch", "-nx"] + commands[start:start + 400],
                             capture_output=True, text=True).stdout
        names.update({int(a): b for a, b in re.findall(r"MD (\d+) (.*)", out)})
    return names


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bin-dir", default=os.path.join(run.ROOT, ".build", "release"))
    p.add_argument("--requests", type=int, default=100)
    p.add_argument("--thread", default="", help="only threads whose name starts with this")
    p.add_argument("--callers", action="store_true", help="count by type and caller (records call stacks)")
    p.add_argument("--top", type=int, default=40)
    args = p.parse_args()
    run.RANDOM_IDS = True
    add_probe()
    proc, url, data, work = run.start_tracefold(args.bin_dir, lambda port, d: run.config_yaml(port, d, "fsync", True),
                                                "tracefold-allocations-")
    out = os.path.join(work, "allocations.data")
    gen = os.path.join(args.bin_dir, "tracefold-loadgen")
    try:
        # Warmed up first, so that one-time allocations (caches, prepared
        # statements, dictionaries) are not counted against the spans.
        run.loadgen(gen, url + "/v1/traces", 30, seed=3)
        run.wait_stored(data, 30 * 512)
        record = ["perf", "record", "-e", EVENT, "-o", out]
        if args.callers:
            record += ["--call-graph", "fp"]
        tids = [t for t in os.listdir(f"/proc/{proc.pid}/task")
                if open(f"/proc/{proc.pid}/task/{t}/comm").read().strip().startswith(args.thread)]
        record += ["-t", ",".join(tids)] if args.thread else ["-p", str(proc.pid)]
        perf = subprocess.Popen(record, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)
        r = run.loadgen(gen, url + "/v1/traces", args.requests, seed=5)
        run.wait_stored(data, 30 * 512 + r["ackedSpans"])
        run.wait_exported(data)
        time.sleep(1)
        perf.send_signal(2)
        perf.wait()
        spans = r["ackedSpans"]
        fields = "comm,trace,ip,sym" if args.callers else "comm,trace"
        script = subprocess.run(f"perf script -i {out} -F {fields} 2>/dev/null | swift demangle --simplified",
                                shell=True, capture_output=True, text=True).stdout
        events = []
        for block in (script.split("\n\n") if args.callers else script.splitlines()):
            m = re.search(r"^\s*(\S+)\s.*?md=(\d+)", block)
            if not m:
                continue
            frames = []
            if args.callers:
                for line in block.strip().splitlines()[1:]:
                    parts = line.strip().split(None, 1)
                    frame = re.sub(r"\(.*", "", parts[1] if len(parts) > 1 else parts[0])
                    if not frame.startswith(RUNTIME):
                        frames.append(frame[:80])
            events.append((m.group(1), int(m.group(2)), " < ".join(frames[:3])))
        per_md = collections.Counter(md for _, md, _ in events)
        names = type_names(proc.pid, [md for md, k in per_md.items() if k >= spans // 100])
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    counts = collections.Counter()
    for thread, md, callers in events:
        key = (names.get(md, f"metadata {md:#x}"), callers) if args.callers else (thread, names.get(md, f"metadata {md:#x}"))
        counts[key] += 1
    print(f"{len(events) / spans:.1f} Swift allocations a span ({len(events)} over {spans} spans)")
    for (a, b), k in counts.most_common(args.top):
        print(f"{k / spans:6.2f}  {a[:70]:70}  {b[:160]}" if args.callers else f"{k / spans:6.2f}  {a:18} {b[:140]}")


if __name__ == "__main__":
    main()
