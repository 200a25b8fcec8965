#!/usr/bin/python3
# Integration: a node joins the group and then goes silent for good in the middle of the pass (its
# power is cut at a flash write of a group slot and never comes back): the pass goes on for the
# others, they end on the new version, and the silent node fails as offline with that reason after
# node_lost_timeout_s, keeping what it had (its B was never touched).
import sys

import grouplog
import harness
from harness import check

BUSES = ["bus0"]
NODES = 3
SILENT = 2
# Flash operations of node SILENT from start-up: the 2 sector erases of CLEAR_MEMORY, then one per
# checked block of 16 group slots it commits (one per slot for a node without block mode). The 60th
# lands well inside the pass of a 16 KB application (about 170 blocks).
CUT_AT = 60


def group_silent(f):
    f.start_bus()
    img1 = f.pack("1.0.0", release=1)
    sim = f.start_sim(BUSES, NODES, extra=["--log-frames", "--quiet", "--power-cut", f"{CUT_AT}:{SILENT},off"],
                      install=img1)
    f.write_config(BUSES, NODES, node_lost_timeout_s=3)
    f.start_daemon()

    img2 = f.pack("2.0.0", release=2, seed=2)
    r = f.ctl("update", img2, "--all")
    check(r.rc == 1, f"update --all should exit 1 (one node failed): {r}")

    log = sim.output()
    joins = [sa for bus, sa, data in grouplog.cros(log, range(1, NODES + 1))
             if data[0] == grouplog.ACTION_SERVICE and data[2:4] == bytes([0xCF, 0x01])]
    check(SILENT in joins, f"node {SILENT} never joined the group: the test proves nothing ({joins})")
    check(any(True for _ in grouplog.group_frames(log)), "no group frame was sent")

    job = f.jobs()[-1]
    by_node = {n["node"]: n for n in job["nodes"]}
    silent = f"bus0:{SILENT}"
    check(by_node[silent]["step"] == "failed", f"{silent} should have failed: {by_node[silent]}")
    err = by_node[silent]["error"] or ""
    check("offline" in err or "answer" in err, f"{silent}'s reason does not say it went silent: {err!r}")
    for sa in range(1, NODES + 1):
        if sa != SILENT:
            check(by_node[f"bus0:{sa}"]["step"] == "done", f"bus0:{sa} did not finish: {by_node}")
    nodes = f.nodes()
    check(nodes[silent]["state"] == "offline", f"{silent} should be offline: {nodes[silent]}")
    harness.assert_versions(f, {f"bus0:{sa}": "2.0.0" for sa in range(1, NODES + 1) if sa != SILENT},
                            via_daemon=False)


if __name__ == "__main__":
    sys.exit(harness.main(group_silent))
