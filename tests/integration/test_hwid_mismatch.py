#!/usr/bin/python3
# Integration: an image for another hardware id is refused before anything is erased on any node.
import re
import sys

import harness
from harness import check

BUSES = ["bus0"]
CRO_BASE = 0x680
FRAME = re.compile(r"\b([0-9A-F]{3}) \[(\d)\]((?: [0-9A-F]{2})*)")


def cro_commands(log, stations):
    """The first byte (CCP command) of every frame the simulator logged on a CRO id of stations."""
    ids = {CRO_BASE + sa for sa in stations}
    out = []
    for line in log.splitlines():
        m = FRAME.search(line)
        if m and int(m.group(1), 16) in ids and m.group(3):
            out.append(int(m.group(3).split()[0], 16))
    return out


def hwid_mismatch(f):
    f.start_bus()
    img1 = f.pack("1.0.0", hw_id=0x0001, release=1)
    sim = f.start_sim(BUSES, 2, extra=["--log-frames", "--hw-id", "0x0001"], install=img1)
    f.write_config(BUSES, 2)
    f.start_daemon()
    img = f.pack("2.0.0", hw_id=0x0002, release=2, seed=2)

    # first while canfleetd has not met the nodes (it learns their hardware id in the session), then
    # after a scan (it may refuse at once)
    for phase in ("unknown nodes", "scanned nodes"):
        if phase == "scanned nodes":
            r = f.ctl("scan", "bus0")
            check(r.rc == 0, f"scan: {r}")
        r = f.ctl("update", img, "--all")
        check(r.rc in (1, 5), f"{phase}: update with an image for hardware 0x0002 should fail (1 or 5): {r}")
        check(re.search(r"hardware", r.text, re.I), f"{phase}: the refusal does not name the mismatch: {r}")

    jobs = f.jobs()
    for j in jobs:
        check(j["state"] != "done", f"a job with the wrong hardware id ended done: {j}")
        for n in j["nodes"]:
            check(n["step"] != "done", f"{n['node']} took an image for another hardware: {n}")
            check(re.search(r"hardware", n["error"], re.I), f"{n['node']}: error does not say why: {n}")

    harness.assert_versions(f, {n: "1.0.0" for n in harness.all_nodes(BUSES, 2)})
    cmds = cro_commands(sim.output(), [1, 2])
    check(0x01 in cmds, f"the frame log shows no CONNECT at all (log format not understood?): {sorted(set(cmds))}")
    check(0x10 not in cmds, "CLEAR_MEMORY was sent to a node with another hardware id")
    check(not ({0x18, 0x22} & set(cmds)), "PROGRAM was sent to a node with another hardware id")
    shown = f.sim_show()
    for n in harness.all_nodes(BUSES, 2):
        check(shown[n]["C"]["state"] == "erased", f"{n}: staging area touched: {shown[n]['C']}")


if __name__ == "__main__":
    sys.exit(harness.main(hwid_mismatch))
