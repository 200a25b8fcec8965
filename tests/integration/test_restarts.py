#!/usr/bin/python3
# Integration: canfleetd SIGKILLed and started again at once, 10 times at random (seeded) points of 5
# jobs: every job ends done and every node runs the last version.
"""
The nodes erase and install with the simulator's flash timing (2 s to erase C, ~4 s to install) and its bus timing (the transfer takes seconds), so
that the kills fall into erasing, programming and rebooting alike; the steps met are printed. A
resumed CONNECT answered BUSY (a node still erasing) is waited for, a node found mid-erase or
mid-programming is staged again from CLEAR_MEMORY, one found rebooting is confirmed.
"""
import random
import signal
import sys
import time

import harness
from harness import check

BUSES = ["bus0", "bus1"]
N = 2
JOBS = 5
ORDER = ["queued", "connecting", "unlocking", "erasing", "programming", "verifying", "rebooting", "confirming",
         "done"]


def restarts(f):
    f.start_bus()
    img1 = f.pack("1.0.0", release=1)
    f.start_sim(BUSES, N, extra=["--flash-timing", "--bus-timing"], install=img1)
    f.write_config(BUSES, N)
    f.start_daemon()
    rng = random.Random(14)
    met = []
    for k in range(JOBS):
        version = f"{k + 2}.0.0"
        img = f.pack(version, release=k + 2, seed=k + 2, size=8 * 1024)
        r = f.ctl("update", img, "--all", "--no-wait")
        check(r.rc == 0, f"update to {version}: {r}")
        job_id = harness.job_id_of(r)
        # two kills per job, each at a (seeded) random step and a random moment of it
        first = rng.choice(["erasing", "programming"])
        second = rng.choice(["programming", "rebooting"] if first == "erasing" else ["rebooting"])
        for target in (first, second):
            def reached():
                j = f.job(job_id)
                return j["state"] != "running" or any(ORDER.index(n["step"]) >= ORDER.index(target)
                                                      for n in j["nodes"] if n["step"] in ORDER)
            harness.wait_until(f"a node of job {job_id} {target}", reached, timeout=120, interval=0.02)
            time.sleep(rng.uniform(0, 0.5))
            steps = sorted({n["step"] for n in f.job(job_id)["nodes"]})
            met.append(steps)
            f.daemon.kill(signal.SIGKILL)
            check(f.daemon.p.returncode == -signal.SIGKILL, f"canfleetd ended with {f.daemon.p.returncode}")
            f.start_daemon()
        r = f.ctl("watch", job_id, timeout=150)
        check(r.rc == 0, f"job {job_id} ({version}) did not end well after the restarts: {r}\n{f.job(job_id)}")
        job = f.job(job_id)
        check(job["state"] == "done", f"job {job_id}: {job}")
    print("steps met at the kills:", met)
    for j in f.jobs():
        check(j["state"] == "done", f"job {j['id']}: {j['state']}")
    harness.assert_versions(f, {n: f"{JOBS + 1}.0.0" for n in harness.all_nodes(BUSES, N)})


if __name__ == "__main__":
    sys.exit(harness.main(restarts))
