#!/usr/bin/python3
# Integration: one node misses group frames (--group-loss, fixed seed): a node checks a block before
# it programs it, so a block with a lost data or check frame stays missing whole; missing many, the
# node rides a second pass, and unicast PROGRAM_6 repairs what is still missing after it, only slots
# of blocks it lost; the other nodes need no repair.
import sys

import grouplog
import harness
from harness import check

BUSES = ["bus0"]
NODES = 3
LOSSY = 2


def group_loss(f):
    f.start_bus()
    img1 = f.pack("1.0.0", release=1)
    sim = f.start_sim(BUSES, NODES, extra=["--log-frames", "--quiet", "--seed", "7",
                                           "--group-loss", f"{LOSSY}:0.05"], install=img1)
    f.write_config(BUSES, NODES)
    f.start_daemon()

    img2 = f.pack("2.0.0", release=2, seed=2)
    r = f.ctl("update", img2, "--all")
    check(r.rc == 0, f"update --all did not exit 0: {r}")
    harness.assert_versions(f, {n: "2.0.0" for n in harness.all_nodes(BUSES, NODES)})

    log = sim.output()
    lost_blocks = set()
    for bus, src, what, fid, data in grouplog.frames(log):
        if what == f"lost@{LOSSY}" and fid == grouplog.GROUP_ID:
            slot = (data[0] << 8) | data[1]
            lost_blocks.add((data[2] << 8 | data[3]) if slot == grouplog.CHECK_MARK else slot // 16)
    check(lost_blocks, "the node lost no group frame: the test proves nothing")
    # What the pass sent of those blocks: their data slots.
    sent = {s for b, s in grouplog.group_frames(log)}
    lost = {s for s in sent if s // 16 in lost_blocks}
    repaired = set()
    for bus, sa, data in grouplog.cros(log, range(1, NODES + 1)):
        check(sa == LOSSY or data[0] not in (grouplog.PROGRAM, grouplog.PROGRAM_6),
              f"node {sa} got a unicast PROGRAM without losing a group frame")
    # The repairs' addresses: each SET_MTA (0x02) of node LOSSY starts a run of consecutive slots.
    mta, n6 = None, 0
    for bus, sa, data in grouplog.cros(log, [LOSSY]):
        if data[0] == 0x02 and data[3] == 3:
            mta = int.from_bytes(data[4:8], "big")
        elif data[0] in (grouplog.PROGRAM, grouplog.PROGRAM_6) and mta is not None:
            repaired.add(mta // 6)
            mta += 6
            n6 += 1
    check(len(repaired - lost) == 0, f"slots repaired that were not lost: {sorted(repaired - lost)[:10]}")
    # every lost block came again: in a later pass (its frames sent more than once) or by unicast
    sends = {}
    for b, s in grouplog.group_frames(log):
        sends[s // 16] = sends.get(s // 16, 0) + 1
    once = {b: len({s for s in sent if s // 16 == b}) for b in lost_blocks}
    again = {b for b in lost_blocks if sends.get(b, 0) > once[b] or any(s // 16 == b for s in repaired)}
    check(again == lost_blocks, f"lost blocks never sent again: {sorted(lost_blocks - again)[:10]}")
    print(f"   node {LOSSY} lost frames of {len(lost_blocks)} blocks ({len(lost)} data slots); {n6} PROGRAM_6 repaired them")


if __name__ == "__main__":
    sys.exit(harness.main(group_loss))
