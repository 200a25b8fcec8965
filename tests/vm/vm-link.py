#!/usr/bin/python3
"""Inside the VM: a CAN interface that goes down in the middle of an update. Two nodes on each of
vcan0 and vcan1 (real SocketCAN), the bus timing model on so that the transfer takes a while. Once
vcan1's nodes are programming, `ip link set vcan1 down`: canfleetd must report vcan1 down, hold its
sessions (no node fails, no byte counted while it is down) and finish vcan0's nodes meanwhile; after
`ip link set vcan1 up` every node must end on v2. State is observed through canfleetctl, never
guessed from the clock. Uses tests/integration/harness.py."""

import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vmfleet import harness, check, start_socketcan_sim, write_socketcan_config  # noqa: E402

BUSES = ["vcan0", "vcan1"]
NODES = 2
BITRATE = 125000


def ip_link(ifname, state):
    r = subprocess.run(["ip", "link", "set", ifname, state], capture_output=True, text=True)
    check(r.returncode == 0, f"ip link set {ifname} {state}: {r.stderr.strip()}")


def wait_for(what, cond, timeout=240, fleet=None):
    """Poll a canfleetctl-derived condition; the bound only catches a hang (TCG is slow)."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        check(time.monotonic() < deadline, f"timed out waiting for {what}")
        if fleet is not None:
            check(fleet.daemon.alive(), f"canfleetd died while waiting for {what}")
        time.sleep(0.2)


def job_nodes(fleet, job_id):
    return {n["node"]: n for n in fleet.job(job_id)["nodes"]}


def link_of(fleet, bus):
    r = fleet.ctl("status", "--json")
    check(r.rc == 0, f"status --json failed: {r}")
    return {b["name"]: b["link"] for b in r.json()["buses"]}[bus]


def test_vm_link(fleet):
    check(os.path.exists("/sys/class/net/vcan1"), "no vcan1: not inside the test VM?")
    fleet.start_bus()
    v1 = fleet.pack("1.0.0", release=1, size=4 * 1024, seed=1)
    v2 = fleet.pack("2.0.0", release=2, size=12 * 1024, seed=2)
    start_socketcan_sim(fleet, BUSES, NODES, v1, extra=["--bitrate", str(BITRATE), "--bus-timing"])
    write_socketcan_config(fleet, BUSES, NODES, bitrate=BITRATE)
    fleet.start_daemon(timeout=60)

    r = fleet.ctl("update", v2, "--all", "--no-wait", "--json")
    check(r.rc == 0, f"update --no-wait failed: {r}")
    job_id = r.json()["id"]
    down_nodes = [f"vcan1:{sa}" for sa in range(1, NODES + 1)]
    up_nodes = [f"vcan0:{sa}" for sa in range(1, NODES + 1)]

    wait_for("vcan1's nodes to be programming",
             lambda: all(job_nodes(fleet, job_id)[n]["bytes_done"] > 0 for n in down_nodes), fleet=fleet)
    ip_link("vcan1", "down")
    wait_for("canfleetd to see vcan1 down", lambda: link_of(fleet, "vcan1") == "down", fleet=fleet)
    held = {n: job_nodes(fleet, job_id)[n]["bytes_done"] for n in down_nodes}
    check(all(0 < b < job_nodes(fleet, job_id)[n]["bytes_total"] for n, b in held.items()),
          f"vcan1's nodes should be mid-transfer when the link goes: {held}")

    # vcan0 carries on to the end while vcan1 is down
    wait_for("vcan0's nodes to finish", lambda: all(job_nodes(fleet, job_id)[n]["step"] == "done" for n in up_nodes),
             fleet=fleet)
    now = job_nodes(fleet, job_id)
    for n in down_nodes:
        check(now[n]["step"] not in ("failed", "done"), f"{n} is {now[n]['step']} while its link is down: {now[n]}")
        check(now[n]["bytes_done"] == held[n], f"{n} counted bytes with its link down: {held[n]} -> {now[n]['bytes_done']}")
    check(link_of(fleet, "vcan1") == "down", "vcan1 came back by itself")

    ip_link("vcan1", "up")
    r = fleet.ctl("watch", str(job_id), timeout=240)
    check(r.rc == 0, f"watch {job_id} after the link came back: {r}")
    expect = {n: "2.0.0" for n in harness.all_nodes(BUSES, NODES)}
    harness.stop_sims(fleet)
    harness.assert_versions(fleet, expect)


if __name__ == "__main__":
    sys.exit(harness.main(test_vm_link))
