#!/usr/bin/python3
# Integration (issue 13, every wait has a reason): a bus whose adapter does not exist. Its node's
# progress says why it waits (in the job, on canfleetctl's terminal frame with the summary's "1 waiting",
# and in its plain lines), `status` shows the bus's error text, a cancel gives the node back the state it
# had (not "updating"), and after start_timeout_s the node fails with that reason instead of waiting
# forever.
import json
import os
import re
import sys

import harness
from harness import check, wait_until
from tmux_pane import Pane


def configure(f, missing, start_timeout_s):
    conf = f.write_config(["bus0"], 1, start_timeout_s=start_timeout_s)
    conf["buses"].append({"name": "bus9", "transport": f"slcan:{missing}", "bitrate": 500000, "nodes": [1]})
    with open(f.config_path, "w") as fh:
        json.dump(conf, fh, indent=2)


def waiting_node(f, job_id, why):
    n = [x for x in f.job(job_id)["nodes"] if x["node"] == "bus9:1"][0]
    return n["step"] == "queued" and n["error"] == why


def shown_and_cancelled(f, missing, why):
    """A node that waits for its bus, seen by an operator; then the job cancelled."""
    img2 = f.pack("2.0.0", release=2, seed=2)
    # the dry run says that bus9:1's hardware id (never read) is checked when it answers
    r = f.ctl("update", img2, "--all", "--dry-run", "--json")
    plan = {n["node"]: n for n in r.json()["nodes"]} if r.rc == 0 else {}
    check(plan.get("bus9:1", {}).get("result") == "update" and plan["bus9:1"]["reason"] == "hw id checked on connect"
          and plan["bus0:1"]["reason"] is None, f"dry run of a node never met: {r}")
    r = f.ctl("update", img2, "--node", "bus9:1", "--no-wait")
    check(r.rc == 0, f"update --no-wait: {r}")
    job_id = harness.job_id_of(r)
    wait_until("bus9:1's progress naming its wait", lambda: waiting_node(f, job_id, why), timeout=10)
    check(f.nodes()["bus9:1"]["state"] == "updating", f"bus9:1 in a job: {f.nodes()['bus9:1']}")

    # piped: a line with the reason; on a terminal: the node's line with the reason, and the summary
    # counts it as waiting (no ETA: nothing moves)
    plain = f.ctl_bg("watch", str(job_id), name="watch-plain")
    pane = Pane(f, ["watch", str(job_id)], cols=80, rows=24)
    try:
        # the row is cut to the pane's width
        line = f"  bus9:1 queued      {why}"[:60]

        def framed():
            screen = pane.capture()
            return any(l.startswith(line) for l in screen) and any(re.match(r"^job \d+ +0%  0/1 done, 0 failed, 0 active, 1 waiting  "
                                                   r"\S+, ETA -, ", l) for l in screen) and screen
        wait_until(f"the terminal frame to show {line!r} and '1 waiting'", framed, timeout=20)
    finally:
        pane.close()

    r = f.ctl("cancel", str(job_id))
    check(r.rc == 0 and "job %d cancelled: 1 node keeps its old firmware, 0 already updated" % job_id in r.out
          and "bus9:1: runs an unknown version (kept)" in r.out, f"cancel: {r}")
    wait_until("the piped watch to end", lambda: not plain.alive(), timeout=20)
    out = plain.output()
    check(plain.p.returncode == 4, f"watch of a cancelled job whose node kept its image exits 4: {out}")
    check(f"bus9:1: {why}\n" in out and "1 waiting" in out, f"piped watch does not say why bus9:1 waits:\n{out}")
    # the job never talked to bus9:1: it is again what it was (never met: unknown), not "updating"
    n = f.nodes()["bus9:1"]
    check(n["state"] == "unknown" and n["last_update_result"] is None, f"bus9:1 after the cancel: {n}")


def bus_wait(f):
    f.start_bus()
    img1 = f.pack("1.0.0", release=1)
    f.start_sim(["bus0"], 1, install=img1)
    missing = os.path.join(f.dir, "ttyACM-missing")
    why = f"waiting for bus9: cannot open {missing}: No such file or directory"
    configure(f, missing, 600)
    f.start_daemon()
    shown_and_cancelled(f, missing, why)
    f.daemon.stop()
    configure(f, missing, 3)
    f.start_daemon()

    r = f.ctl("status")
    check(r.rc == 0 and f"bus9: cannot open {missing}: No such file or directory" in r.out, f"status: {r}")
    st = f.ctl("status", "--json").json()
    bus9 = [b for b in st["buses"] if b["name"] == "bus9"][0]
    check(bus9["link"] != "up" and "No such file or directory" in (bus9["error"] or ""), f"bus9: {bus9}")

    img2 = f.pack("2.0.0", release=2, seed=2)
    r = f.ctl("update", img2, "--node", "bus9:1", "--node", "bus0:1", "--no-wait")
    check(r.rc == 0, f"update --no-wait: {r}")
    job_id = harness.job_id_of(r)

    wait_until("bus9:1's progress naming its wait", lambda: waiting_node(f, job_id, why), timeout=10)

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
