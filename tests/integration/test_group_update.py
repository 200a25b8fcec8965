#!/usr/bin/python3
# Integration: 8 nodes on 2 buses are updated through the group transfer (docs/design.md §7): the
# simulator's frame log shows the image going out once per bus as group frames, and per-node PROGRAM
# traffic only for repairs (none on a clean bus). bus1 has its own "group_id" (0x700) and
# "max_load_percent" 50: its frames go out on that id only, and its pass takes at least twice the
# bus time of its frames. With the flash timing model (an erase of C takes 2 s), the erases overlap:
# every node's CLEAR_MEMORY is sent before the first of them is answered.
import json
import sys

import grouplog
import harness
from harness import check

BUSES = ["bus0", "bus1"]
NODES = 4
GROUP_IDS = {"bus0": grouplog.GROUP_ID, "bus1": 0x700}
LOAD = {"bus0": 100, "bus1": 50}
BITRATE = 500000
MIN_FRAME_BITS = 111  # a standard data frame of 8 bytes without a single stuff bit, intermission included


def erase_overlap(log, bus, stations):
    """When each station's CLEAR_MEMORY went out, and when the first answer to one came (µs)."""
    sent, answered = {}, None
    for b, src, what, fid, data, t in grouplog.frames(log, times=True):
        if b != bus or what.startswith("lost@") or not data:
            continue
        if src == "host" and fid - grouplog.CRO_BASE in stations and data[0] == grouplog.CLEAR_MEMORY:
            sent.setdefault(fid - grouplog.CRO_BASE, t)
        elif src.startswith("node ") and int(src.split()[1]) in sent and data[:2] == b"\xff\x00" and answered is None:
            answered = t
    return sent, answered


def group_update(f):
    f.start_bus()
    img1 = f.pack("1.0.0", release=1)
    sim = f.start_sim(BUSES, NODES, extra=["--log-frames", "--quiet", "--flash-timing"], install=img1)
    conf = f.write_config(BUSES, NODES)
    conf["buses"][1].update(group_id=f"0x{GROUP_IDS['bus1']:X}", max_load_percent=LOAD["bus1"])
    with open(f.config_path, "w") as c:
        json.dump(conf, c, indent=2)
    f.start_daemon()

    img2 = f.pack("2.0.0", release=2, seed=2)
    r = f.ctl("update", img2, "--all", timeout=180)
    check(r.rc == 0, f"update --all did not exit 0: {r}")
    check("8 updated" in r.out, f"no summary '8 updated': {r}")
    harness.assert_versions(f, {n: "2.0.0" for n in harness.all_nodes(BUSES, NODES)})

    log = sim.output()
    stations = range(1, NODES + 1)
    slots = {}
    for b in BUSES:
        for bus, slot in grouplog.group_frames(log, GROUP_IDS[b]):
            if bus == b:
                slots.setdefault(bus, []).append(slot)
    for b in slots:
        check(len(slots[b]) == len(set(slots[b])), f"{b}: a slot went out twice in one clean pass")
    check(sorted(slots) == BUSES, f"group frames on {sorted(slots)} only, expected both buses")
    others = {bus for bus, _ in grouplog.group_frames(log, grouplog.GROUP_ID) if bus != "bus0"}
    check(not others, f"frames on bus0's group id 0x680 on {sorted(others)}: bus1's group_id is 0x700")
    # Block mode (nodes check before they program): one check frame per block that had data frames.
    for b in slots:
        checks = [block for bus, block in grouplog.check_frames(log, GROUP_IDS[b]) if bus == b]
        blocks = sorted({s // 16 for s in slots[b]})
        check(sorted(checks) == blocks, f"{b}: check frames for blocks {sorted(checks)[:8]}..., "
              f"expected one per block with data {blocks[:8]}...")
    joins = grouplog.count_cmd(log, stations, grouplog.ACTION_SERVICE, 0xCF01)
    check(len(joins) == 8, f"GROUP_JOIN sent to {sorted(joins)} only")
    progs = grouplog.count_cmd(log, stations, grouplog.PROGRAM_6)
    progs5 = grouplog.count_cmd(log, stations, grouplog.PROGRAM)
    # A clean bus loses nothing: no repair at all.
    check(not progs and not progs5, f"per-node PROGRAM on a clean bus: {progs} {progs5}")
    clears = grouplog.count_cmd(log, stations, grouplog.CLEAR_MEMORY)
    check(all(v == 1 for v in clears.values()) and len(clears) == 8, f"CLEAR_MEMORY per node: {clears}")

    for b in BUSES:
        # max_load_percent: the pass never runs ahead of its share of the bus. A lower bound, so a
        # loaded machine cannot fail it; without the cap bus1's pass would take half as long.
        times = list(grouplog.group_times(log, b, GROUP_IDS[b]))
        wall = (times[-1] - times[0]) / 1e6
        floor = (len(times) - 1) * MIN_FRAME_BITS / BITRATE / (LOAD[b] / 100)
        check(wall >= 0.95 * floor, f"{b}: {len(times)} group frames in {wall:.3f} s, faster than "
              f"max_load_percent {LOAD[b]} allows ({floor:.3f} s at least)")
        sent, answered = erase_overlap(log, b, stations)
        check(len(sent) == NODES and answered is not None, f"{b}: CLEAR_MEMORY sent to {sorted(sent)}")
        check(max(sent.values()) < answered, f"{b}: a CLEAR_MEMORY went out after the first erase was "
              f"answered ({(max(sent.values()) - answered) / 1e3:.0f} ms later): the erases did not overlap")
        print(f"   {b}: {len(slots[b])} group frames on 0x{GROUP_IDS[b]:X}, pass {wall:.2f} s at "
              f"max_load_percent {LOAD[b]} (at least {floor:.2f} s); 4 CLEAR_MEMORY within "
              f"{(max(sent.values()) - min(sent.values())) / 1e3:.0f} ms, the first answered after "
              f"{(answered - min(sent.values())) / 1e3:.0f} ms; no unicast PROGRAM")


if __name__ == "__main__":
    sys.exit(harness.main(group_update))
