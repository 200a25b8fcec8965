#!/usr/bin/python3
# Integration: one node misses group frames (--group-loss, fixed seed): GAP finds exactly those slots
# and unicast PROGRAM_6 repairs them; the other nodes need no repair.
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
    lost = set()
    for bus, src, what, fid, data in grouplog.frames(log):
        if what == f"lost@{LOSSY}" and fid == grouplog.GROUP_ID:
            lost.add((data[0] << 8) | data[1])
    check(lost, "the node lost no group frame: the test proves nothing")
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
    check(repaired >= lost, f"lost slots not repaired: {sorted(lost - repaired)[:10]}")
    check(len(repaired - lost) == 0, f"slots repaired that were not lost: {sorted(repaired - lost)[:10]}")
    print(f"   node {LOSSY} lost {len(lost)} group frames; {n6} PROGRAM_6 repaired them")


if __name__ == "__main__":
    sys.exit(harness.main(group_loss))
