#!/usr/bin/python3
# Integration: a node that never answers fails alone, named in the error; the 7 others are updated.
import sys

import harness
from harness import check


def silent_node(f):
    f.start_bus()
    img1 = f.pack("1.0.0", release=1)
    # one simulator per bus, so that only bus0's station 3 is silent
    f.start_sim(["bus0"], 4, extra=["--silent", "3"], install=img1)
    f.start_sim(["bus1"], 4, install=img1)
    # a node that stops answering is looked for node_lost_timeout_s (default 30) before it fails
    f.write_config(["bus0", "bus1"], 4, node_lost_timeout_s=3)
    f.start_daemon()

    img2 = f.pack("2.0.0", release=2, seed=2)
    r = f.ctl("update", img2, "--all")
    check(r.rc == 1, f"update with a silent node should exit 1: {r}")
    check("bus0:3" in r.err and "failed" in r.err, f"the failed node is not named on stderr: {r}")
    check("7 updated" in r.out and "1 failed" in r.out, f"summary: {r}")

    job = f.jobs()[0]
    check(job["state"] == "failed", f"job state {job['state']}")
    steps = {n["node"]: n for n in job["nodes"]}
    check(steps["bus0:3"]["step"] == "failed" and steps["bus0:3"]["error"],
          f"bus0:3 should have failed with a reason: {steps['bus0:3']}")
    others = [n for n in harness.all_nodes(["bus0", "bus1"], 4) if n != "bus0:3"]
    for n in others:
        check(steps[n]["step"] == "done", f"{n}: {steps[n]}")

    nodes = f.nodes()
    check(nodes["bus0:3"]["state"] == "offline", f"bus0:3 state {nodes['bus0:3']}")
    check("no answer since, for 3 s (offline)" in steps["bus0:3"]["error"], f"bus0:3's reason: {steps['bus0:3']}")
    check(nodes["bus0:3"]["last_error"], f"bus0:3 has no last_error: {nodes['bus0:3']}")
    expect = {n: "2.0.0" for n in others}
    harness.assert_versions(f, expect)
    # the silent node's flash was never touched: still v1
    harness.assert_versions(f, {"bus0:3": "1.0.0"}, via_daemon=False)


if __name__ == "__main__":
    sys.exit(harness.main(silent_node))
