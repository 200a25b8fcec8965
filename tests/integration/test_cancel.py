#!/usr/bin/python3
# Integration: cancelling a job mid-transfer leaves every node on its old firmware, also after a power cycle.
import sys

import harness
from harness import check, wait_until

BUSES = ["bus0"]
N = 4


def cancel(f):
    # four nodes sharing one bus and a big image, so that programming lasts long enough (about 2 s
    # without timing models) to be seen and cancelled
    f.start_fleet(BUSES, N)
    img2 = f.pack("2.0.0", release=2, seed=2, size=240 * 1024)
    r = f.ctl("update", img2, "--all", "--no-wait")
    check(r.rc == 0, f"update --no-wait: {r}")
    job_id = harness.job_id_of(r)

    def programming():
        j = f.job(job_id)
        check(j["state"] == "running", f"job ended ({j['state']}) before it could be cancelled: {j}")
        return any(n["step"] == "programming" and n["bytes_done"] > 0 for n in j["nodes"])

    wait_until("a node programming", programming, timeout=60, interval=0.02)
    r = f.ctl("cancel", job_id)
    check(r.rc == 0, f"cancel: {r}")
    check("cancelled" in r.out, f"cancel output: {r}")

    job = f.job(job_id)
    check(job["state"] == "cancelled", f"job state after cancel: {job['state']}")
    for n in job["nodes"]:
        check(n["step"] == "cancelled", f"{n['node']} step {n['step']} after cancel")
        check(n["bytes_done"] < n["bytes_total"], f"{n['node']} was completely sent: {n}")
    r = f.ctl("watch", job_id)
    check(r.rc == 4, f"watch of a cancelled job should exit 4: {r}")

    names = harness.all_nodes(BUSES, N)
    harness.assert_versions(f, {n: "1.0.0" for n in names})
    # power cycle: the boot sequence must not install the half-written image. canfleetd is restarted
    # with it, so that it opens the new pseudo-terminal.
    f.daemon.stop()
    sim = f.start_sim(BUSES, N)
    f.start_daemon()
    r = f.ctl("scan", "bus0", "--json")
    check(r.rc == 0, f"scan after power cycle: {r}")
    found = {n["node"]: n for n in r.json()["nodes"]}
    for n in names:
        check(n in found and found[n]["version"] == "1.0.0", f"{n} after power cycle: {found.get(n)}")
    sim.stop()
    shown = f.sim_show()
    for n in names:
        check(shown[n]["B"].get("version") == "1.0.0", f"{n} flash after power cycle: {shown[n]}")
        check(shown[n]["C"]["state"] != "valid", f"{n}: the staging area holds a valid image: {shown[n]}")


if __name__ == "__main__":
    # on plain images ("allow_unsigned": true), so that the unsigned path stays tested end to end
    sys.exit(harness.main(cancel, signed=False))
