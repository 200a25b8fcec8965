#!/usr/bin/python3
# Integration (issue 13): a cancel that comes after some nodes were reset into the new image reports
# what each node now runs, and canfleetctl's exit code follows what the nodes run: 4 while a node
# keeps its old image, 0 when every node runs the new one although the job says "cancelled".
import sys

import harness
from harness import check, wait_until

PAST_RESET = ("rebooting", "confirming")
BEFORE_RESET = ("queued", "connecting", "unlocking", "erasing", "programming", "verifying")


def cancel_when(f, job_id, ready, what):
    wait_until(what, lambda: ready({n["node"]: n["step"] for n in f.job(job_id)["nodes"]}), timeout=60,
               interval=0.02)
    r = f.ctl("cancel", str(job_id))
    check(r.rc == 0, f"cancel: {r}")
    return r


def cancel_after_reset(f):
    # one session at a time, and the simulator's flash timing: a node takes seconds to install after its
    # reset, while the next one is still erasing its staging area (2 s)
    f.start_fleet(["bus0"], 2, sim_extra=["--flash-timing"], daemon_top={"max_parallel": 1})
    img2 = f.pack("2.0.0", release=2, seed=2, size=8 * 1024)
    r = f.ctl("update", img2, "--all", "--no-wait")
    check(r.rc == 0, f"update: {r}")
    job1 = harness.job_id_of(r)
    r = cancel_when(f, job1, lambda s: s["bus0:1"] in PAST_RESET and s["bus0:2"] in BEFORE_RESET,
                    "bus0:1 reset, bus0:2 not yet")
    check("bus0:1: runs 2.0.0 (done)" in r.out and "bus0:2: runs 1.0.0 (kept)" in r.out,
          f"cancel does not say what each node runs: {r}")
    r = f.ctl("watch", str(job1))
    check(r.rc == 4, f"a cancelled job with a node on its old image exits 4: {r}")

    img3 = f.pack("3.0.0", release=3, seed=3, size=8 * 1024)
    r = f.ctl("update", img3, "--node", "bus0:1", "--no-wait")
    check(r.rc == 0, f"update: {r}")
    job2 = harness.job_id_of(r)
    r = cancel_when(f, job2, lambda s: s["bus0:1"] in PAST_RESET, "bus0:1 reset")
    check("bus0:1: runs 3.0.0 (done)" in r.out, f"cancel output: {r}")
    check(f.job(job2)["state"] == "cancelled", f"job {job2}: {f.job(job2)}")
    r = f.ctl("watch", str(job2))
    check(r.rc == 0, f"a cancelled job whose every node runs the new image exits 0: {r}")
    harness.assert_versions(f, {"bus0:1": "3.0.0", "bus0:2": "1.0.0"})


if __name__ == "__main__":
    sys.exit(harness.main(cancel_after_reset))
