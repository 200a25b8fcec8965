#!/usr/bin/python3
# Integration: a node whose boot install always fails (a flash fault) ends in its bootloader's recovery
# after 3 tries; the job fails that node with the reason, the other is updated; once the fault is gone
# (the simulator started again without it) a new update of that node succeeds.
import sys

import harness
from harness import check

BUSES = ["bus0"]
N = 2


def flash_fault(f):
    f.start_bus()
    img1 = f.pack("1.0.0", release=1)
    f.start_sim(BUSES, N, extra=["--flash-fault", "install:1"], install=img1)
    f.write_config(BUSES, N)
    f.start_daemon()
    img2 = f.pack("2.0.0", release=2, seed=2, size=4 * 1024)
    r = f.ctl("update", img2, "--all", timeout=120)
    check(r.rc == 1, f"update with a node that cannot install should exit 1: {r}")
    job = f.jobs()[0]
    steps = {n["node"]: n for n in job["nodes"]}
    check(steps["bus0:2"]["step"] == "done", f"bus0:2: {steps['bus0:2']}")
    e = steps["bus0:1"]
    check(e["step"] == "failed", f"bus0:1 should have failed: {e}")
    check("gave up installing 2.0.0 after 3 failed tries" in e["error"] and "recovery" in e["error"],
          f"bus0:1's reason: {e['error']!r}")
    nodes = f.nodes()
    # its state is what it runs (the bootloader, recovery); the failure is its last update's result,
    # and the node's own report says the bootloader gave up
    n1 = nodes["bus0:1"]
    check(n1["state"] == "recovery" and n1["last_update_result"] == "failed"
          and n1["last_update_status"] == "gave up" and "gave up" in n1["last_error"],
          f"bus0:1: {nodes['bus0:1']}")

    # the fault is gone: power cycle without it, canfleetd with it (it opens the new pseudo-terminal)
    f.daemon.stop()
    harness.stop_sims(f)
    f.start_sim(BUSES, N)
    f.start_daemon()
    r = f.ctl("update", img2, "--node", "bus0:1", timeout=120)
    check(r.rc == 0, f"the update after the fault: {r}")
    harness.assert_versions(f, {"bus0:1": "2.0.0"})
    harness.assert_versions(f, {n: "2.0.0" for n in harness.all_nodes(BUSES, N)}, via_daemon=False)


if __name__ == "__main__":
    sys.exit(harness.main(flash_fault))
