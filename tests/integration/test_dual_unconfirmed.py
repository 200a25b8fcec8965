#!/usr/bin/python3
# Integration: a dual-bank trial that nobody confirms (docs/design.md §9). The node's application runs
# healthily but never confirms itself (canfleet-nodesim --app-no-confirm) and canfleetd does not confirm
# either ("confirm_trial_ms" left at its default 0): the job fails after "trial_timeout_s" with a reason
# that says what the node runs — the new version from its new bank, unconfirmed, until its next reset.
# That is checked in the node as it runs and in its flash; then a power cut: the node boots its previous
# bank and version again and reports the trial reverted. A later update of that node (canfleetd confirming
# this time) ends confirmed: the earlier revert is not taken for its own.
import sys

import dual_fixture as dual
import harness
from harness import check

TRIAL_TIMEOUT_S = 3


def dual_unconfirmed(f):
    f.start_bus()
    v1 = dual.pack_dual(f, "1.0.0", release=1)
    sim_args = dual.sim_extra(extra=["--app-no-confirm"])
    sim = f.start_sim(["bus0"], 1, extra=sim_args, install=v1)
    conf = f.write_config(["bus0"], 1, trial_timeout_s=TRIAL_TIMEOUT_S)
    check("confirm_trial_ms" not in conf, "the default confirm_trial_ms (0) is what is tested")
    f.start_daemon()
    harness.wait_probed(f)

    v2 = dual.pack_dual(f, "2.0.0", release=2, seed=2)
    r = f.ctl("update", v2, "--all", "--json")
    job = dual.job_of(r)
    check(r.rc == 1 and job["state"] == "failed", f"an update that is never confirmed did not fail: {r}")
    n = job["nodes"][0]
    expect = (f"bus0:1: trial not confirmed within {TRIAL_TIMEOUT_S} s: the node runs 2.0.0 from bank 2 "
              "unconfirmed and goes back to its previous bank at its next reset")
    check(n["step"] == "failed" and n["error"] == expect, f"bus0:1's failure: {n}; expected the reason {expect!r}")
    check("canfleetd confirmed" not in f.daemon.output(), "canfleetd confirmed with confirm_trial_ms 0")

    # what the reason says: the node runs the new version from bank 2, still on trial, nobody confirmed
    node = f.nodes()["bus0:1"]
    check(node["version"] == "2.0.0" and node["bank"] == 2 and node["trial"] == "pending",
          f"bus0:1 after the job: {node}")
    r = f.ctl("scan", "bus0", "--json")  # a fresh look, not what the job saw last
    found = {x["node"]: x for x in r.json()["nodes"]} if r.rc == 0 else {}
    n1 = found.get("bus0:1")
    check(n1 and n1["version"] == "2.0.0" and n1["bank"] == 2 and n1["trial"] == "pending",
          f"bus0:1 scanned after the job: {r}")
    simlog = sim.output()
    check("bus0-1: the new application runs and does not confirm itself" in simlog,
          f"the node never ran its new application on trial: {simlog}")
    for said in ("the running bank is confirmed", "the application confirmed its trial",
                 "confirmed by the master's CCP CONFIRM"):
        check(said not in simlog, f"something confirmed the trial: {simlog}")

    # the power cut: in flash the node is on bank 2, on trial; powered again it reverts to bank 1
    f.daemon.stop()
    harness.stop_sims(f)
    s = f.sim_show()["bus0:1"]
    check(s["boot_bank"] == 2 and s["trial"] == "pending", f"bus0:1 in flash before the power comes back: {s}")
    sim = f.start_sim(["bus0"], 1, extra=sim_args)
    f.start_daemon()
    r = f.ctl("scan", "bus0", "--json")
    check(r.rc == 0, f"scan after the power cut: {r}")
    n1 = {x["node"]: x for x in r.json()["nodes"]}.get("bus0:1")
    check(n1 and n1["version"] == "1.0.0" and n1["bank"] == 1 and n1["trial"] == "reverted",
          f"bus0:1 after the power cut: {n1}")
    check("bus0-1: boot: the trial was not confirmed before a reset: reverting" in sim.output(),
          f"the node did not say it reverted: {sim.output()}")

    # the revert is of an earlier job: the next update, confirmed by canfleetd, is not taken for a revert
    f.daemon.stop()
    f.write_config(["bus0"], 1, trial_timeout_s=15, confirm_trial_ms=500)
    f.start_daemon()
    r = f.ctl("update", v2, "--all", "--json")
    job = dual.job_of(r)
    check(r.rc == 0 and job["nodes"][0]["step"] == "confirmed", f"the update after the revert: {r}")
    harness.stop_sims(f)
    s = f.sim_show()["bus0:1"]
    check(s["boot_bank"] == 2 and s["trial"] == "confirmed" and s["bank1"].get("version") == "1.0.0"
          and s["bank2"].get("version") == "2.0.0", f"bus0:1 in flash after the second update: {s}")


if __name__ == "__main__":
    sys.exit(harness.main(dual_unconfirmed))
