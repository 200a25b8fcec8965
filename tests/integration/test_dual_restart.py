#!/usr/bin/python3
# Integration: canfleetd SIGKILLed while a dual-bank node runs its new bank on trial, started again:
# the job resumes in the trial step and succeeds only once the node confirms; a second node whose new
# application crashes on trial (--app-fails-after-update=2) reverts while canfleetd is down and fails
# as reverted after the restart.
#
# To kill canfleetd while the node is certainly on trial, bus0:1's application never confirms by
# itself (--app-no-confirm=1): canfleetd confirms it (confirm_trial_ms), and only after its trial
# has lasted CONFIRM_MS without a reset, which the restart starts again. The simulator is frozen
# (SIGSTOP) as soon as the job's saved state says "trial" for bus0:1, and its flash is read to make
# sure; should the node have confirmed all the same, the round is repeated with a new version, at
# most ROUNDS times. The node is thawed (SIGCONT) after the restart.
import json
import os
import signal
import sys
import time

import dual_fixture as dual
import harness
from harness import check

ROUNDS = 4
CONFIRM_MS = 3000


def saved_step(f, job_id, idx):
    """The step of node idx of the job as canfleetd saved it (snapshot, then its log), or None."""
    jobs = os.path.join(f.state_dir, "jobs")
    step = None
    try:
        with open(os.path.join(jobs, f"{job_id}.json")) as fh:
            step = json.load(fh)["nodes"][idx]["step"]
    except (OSError, ValueError, KeyError, IndexError):
        pass
    try:
        with open(os.path.join(jobs, f"{job_id}.log")) as fh:
            for line in fh:
                if not line.endswith("\n"):
                    break
                rec = json.loads(line)
                if rec.get("node") == idx and "step" in rec:
                    step = rec["step"]
    except (OSError, ValueError):
        pass
    return step


def one_round(f, sim, version, release):
    bundle = dual.pack_dual(f, version, release=release, seed=release)
    r = f.ctl("update", bundle, "--all", "--no-wait")
    check(r.rc == 0, f"update --no-wait: {r}")
    job_id = harness.job_id_of(r)
    deadline = time.monotonic() + harness.scaled(60)
    while saved_step(f, job_id, 0) not in ("trial", "confirmed", "failed"):
        check(time.monotonic() < deadline, f"bus0:1 never reached the trial step: {f.job(job_id)}")
        time.sleep(0.002)
    os.kill(sim.pid, signal.SIGSTOP)
    step = saved_step(f, job_id, 0)
    shown = f.sim_show()  # the frozen simulator's flash files
    if step != "trial" or shown["bus0:1"]["trial"] != "pending":
        os.kill(sim.pid, signal.SIGCONT)
        r = f.ctl("watch", job_id)
        print(f"round {version}: too late (step {step}, node trial {shown['bus0:1']['trial']}), again")
        return None
    f.daemon.kill(signal.SIGKILL)
    f.start_daemon()
    j = f.job(job_id)
    check(j["state"] == "running", f"the job did not resume: {j}")
    n1 = [n for n in j["nodes"] if n["node"] == "bus0:1"][0]
    check(n1["step"] in ("rebooting", "confirming", "trial"), f"bus0:1 resumed at {n1}")
    os.kill(sim.pid, signal.SIGCONT)
    r = f.ctl("watch", job_id, timeout=120)
    return job_id, r


def dual_restart(f):
    f.start_bus()
    v1 = dual.pack_dual(f, "1.0.0", release=1)
    sim = f.start_sim(["bus0"], 2, extra=dual.sim_extra(extra=["--app-fails-after-update=2", "--app-no-confirm=1"]),
                      install=v1)
    f.write_config(["bus0"], 2, confirm_trial_ms=CONFIRM_MS)
    f.start_daemon()
    harness.wait_probed(f)

    result = None
    for k in range(ROUNDS):
        result = one_round(f, sim, f"2.0.{k}", 2 + k)
        if result:
            break
    check(result is not None, f"bus0:1 was never caught on trial in {ROUNDS} rounds")
    job_id, r = result
    check(r.rc == 1, f"watch of the resumed job: expected exit 1 (bus0:2 reverted): {r}")
    job = f.job(job_id)
    steps = {n["node"]: n for n in job["nodes"]}
    check(steps["bus0:1"]["step"] == "confirmed", f"bus0:1 after the restart: {steps['bus0:1']}")
    check(steps["bus0:2"]["step"] == "failed" and "reverted" in (steps["bus0:2"]["error"] or ""),
          f"bus0:2 after the restart: {steps['bus0:2']}")
    version = job["image"]["version"]
    nodes = f.nodes()
    check(nodes["bus0:1"]["version"] == version and nodes["bus0:1"]["trial"] == "confirmed", f"{nodes['bus0:1']}")
    check(nodes["bus0:2"]["trial"] == "reverted", f"{nodes['bus0:2']}")


if __name__ == "__main__":
    sys.exit(harness.main(dual_restart))
