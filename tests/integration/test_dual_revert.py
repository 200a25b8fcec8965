#!/usr/bin/python3
# Integration: an update whose application never confirms (canfleet-nodesim --app-fails-after-update on
# one node: the new application crashes before it would confirm its trial) ends with the old version
# running on that node, from its previous bank, and the job's node failed with the reason "reverted";
# the other node of the job confirms. The job fails, canfleetctl update exits 1, and canfleetctl nodes
# shows the revert. Then with "confirm_trial_ms", where canfleetd confirms a node that ran the new
# image on trial that long: the failing node still reverts (it crashes first), a healthy one is
# confirmed.
import sys

import dual_fixture as dual
import harness
from harness import check


def check_outcome(f, job_id, version_new):
    job = f.job(job_id)
    check(job["state"] == "failed", f"job state {job['state']}: {job}")
    steps = {n["node"]: n for n in job["nodes"]}
    bad, good = steps["bus0:1"], steps["bus0:2"]
    check(bad["step"] == "failed" and bad["error"] and "reverted" in bad["error"],
          f"bus0:1 should have failed as reverted: {bad}")
    check(good["step"] == "confirmed", f"bus0:2 should be confirmed: {good}")
    nodes = f.nodes()
    b = nodes["bus0:1"]
    check(b["version"] == "1.0.0" and b["bank"] == 1 and b["trial"] == "reverted",
          f"bus0:1 after the revert: version {b['version']}, bank {b['bank']}, trial {b['trial']}")
    check(b["last_update_result"] == "reverted", f"bus0:1 last_update_result {b['last_update_result']}")
    g = nodes["bus0:2"]
    check(g["version"] == version_new and g["bank"] == 2 and g["trial"] == "confirmed", f"bus0:2: {g}")


def dual_revert(f):
    f.start_bus()
    v1 = dual.pack_dual(f, "1.0.0", release=1)
    f.start_sim(["bus0"], 2, extra=dual.sim_extra(extra=["--app-fails-after-update=1"]), install=v1)
    f.write_config(["bus0"], 2)
    f.start_daemon()
    harness.wait_probed(f)

    v2 = dual.pack_dual(f, "2.0.0", release=2, seed=2)
    r = f.ctl("update", v2, "--all")
    check(r.rc == 1, f"update with a node that reverts did not exit 1: {r}")
    check("reverted" in r.out + r.err, f"update's output does not say reverted: {r}")
    check_outcome(f, f.jobs()[-1]["id"], "2.0.0")
    r = f.ctl("nodes")
    check(r.rc == 0 and "1 reverted" in r.out, f"canfleetctl nodes does not show bus0:1 '1 reverted': {r}")
    r = f.ctl("node", "bus0:1")
    check(r.rc == 0 and "runs from bank 1, last trial reverted" in r.out, f"canfleetctl node bus0:1: {r}")

    # canfleetd confirming itself after its own checks (confirm_trial_ms: the image ran on trial that long
    # without a reset) does not save a node whose application crashes first
    f.daemon.stop()
    f.write_config(["bus0"], 2, confirm_trial_ms=1000, trial_timeout_s=20)
    f.start_daemon()
    v3 = dual.pack_dual(f, "3.0.0", release=3, seed=3)
    r = f.ctl("update", v3, "--node", "bus0:1", "--json")
    check(r.rc == 1 and "reverted" in r.json()["nodes"][0]["error"], f"bus0:1 did not revert again: {r}")
    check("canfleetd confirmed its trial" not in f.daemon.output(),
          "canfleetd confirmed the trial of an application that crashed")
    # a healthy node is confirmed (by canfleetd after 1 ms on trial, or by its application: whichever
    # comes first; CONFIRM answers OK when there is nothing left to confirm)
    f.daemon.stop()
    f.write_config(["bus0"], 2, confirm_trial_ms=1, trial_timeout_s=20)
    f.start_daemon()
    r = f.ctl("update", v3, "--node", "bus0:2", "--json")
    check(r.rc == 0 and r.json()["nodes"][0]["step"] == "confirmed", f"bus0:2 was not confirmed: {r}")
    print("bus0:2 confirmed by", "canfleetd" if "canfleetd confirmed its trial of 3.0.0" in f.daemon.output()
          else "its application")

    harness.stop_sims(f)
    shown = f.sim_show()
    check(shown["bus0:1"]["boot_bank"] == 1 and shown["bus0:1"]["bank1"].get("version") == "1.0.0",
          f"bus0:1 in flash: {shown['bus0:1']}")
    check(shown["bus0:2"]["boot_bank"] == 1 and shown["bus0:2"]["bank1"].get("version") == "3.0.0",
          f"bus0:2 in flash: {shown['bus0:2']}")


if __name__ == "__main__":
    sys.exit(harness.main(dual_revert))
