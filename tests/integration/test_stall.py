#!/usr/bin/python3
# Integration: bus0's SLCAN adapter freezes for 1 s in the middle of the transfer (nothing in, nothing
# out): no node fails, and none needs a new session: the stall pauses the tries instead of using them.
import json
import sys

import harness
from harness import check

BUSES = ["bus0", "bus1"]
N = 4


def stall(f):
    f.start_bus()
    img1 = f.pack("1.0.0", release=1)
    # host frame 600 of bus0: past the identify and erase of its 4 nodes, in the transfer
    f.start_sim(BUSES, N, extra=["--stall", "600:1000:bus0"], install=img1)
    conf = f.write_config(BUSES, N)
    del conf["reply_timeout_ms"]  # CCP's 25 ms: 3 tries are over long before the stall is
    with open(f.config_path, "w") as out:
        json.dump(conf, out, indent=2)
    f.start_daemon()
    img2 = f.pack("2.0.0", release=2, seed=2, size=8 * 1024)
    r = f.ctl("update", img2, "--all", timeout=120)
    check(r.rc == 0, f"update across a stall: {r}")
    sims = f.sims[0].output()
    check("stalls for 1000 ms after host frame 600" in sims, f"the adapter did not stall:\n{sims[-2000:]}")
    job = f.jobs()[0]
    for n in job["nodes"]:
        check(n["step"] == "done", f"{n}")
    log = f.daemon.output()
    check("new session" not in log and "looking for the node" not in log,
          f"the stall cost sessions:\n{log[-3000:]}")
    harness.assert_versions(f, {n: "2.0.0" for n in harness.all_nodes(BUSES, N)})


if __name__ == "__main__":
    sys.exit(harness.main(stall))
