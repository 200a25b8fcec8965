#!/usr/bin/python3
# Integration: the job log survives SIGKILL at any point. canfleetd is killed at pseudo-random moments
# (fixed seed) of one job, six times, and started again each time; the job ends done with every node on
# the new version, and between the kills the state directory holds the job's snapshot (and its log).
import os
import random
import signal
import sys
import time

import harness
from harness import check, wait_until

BUSES = ["bus0", "bus1"]


def kill_loop(f):
    f.start_fleet(BUSES, 2, sim_extra=["--bus-timing"])
    img2 = f.pack("2.0.0", release=2, seed=2, size=24 * 1024)
    r = f.ctl("update", img2, "--all", "--no-wait")
    check(r.rc == 0, f"update --no-wait: {r}")
    job_id = harness.job_id_of(r)
    rnd = random.Random(7)
    jobs_dir = os.path.join(f.state_dir, "jobs")
    kills = 0
    for _ in range(6):
        time.sleep(rnd.uniform(0.05, 0.8))  # where the kill lands; the outcome must not depend on it
        if f.job(job_id)["state"] != "running":
            break
        f.daemon.kill(signal.SIGKILL)
        kills += 1
        names = sorted(os.listdir(jobs_dir))
        check(f"{job_id}.json" in names and all(n in (f"{job_id}.json", f"{job_id}.log") for n in names),
              f"state after SIGKILL {kills}: {names}")
        f.start_daemon()
    check(kills >= 2, f"the job ended before the second kill ({kills})")
    r = f.ctl("watch", job_id, timeout=150)
    check(r.rc == 0, f"the job did not end well after {kills} kills: {r}")
    job = f.job(job_id)
    check(job["state"] == "done" and all(n["step"] == "done" for n in job["nodes"]), f"{job}")
    harness.assert_versions(f, {n: "2.0.0" for n in harness.all_nodes(BUSES, 2)})
    print(f"{kills} SIGKILLs")


if __name__ == "__main__":
    # on plain images ("allow_unsigned": true), so that resuming unsigned jobs stays tested
    sys.exit(harness.main(kill_loop, signed=False))
