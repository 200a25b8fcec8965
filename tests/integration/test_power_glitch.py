#!/usr/bin/python3
# Integration: nodes that lose power for ~100 ms in the middle of an update (one while erasing C, one
# while programming it) are found again and finished by the same job.
import sys

import harness
from harness import check

BUSES = ["bus0"]
N = 3


def power_glitch(f):
    f.start_bus()
    img1 = f.pack("1.0.0", release=1)
    # flash operations of a node, counted from start-up: the update's first is the erase of C's first
    # sector (1 s with --flash-timing: the cut comes while CLEAR_MEMORY runs); a 4 KB application is
    # some 43 checked blocks of 96 bytes, one flash write each after the 2 erases, so the 25th is
    # mid-transfer. Power returns ~100 ms later.
    f.start_sim(BUSES, N, extra=["--flash-timing", "--power-cut", "1:1", "--power-cut", "25:2"], install=img1)
    f.write_config(BUSES, N)
    f.start_daemon()
    img2 = f.pack("2.0.0", release=2, seed=2, size=4 * 1024)
    r = f.ctl("update", img2, "--all", timeout=150)
    log = f.daemon.output()
    check(r.rc == 0, f"update with power glitches: {r}")
    job = f.jobs()[0]
    check(job["state"] == "done", f"job state {job['state']}")
    for n in job["nodes"]:
        check(n["step"] == "done", f"{n}")
    # both cuts happened where meant, and were handled as a lost session / lost node, not as failures
    sims = f.sims[0].output()
    check("bus0-1: power cut at flash operation 1 " in sims and "bus0-2: power cut at flash operation 25 " in sims,
          f"the simulator did not cut power as asked:\n{sims[-3000:]}")
    check("bus0:1: CLEAR_MEMORY" in log and "lost its session" in log, f"the cut while erasing went unnoticed:\n{log}")
    check("bus0:2: answers again" in log, f"bus0:2 was not found again:\n{log}")
    harness.assert_versions(f, {n: "2.0.0" for n in harness.all_nodes(BUSES, N)})


if __name__ == "__main__":
    sys.exit(harness.main(power_glitch))
