#!/usr/bin/python3
# Integration: a job whose nodes' bus was removed from the configuration across a restart does not stay
# running for ever: those nodes fail with that reason, the others finish.
import signal
import sys

import harness
from harness import check, wait_until

BUSES = ["bus0", "bus1"]


def bus_removed(f):
    f.start_fleet(BUSES, 2, sim_extra=["--bus-timing"])
    img2 = f.pack("2.0.0", release=2, seed=2, size=48 * 1024)
    r = f.ctl("update", img2, "--all", "--no-wait")
    check(r.rc == 0, f"update --no-wait: {r}")
    job_id = harness.job_id_of(r)

    def bus1_programming():
        j = f.job(job_id)
        check(j["state"] == "running", f"job ended ({j['state']}) before the daemon could be killed: {j}")
        return any(n["node"].startswith("bus1:") and n["step"] == "programming" and n["bytes_done"] > 0
                   for n in j["nodes"])

    wait_until("bus1 programming", bus1_programming, timeout=90, interval=0.05)
    f.daemon.kill(signal.SIGKILL)
    # the operator takes bus1 out of the configuration, then starts canfleetd again
    f.write_config(["bus0"], 2)
    f.start_daemon()

    r = f.ctl("watch", job_id, timeout=120)
    check(r.rc == 1, f"the job must end failed (bus1's nodes cannot be updated): {r}")
    job = f.job(job_id)
    check(job["state"] == "failed", f"job state {job['state']}")
    for n in job["nodes"]:
        if n["node"].startswith("bus1:"):
            check(n["step"] == "failed" and "bus bus1 is no longer configured" in n["error"],
                  f"{n['node']} must fail because bus1 is gone: {n}")
        else:
            check(n["step"] == "done", f"{n['node']} must be updated: {n}")
    harness.assert_versions(f, {"bus0:1": "2.0.0", "bus0:2": "2.0.0"})
    harness.assert_versions(f, {"bus1:1": "1.0.0", "bus1:2": "1.0.0"}, via_daemon=False)


if __name__ == "__main__":
    sys.exit(harness.main(bus_removed))
