#!/usr/bin/python3
# Integration: canfleetd's own confirmation of a dual-bank trial ("confirm_trial_ms", docs/design.md §9).
# The nodes' application runs healthily but never confirms itself (canfleet-nodesim --app-no-confirm), so
# the only thing that can end their trial is canfleetd's CCP CONFIRM (0xCF10): the job ends "confirmed"
# only if canfleetd sent it and the node took it. The simulator's log says who confirmed; the trial byte
# goes to confirmed in the node and in its flash, and a power cut afterwards keeps the new version on
# its new bank (a confirmed trial is never reverted).
import sys

import dual_fixture as dual
import harness
from harness import check

NODES = ["bus0:1", "bus0:2"]
CONFIRM_MS = 1000
# short, so that this test fails in seconds when nobody confirms (the trial otherwise ends at about
# CONFIRM_MS plus a look or two)
TRIAL_TIMEOUT_S = 15


def dual_confirm(f):
    f.start_bus()
    v1 = dual.pack_dual(f, "1.0.0", release=1)
    sim_args = dual.sim_extra(extra=["--app-no-confirm"])
    sim = f.start_sim(["bus0"], 2, extra=sim_args, install=v1)
    f.write_config(["bus0"], 2, confirm_trial_ms=CONFIRM_MS, trial_timeout_s=TRIAL_TIMEOUT_S)
    f.start_daemon()
    harness.wait_probed(f)

    v2 = dual.pack_dual(f, "2.0.0", release=2, seed=2)
    r = f.ctl("update", v2, "--all", "--json")
    job = dual.job_of(r)
    check(r.rc == 0 and job["state"] == "done", f"update with canfleetd confirming did not succeed: {r}")
    for n in job["nodes"]:
        check(n["step"] == "confirmed" and n["error"] is None, f"{n['node']} is not confirmed: {n}")

    # who confirmed: canfleetd sent CONFIRM, each node took it over CCP, no application confirmed itself
    log = f.daemon.output()
    simlog = sim.output()
    for name in NODES:
        check(f"{name}: canfleetd confirmed its trial of 2.0.0" in log, f"canfleetd did not confirm {name}: {log}")
        node = "bus0-" + name.split(":")[1]
        check(f"{node}: the new application runs and does not confirm itself (--app-no-confirm)" in simlog,
              f"{node} never ran its new application on trial: {simlog}")
        check(f"{node}: the trial was confirmed by the master's CCP CONFIRM" in simlog,
              f"{node} does not say a CCP CONFIRM confirmed its trial: {simlog}")
    check("the application confirmed its trial" not in simlog, f"an application confirmed itself: {simlog}")

    nodes = f.nodes()
    for name in NODES:
        n = nodes[name]
        check(n["version"] == "2.0.0" and n["bank"] == 2 and n["trial"] == "confirmed"
              and n["last_update_result"] == "confirmed", f"{name} after the update: {n}")

    # a power cut after the confirmation: the node boots its new bank again, no revert
    f.daemon.stop()
    harness.stop_sims(f)
    shown = f.sim_show()
    for name in NODES:
        s = shown[name]
        check(s["boot_bank"] == 2 and s["trial"] == "confirmed" and s["bank2"].get("version") == "2.0.0",
              f"{name} in flash after the confirmation: {s}")
    sim = f.start_sim(["bus0"], 2, extra=sim_args)  # power back, the same never-confirming application
    f.start_daemon()
    r = f.ctl("scan", "bus0", "--json")
    check(r.rc == 0, f"scan after the power cut: {r}")
    found = {n["node"]: n for n in r.json()["nodes"]}
    for name in NODES:
        n = found.get(name)
        check(n and n["version"] == "2.0.0" and n["bank"] == 2 and n["trial"] == "confirmed",
              f"{name} after the power cut: {n}")
    check("reverting" not in sim.output(), f"a node reverted after the power cut: {sim.output()}")


if __name__ == "__main__":
    sys.exit(harness.main(dual_confirm))
