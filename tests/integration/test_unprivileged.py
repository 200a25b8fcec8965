#!/usr/bin/python3
# Integration: a caller who is neither root nor in group canfleet may read but not update, cancel or scan.
import os
import shutil
import sys

import harness
from harness import check

NOBODY = 65534
BUSES = ["bus0"]


def permission_message(r):
    return "permission denied" in r.err.lower()


def unprivileged(f):
    check(shutil.which("setpriv") is not None, "setpriv (util-linux) is needed to run as another user")
    check(os.getuid() == 0, "this test switches to uid 65534 and must start as root")
    f.start_fleet(BUSES, 2)
    img2 = f.pack("2.0.0", release=2, seed=2)

    r = f.ctl("nodes", "--json", uid=NOBODY)
    check(r.rc == 0, f"nodes as uid {NOBODY}: {r}")
    check(sorted(n["node"] for n in r.json()["nodes"]) == harness.all_nodes(BUSES, 2), f"nodes as nobody: {r}")
    r = f.ctl("status", uid=NOBODY)
    check(r.rc == 0 and "canfleetd" in r.out, f"status as uid {NOBODY}: {r}")
    r = f.ctl("jobs", "--json", uid=NOBODY)
    check(r.rc == 0 and r.json()["jobs"] == [], f"jobs as uid {NOBODY}: {r}")

    r = f.ctl("update", img2, "--all", uid=NOBODY)
    check(r.rc == 5 and permission_message(r), f"update as uid {NOBODY} should be refused with exit 5: {r}")
    r = f.ctl("update", img2, "--node", "bus0:1", uid=NOBODY)
    check(r.rc == 5 and permission_message(r), f"update --node as uid {NOBODY}: {r}")
    # the dry run (PlanUpdate) reads canfleetd's verdict on the keyring and the nodes: privileged too
    r = f.ctl("update", img2, "--all", "--dry-run", uid=NOBODY)
    check(r.rc == 5 and permission_message(r) and "signature:" not in r.out,
          f"update --dry-run as uid {NOBODY}: {r}")
    r = f.ctl("scan", "bus0", uid=NOBODY)
    check(r.rc == 5 and permission_message(r), f"scan as uid {NOBODY} should be refused with exit 5: {r}")
    check(f.jobs() == [], "a refused update created a job")

    # a job of root's that nobody tries to cancel
    r = f.ctl("update", img2, "--all", "--no-wait")
    check(r.rc == 0, f"update as root: {r}")
    job_id = harness.job_id_of(r)
    r = f.ctl("cancel", job_id, uid=NOBODY)
    check(r.rc == 5 and permission_message(r), f"cancel as uid {NOBODY} should be refused with exit 5: {r}")
    r = f.ctl("watch", job_id, uid=NOBODY)
    check(r.rc == 0, f"watching as uid {NOBODY} is reading and allowed; the job must end done: {r}")
    check(f.job(job_id)["state"] == "done", "the job did not end done")
    harness.assert_versions(f, {n: "2.0.0" for n in harness.all_nodes(BUSES, 2)})


if __name__ == "__main__":
    sys.exit(harness.main(unprivileged))
