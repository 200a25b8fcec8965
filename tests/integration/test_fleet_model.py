#!/usr/bin/python3
# Integration (issue 13, the fleet model): on a mixed fleet (two hardware ids, one node offline)
#  - the start-up probe learns the configured nodes without a scan;
#  - update --all takes the configured nodes of the image's hardware id and prints the others with
#    their reason, and a restart (SIGKILL) does not change that set;
#  - a failed update leaves a healthy node "online", its result is LastUpdateResult;
#  - a restart keeps the node inventory (last seen, last update) and the finished jobs (history),
#    listed by nodes/jobs/node before any scan;
#  - a node already on the image is reported up to date, not transferred;
#  - finished jobs are kept up to "history", the oldest pruned with its files.
import os
import signal
import sys

import harness
from harness import check, wait_until

SKIPS = "2 of 4 match hw 0x0407; skipped bus1:1 (hw 0x0001), bus1:2 (offline)"


def probed(f):
    """Wait until the start-up probe has seen every configured node (no scan is run)."""
    def done():
        n = f.nodes()
        return (all(n[x]["state"] == "online" for x in ("bus0:1", "bus0:2", "bus1:1"))
                and n["bus1:2"]["state"] == "offline")
    wait_until("the start-up probe of the configured nodes", done, timeout=30)


def update_all(f, img):
    r = f.ctl("update", img, "--all")
    check(r.rc == 0, f"update --all: {r}")
    check(SKIPS in r.out, f"the skipped nodes are not printed as {SKIPS!r}: {r}")
    job = f.jobs()[-1]
    check(sorted(n["node"] for n in job["nodes"]) == ["bus0:1", "bus0:2"], f"--all set: {job['nodes']}")
    check(job["skipped"] == [{"node": "bus1:1", "reason": "hw 0x0001"}, {"node": "bus1:2", "reason": "offline"}],
          f"job skipped: {job['skipped']}")
    return job


def fleet_model(f):
    f.start_bus()
    a1 = f.pack("1.0.0", hw_id=0x0407, release=1, name="a1")
    b1 = f.pack("1.0.0", hw_id=0x0001, release=1, name="b1")
    f.start_sim(["bus0"], 2, extra=["--hw-id", "0x0407"], install=a1, name="sim-a")
    # bus1's nodes are other hardware, station 2 is silent (offline), and their fleet key is not the
    # daemon's: an update there fails at UNLOCK with the node still running its application
    other_key = os.path.join(f.dir, "other.key")
    with open(other_key, "w") as fh:
        fh.write("ff" * 32 + "\n")
    f.start_sim(["bus1"], 2, extra=["--hw-id", "0x0001", "--silent", "2", "--fleet-key", other_key], install=b1,
                name="sim-b")
    f.write_config(["bus0", "bus1"], 2, history=3)
    f.start_daemon()
    probed(f)

    a2 = f.pack("2.0.0", hw_id=0x0407, release=2, seed=2, name="a2")
    job1 = update_all(f, a2)
    check(job1["state"] == "done" and job1["started_us"] is not None, f"job 1: {job1}")

    # a failed update of a healthy node: online, the failure is its last update's result
    b2 = f.pack("2.0.0", hw_id=0x0001, release=2, seed=3, name="b2")
    r = f.ctl("update", b2, "--node", "bus1:1")
    check(r.rc == 1, f"update of bus1:1 with a wrong key should fail (1): {r}")
    check("fleet key does not match" in r.out + r.err, f"the wrong key is not named: {r}")
    n = f.nodes()["bus1:1"]
    check(n["state"] == "online", f"bus1:1 after a failed update is {n['state']!r}, not online: {n}")
    check(n["last_update_result"] == "failed" and n["last_update_job"] == 2, f"bus1:1 last update: {n}")
    check(n["version"] == "1.0.0", f"bus1:1 runs {n['version']}")

    before = f.nodes()
    # restart: SIGKILL, start again; no scan from here on
    f.daemon.kill(signal.SIGKILL)
    f.start_daemon()
    after = f.nodes()
    check(sorted(after) == sorted(before), f"nodes after a restart: {sorted(after)} (before {sorted(before)})")
    for name in ("bus0:1", "bus0:2", "bus1:1"):
        check(after[name]["last_seen_us"] is not None and after[name]["hw_id"] == before[name]["hw_id"],
              f"{name} after a restart: {after[name]}")
    for name in ("bus0:1", "bus0:2"):
        check(after[name]["version"] == "2.0.0" and after[name]["last_update_result"] == "done"
              and after[name]["last_update_job"] == 1, f"{name} after a restart: {after[name]}")
    check(after["bus1:1"]["last_update_result"] == "failed", f"bus1:1 after a restart: {after['bus1:1']}")
    jobs = f.jobs()
    check([(j["id"], j["state"]) for j in jobs] == [(1, "done"), (2, "failed")], f"jobs after a restart: {jobs}")
    check(jobs[0]["image"]["version"] == "2.0.0" and jobs[0]["finished_us"] and jobs[0]["started_us"],
          f"job 1 after a restart: {jobs[0]}")
    check(jobs[0]["skipped"] == job1["skipped"], f"job 1's skipped nodes after a restart: {jobs[0]['skipped']}")
    r = f.ctl("jobs")
    check(r.rc == 0 and "done" in r.out and "failed" in r.out, f"jobs: {r}")
    r = f.ctl("node", "bus0:1")
    check(r.rc == 0 and "last update:  done (job 1" in r.out and "job 1 " in r.out, f"node bus0:1: {r}")
    r = f.ctl("node", "bus1:1", "--json")
    check(r.rc == 0, f"node --json: {r}")
    h = r.json()["history"]
    check([(x["job"], x["step"]) for x in h] == [(2, "failed")], f"bus1:1 history: {h}")

    # the same --all set after the restart, decided without a scan
    probed(f)
    a3 = f.pack("2.1.0", hw_id=0x0407, release=3, seed=4, name="a3")
    update_all(f, a3)
    # already on the image: up to date, nothing transferred
    r = f.ctl("update", a3, "--all", "--json")
    check(r.rc == 0, f"update --all again: {r}")
    for n in r.json()["nodes"]:
        check(n["step"] == "up-to-date" and n["bytes_done"] == 0, f"{n['node']} already on the image: {n}")
    # history 3: the fourth finished job pruned the oldest, its files too
    check([j["id"] for j in f.jobs()] == [2, 3, 4], f"jobs kept with history 3: {[j['id'] for j in f.jobs()]}")
    check(not os.path.exists(os.path.join(f.state_dir, "jobs", "1.json")), "job 1's file is still there")
    harness.assert_versions(f, {"bus0:1": "2.1.0", "bus0:2": "2.1.0", "bus1:1": "1.0.0"})


if __name__ == "__main__":
    sys.exit(harness.main(fleet_model))
