#!/usr/bin/python3
"""Inside the VM: the kernel tier of the integration test. canfleet-nodesim runs 4 nodes on each of
vcan0 and vcan1 (real SocketCAN), canfleetd drives both buses through socketcan transports on a
private D-Bus system bus, and one `canfleetctl update --all` must leave every node running v2 —
as canfleetd reports it and as the nodes' flash files show. Uses tests/integration/harness.py."""

import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import harness  # noqa: E402
from harness import check  # noqa: E402

BUSES = ["vcan0", "vcan1"]
NODES = 4


def start_socketcan_sim(fleet, install):
    """harness.Fleet.start_sim speaks SLCAN ptys; here the simulator sits on the vcan interfaces."""
    argv = [harness.BINARIES["nodesim"]]
    for b in BUSES:
        argv += ["--bus", f"socketcan:{b}"]
    argv += ["--nodes", str(NODES), "--state", fleet.sim_state, "--fleet-key", fleet.key_path, "--install", install]
    rfd, wfd = os.pipe()
    try:
        p = harness.Proc(fleet, "nodesim", argv + ["--ready-fd", str(wfd)], pass_fds=(wfd,))
    finally:
        os.close(wfd)
    try:
        line = harness.read_line(rfd, 60, "nodesim ready", p)
    finally:
        os.close(rfd)
    check(line.strip() == "ready", f"nodesim said {line!r} instead of ready")
    fleet.sims.append(p)
    return p


def test_vm_update(fleet):
    check(os.path.exists("/sys/class/net/vcan0") and os.path.exists("/sys/class/net/vcan1"),
          "no vcan0/vcan1: not inside the test VM?")
    fleet.start_bus()
    v1 = fleet.pack("1.0.0", release=1, size=8 * 1024, seed=1)
    v2 = fleet.pack("2.0.0", release=2, size=8 * 1024, seed=2)
    start_socketcan_sim(fleet, v1)
    conf = {
        "fleet_key_file": fleet.key_path,
        "state_dir": fleet.state_dir,
        "cache_dir": fleet.cache_dir,
        "reply_timeout_ms": harness.Fleet.REPLY_TIMEOUT_MS,
        "buses": [{"name": b, "transport": f"socketcan:{b}", "bitrate": 500000,
                   "nodes": list(range(1, NODES + 1))} for b in BUSES],
    }
    with open(fleet.config_path, "w") as f:
        json.dump(conf, f, indent=2)
    fleet.start_daemon(timeout=60)
    r = fleet.ctl("update", v2, "--all", timeout=240)
    check(r.rc == 0, f"canfleetctl update --all failed: {r}")
    expect = {n: "2.0.0" for n in harness.all_nodes(BUSES, NODES)}
    nodes = fleet.nodes()
    check(len(nodes) == len(expect), f"canfleetd knows {sorted(nodes)}, expected {sorted(expect)}")
    harness.stop_sims(fleet)
    harness.assert_versions(fleet, expect)


if __name__ == "__main__":
    sys.exit(harness.main(test_vm_update))
