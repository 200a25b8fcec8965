#!/usr/bin/python3
# Integration: canfleetd is SIGKILLed in the middle of a group pass and started again: the nodes
# rejoin their group (GROUP_JOIN with the same id and tag answers OK) and are completed from GAP,
# without a second CLEAR_MEMORY (counted in the simulator's frame log), and the second pass starts
# where the first stopped.
import signal
import sys

import grouplog
import harness
from harness import check, wait_until

BUSES = ["bus0"]
NODES = 3


def group_resume(f):
    f.start_bus()
    img1 = f.pack("1.0.0", release=1)
    sim = f.start_sim(BUSES, NODES, extra=["--log-frames", "--quiet"], install=img1)
    f.write_config(BUSES, NODES)
    f.start_daemon()
    img2 = f.pack("2.0.0", release=2, seed=2, size=120 * 1024)
    r = f.ctl("update", img2, "--all", "--no-wait")
    check(r.rc == 0, f"update --no-wait: {r}")
    job_id = harness.job_id_of(r)

    def mid_pass():
        j = f.job(job_id)
        check(j["state"] == "running", f"job ended ({j['state']}) before the daemon could be killed: {j}")
        return all(n["step"] == "programming" and n["bytes_done"] * 10 > n["bytes_total"] * 4 for n in j["nodes"])

    wait_until("the group pass past 40 %", mid_pass, timeout=90, interval=0.05)
    f.daemon.kill(signal.SIGKILL)
    before = sum(1 for _ in grouplog.group_frames(sim.output()))
    f.start_daemon()

    r = f.ctl("watch", job_id, timeout=150)
    check(r.rc == 0, f"the resumed job did not finish well: {r}")
    job = f.job(job_id)
    check(job["state"] == "done", f"job state {job['state']}")
    harness.assert_versions(f, {n: "2.0.0" for n in harness.all_nodes(BUSES, NODES)})

    log = sim.output()
    stations = range(1, NODES + 1)
    clears = grouplog.count_cmd(log, stations, grouplog.CLEAR_MEMORY)
    check(clears == {("bus0", sa): 1 for sa in stations}, f"CLEAR_MEMORY per node (one each expected): {clears}")
    slots = [s for _, s in grouplog.group_frames(log)]
    after = slots[before:]
    check(before > 0 and after, f"group frames before the kill {before}, after {len(after)}")
    check(len(slots) < 1.75 * len(set(slots)),
          f"{len(slots)} group frames for {len(set(slots))} slots: the second pass started over")
    progs = grouplog.count_cmd(log, stations, grouplog.PROGRAM_6)
    print(f"   group frames: {before} before the kill, {len(after)} after; unicast PROGRAM_6: {progs}")


if __name__ == "__main__":
    sys.exit(harness.main(group_resume))
