#!/usr/bin/python3
# Integration: checked blocks (docs/design.md §7) with older nodes on the same bus: node 2 knows the
# group transfer but not block mode (--no-block-check: BLOCK_MODE answered 'out of range'), node 4
# knows neither (--no-group, plain CCP, unchecked). All end on the new version in one job; the pass
# carries a check frame per block, which node 2 ignores; neither old node gets a BLOCK_CHECK. Then two
# jobs at once on the bus: the one that does not get the bus's group sends plain PROGRAM_6s, checked
# by one BLOCK_CHECK per block.
import sys

import grouplog
import harness
from harness import check

BUSES = ["bus0"]
NODES = 4
NO_BLOCK, NO_GROUP = 2, 4


def group_blocks(f):
    f.start_bus()
    img1 = f.pack("1.0.0", release=1)
    extra = ["--log-frames", "--quiet", "--no-block-check", str(NO_BLOCK), "--no-group", str(NO_GROUP)]
    sim = f.start_sim(BUSES, NODES, extra=extra, install=img1)
    f.write_config(BUSES, NODES)
    f.start_daemon()

    img2 = f.pack("2.0.0", release=2, seed=2)
    r = f.ctl("update", img2, "--all")
    check(r.rc == 0, f"update --all did not exit 0: {r}")
    check("4 updated" in r.out, f"no summary '4 updated': {r}")

    # Two jobs at once: one holds the group, the other's node goes plain CCP, checked.
    img3 = f.pack("3.0.0", release=3, seed=3)
    bg = f.ctl_bg("update", img3, "--node", "bus0:1")
    r = f.ctl("update", img3, "--node", "bus0:3")
    check(r.rc == 0, f"second job: {r}")
    harness.wait_until("the first job's end", lambda: not bg.alive(), 60)

    # (this stops the simulator to read the flash files)
    harness.assert_versions(f, {"bus0:1": "3.0.0", "bus0:2": "2.0.0", "bus0:3": "3.0.0", "bus0:4": "2.0.0"})
    log = sim.output()
    stations = range(1, NODES + 1)
    modes = grouplog.count_cmd(log, stations, grouplog.ACTION_SERVICE, 0xCF04)
    checks = grouplog.count_cmd(log, stations, grouplog.ACTION_SERVICE, 0xCF05)
    progs = grouplog.count_cmd(log, stations, grouplog.PROGRAM_6)
    check(sorted(sa for _, sa in modes) == list(stations), f"BLOCK_MODE asked of {sorted(modes)}")
    check(("bus0", NO_BLOCK) not in checks, f"node {NO_BLOCK} (no block mode) got BLOCK_CHECK: {checks}")
    blocks = [b for _, b in grouplog.check_frames(log)]
    check(blocks, "no check frame in the passes")
    n6 = progs.get(("bus0", NO_GROUP), 0)
    check(n6 > 100 and ("bus0", NO_GROUP) not in checks, f"node {NO_GROUP}: {n6} PROGRAM_6, {checks}")
    dlog = f.daemon.output()
    check(f"bus0:{NO_BLOCK}: ACTION_SERVICE" in dlog and "without block checks" in dlog,
          f"node {NO_BLOCK}'s fallback is not logged:\n{dlog[-2000:]}")
    # nodes 1 and 3 took the first job's clean pass: their PROGRAM_6 are the second phase's
    plain = [sa for sa in (1, 3) if progs.get(("bus0", sa), 0) > 100]
    check(len(plain) == 1, f"one node of the two jobs should go plain CCP: PROGRAM_6 {progs}")
    n6, nc = progs[("bus0", plain[0])], checks.get(("bus0", plain[0]), 0)
    # 16 PROGRAM_6 fill a block: one BLOCK_CHECK per block the plain path sends
    check(n6 / 17 <= nc <= n6 / 15 + 2, f"node {plain[0]}: {n6} PROGRAM_6, {nc} BLOCK_CHECK")
    print(f"   {len(blocks)} check frames; plain CCP, checked: node {plain[0]}: {n6} PROGRAM_6, {nc} BLOCK_CHECK")

if __name__ == "__main__":
    sys.exit(harness.main(group_blocks))
