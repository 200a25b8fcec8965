#!/usr/bin/python3
# Integration: a bus with nodes that do not know the group transfer: node 2 an older bootloader
# (--no-group: GROUP_JOIN answered 'unknown command'), node 4 the seed's demo firmware (--seedkey
# echo:4, configured "seedkey": "echo"). They are updated by plain CCP in the same job, the others
# through group frames.
import sys

import grouplog
import harness
from harness import check

BUSES = ["bus0"]
NODES = 4
NO_GROUP, ECHO = 2, 4
OLD = {NO_GROUP, ECHO}


def group_mixed(f):
    f.start_bus()
    img1 = f.pack("1.0.0", release=1)
    extra = ["--log-frames", "--quiet", "--no-group", str(NO_GROUP), "--seedkey", f"echo:{ECHO}"]
    sim = f.start_sim(BUSES, NODES, extra=extra, install=img1)
    f.write_config(BUSES, [sa if sa != ECHO else {"station": sa, "seedkey": "echo"} for sa in range(1, NODES + 1)])
    f.start_daemon()

    img2 = f.pack("2.0.0", release=2, seed=2)
    r = f.ctl("update", img2, "--all")
    check(r.rc == 0, f"update --all did not exit 0: {r}")
    check(len(f.jobs()) == 1, f"more than one job: {f.jobs()}")
    harness.assert_versions(f, {n: "2.0.0" for n in harness.all_nodes(BUSES, NODES)})

    log = sim.output()
    stations = range(1, NODES + 1)
    check(any(True for _ in grouplog.group_frames(log)), "no group frame on the bus")
    progs = grouplog.count_cmd(log, stations, grouplog.PROGRAM_6)
    joins = grouplog.count_cmd(log, stations, grouplog.ACTION_SERVICE, 0xCF01)
    check(sorted(sa for _, sa in joins) == list(stations), f"GROUP_JOIN asked of {sorted(joins)}")
    for sa in stations:
        n = progs.get(("bus0", sa), 0)
        if sa in OLD:
            check(n > 100, f"old node {sa}: only {n} PROGRAM_6: not updated by plain CCP?")
        else:
            check(n == 0, f"group node {sa} got {n} PROGRAM_6 on a clean bus")


if __name__ == "__main__":
    sys.exit(harness.main(group_mixed))
