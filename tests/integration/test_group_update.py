#!/usr/bin/python3
# Integration: 8 nodes on 2 buses are updated through the group transfer (docs/design.md §7): the
# simulator's frame log shows the image going out once per bus as group frames, and per-node PROGRAM
# traffic only for repairs (none on a clean bus).
import sys

import grouplog
import harness
from harness import check

BUSES = ["bus0", "bus1"]
NODES = 4


def group_update(f):
    f.start_bus()
    img1 = f.pack("1.0.0", release=1)
    sim = f.start_sim(BUSES, NODES, extra=["--log-frames", "--quiet"], install=img1)
    f.write_config(BUSES, NODES)
    f.start_daemon()

    img2 = f.pack("2.0.0", release=2, seed=2)
    r = f.ctl("update", img2, "--all")
    check(r.rc == 0, f"update --all did not exit 0: {r}")
    check("8 updated" in r.out, f"no summary '8 updated': {r}")
    harness.assert_versions(f, {n: "2.0.0" for n in harness.all_nodes(BUSES, NODES)})

    log = sim.output()
    stations = range(1, NODES + 1)
    slots = {}
    for bus, slot in grouplog.group_frames(log):
        slots.setdefault(bus, []).append(slot)
    for b in slots:
        check(len(slots[b]) == len(set(slots[b])), f"{b}: a slot went out twice in one clean pass")
    check(len(slots) == 2, f"group frames on {sorted(slots)} only, expected both buses")
    # Block mode (nodes check before they program): one check frame per block that had data frames.
    checks = {}
    for bus, block in grouplog.check_frames(log):
        checks.setdefault(bus, []).append(block)
    for b in slots:
        blocks = sorted({s // 16 for s in slots[b]})
        check(sorted(checks.get(b, [])) == blocks, f"{b}: check frames for blocks {sorted(checks.get(b, []))[:8]}..., "
              f"expected one per block with data {blocks[:8]}...")
    joins = grouplog.count_cmd(log, stations, grouplog.ACTION_SERVICE, 0xCF01)
    check(len(joins) == 8, f"GROUP_JOIN sent to {sorted(joins)} only")
    progs = grouplog.count_cmd(log, stations, grouplog.PROGRAM_6)
    progs5 = grouplog.count_cmd(log, stations, grouplog.PROGRAM)
    # A clean bus loses nothing: no repair at all.
    check(not progs and not progs5, f"per-node PROGRAM on a clean bus: {progs} {progs5}")
    clears = grouplog.count_cmd(log, stations, grouplog.CLEAR_MEMORY)
    check(all(v == 1 for v in clears.values()) and len(clears) == 8, f"CLEAR_MEMORY per node: {clears}")
    print(f"   group frames per bus: { {b: len(s) for b, s in slots.items()} }; no unicast PROGRAM")


if __name__ == "__main__":
    sys.exit(harness.main(group_update))
