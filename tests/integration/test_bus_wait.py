#!/usr/bin/python3
# Integration (issue 13, every wait has a reason): a bus whose adapter does not exist. Its node's
# progress says why it waits, `status` shows the bus's error text, and after start_timeout_s the node
# fails with that reason instead of waiting forever.
import json
import os
import sys

import harness
from harness import check, wait_until


def bus_wait(f):
    f.start_bus()
    img1 = f.pack("1.0.0", release=1)
    f.start_sim(["bus0"], 1, install=img1)
    conf = f.write_config(["bus0"], 1, start_timeout_s=3)
    missing = os.path.join(f.dir, "ttyACM-missing")
    conf["buses"].append({"name": "bus9", "transport": f"slcan:{missing}", "bitrate": 500000, "nodes": [1]})
    with open(f.config_path, "w") as fh:
        json.dump(conf, fh, indent=2)
    f.start_daemon()
    why = f"waiting for bus9: cannot open {missing}: No such file or directory"

    r = f.ctl("status")
    check(r.rc == 0 and f"bus9: cannot open {missing}: No such file or directory" in r.out, f"status: {r}")
    st = f.ctl("status", "--json").json()
    bus9 = [b for b in st["buses"] if b["name"] == "bus9"][0]
    check(bus9["link"] != "up" and "No such file or directory" in (bus9["error"] or ""), f"bus9: {bus9}")

    img2 = f.pack("2.0.0", release=2, seed=2)
    r = f.ctl("update", img2, "--node", "bus9:1", "--node", "bus0:1", "--no-wait")
    check(r.rc == 0, f"update --no-wait: {r}")
    job_id = harness.job_id_of(r)

    def waiting():
        n = [x for x in f.job(job_id)["nodes"] if x["node"] == "bus9:1"][0]
        return n["step"] == "queued" and n["error"] == why
    wait_until("bus9:1's progress naming its wait", waiting, timeout=10)

    r = f.ctl("watch", str(job_id), timeout=60)
    check(r.rc == 1, f"the job should fail (1) once bus9:1 could not start: {r}")
    job = f.job(job_id)
    nodes = {n["node"]: n for n in job["nodes"]}
    check(nodes["bus0:1"]["step"] == "done", f"bus0:1: {nodes['bus0:1']}")
    n = nodes["bus9:1"]
    check(n["step"] == "failed" and "could not start within 3 s (start_timeout_s)" in (n["error"] or "")
          and why in n["error"], f"bus9:1: {n}")


if __name__ == "__main__":
    sys.exit(harness.main(bus_wait))
