#!/usr/bin/python3
# Integration: canfleetd SIGKILLed while programming and started again resumes the job to the end.
import signal
import sys

import harness
from harness import check, wait_until

BUSES = ["bus0"]


def crash_resume(f):
    # the bus timing model makes the transfer last seconds, so it can be killed mid-way
    # --no-group all: the plain CCP path's resume (test_group_resume.py has the group transfer's)
    f.start_fleet(BUSES, 2, sim_extra=["--bus-timing", "--no-group", "all"])
    img2 = f.pack("2.0.0", release=2, seed=2, size=48 * 1024)
    r = f.ctl("update", img2, "--all", "--no-wait")
    check(r.rc == 0, f"update --no-wait: {r}")
    job_id = harness.job_id_of(r)

    def mid_programming():
        j = f.job(job_id)
        check(j["state"] == "running", f"job ended ({j['state']}) before the daemon could be killed: {j}")
        return any(n["step"] == "programming" and 0 < n["bytes_done"] and n["bytes_done"] * 4 > n["bytes_total"]
                   for n in j["nodes"])

    wait_until("programming past a quarter", mid_programming, timeout=90, interval=0.05)
    f.daemon.kill(signal.SIGKILL)
    check(f.daemon.p.returncode == -signal.SIGKILL, f"canfleetd ended with {f.daemon.p.returncode}")
    f.start_daemon()

    r = f.ctl("watch", job_id, timeout=150)
    check(r.rc == 0, f"the resumed job did not finish well: {r}")
    job = f.job(job_id)
    check(job["state"] == "done", f"job state {job['state']}")
    for n in job["nodes"]:
        check(n["step"] == "done", f"{n}")
    harness.assert_versions(f, {n: "2.0.0" for n in harness.all_nodes(BUSES, 2)})


if __name__ == "__main__":
    sys.exit(harness.main(crash_resume))
