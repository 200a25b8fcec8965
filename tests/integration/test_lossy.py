#!/usr/bin/python3
# Integration: 8 nodes on 2 buses behind a lossy SLCAN line (frames dropped and/or a data bit flipped,
# fixed seed) are all updated with canfleetd's default retry settings.
"""
The fault comes from the environment (meson passes it): CANFLEET_FAULT, the simulator's switches,
e.g. "--drop 0.01 --corrupt 0.01"; CANFLEET_APP_KB, the application's size in KB (default 2);
CANFLEET_NODES_PER_BUS (default 4); CANFLEET_SIM_SEED, the simulator's random seed (default 14).
canfleetd runs with its defaults: retries 3, reply_timeout_ms 25 (CCP's own), node_lost_timeout_s 30.
Prints one line with the figures (faults injected as the simulator counts them are in its log).
"""
import json
import os
import shlex
import sys
import time

import harness
from harness import check

BUSES = ["bus0", "bus1"]


def lossy(f):
    fault = shlex.split(os.environ.get("CANFLEET_FAULT", ""))
    kb = float(os.environ.get("CANFLEET_APP_KB", "2"))
    N = int(os.environ.get("CANFLEET_NODES_PER_BUS", "4"))
    f.start_bus()
    img1 = f.pack("1.0.0", release=1)
    # the fleet starts clean (v1 installed), then the line turns bad for the update
    f.start_sim(BUSES, N, extra=["--seed", os.environ.get("CANFLEET_SIM_SEED", "14")] + fault, install=img1)
    conf = f.write_config(BUSES, N)
    del conf["reply_timeout_ms"]  # canfleetd's default: CCP's 25 ms
    with open(f.config_path, "w") as out:
        json.dump(conf, out, indent=2)
    f.start_daemon()
    img2 = f.pack("2.0.0", release=2, seed=2, size=int(kb * 1024))
    t0 = time.monotonic()
    r = f.ctl("update", img2, "--all", timeout=400)
    took = time.monotonic() - t0
    job = f.jobs()[0]
    done = sum(1 for n in job["nodes"] if n["step"] == "done")
    print(f"FIGURES fault={' '.join(fault) or 'none'} app={kb:g}KB nodes_done={done}/{len(job['nodes'])} "
          f"update_s={took:.1f}")
    for n in job["nodes"]:
        check(n["step"] == "done", f"{n['node']}: {n['step']} {n.get('error')}")
    check(r.rc == 0, f"update under {fault}: {r}")
    check(job["state"] == "done", f"job state {job['state']}")
    harness.assert_versions(f, {n: "2.0.0" for n in harness.all_nodes(BUSES, N)})


if __name__ == "__main__":
    sys.exit(harness.main(lossy))
