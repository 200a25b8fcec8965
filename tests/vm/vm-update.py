#!/usr/bin/python3
"""Inside the VM: the kernel tier of the integration test. canfleet-nodesim runs 4 nodes on each of
vcan0 and vcan1 (real SocketCAN), canfleetd drives both buses through socketcan transports on a
private D-Bus system bus, and one `canfleetctl update --all` must leave every node running v2 —
as canfleetd reports it and as the nodes' flash files show; libsocketcan's own complaints reach
canfleetd's log, never its stderr raw. Uses tests/integration/harness.py."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vmfleet import harness, check, start_socketcan_sim, write_socketcan_config  # noqa: E402

BUSES = ["vcan0", "vcan1"]
NODES = 4


def test_vm_update(fleet):
    check(os.path.exists("/sys/class/net/vcan0") and os.path.exists("/sys/class/net/vcan1"),
          "no vcan0/vcan1: not inside the test VM?")
    fleet.start_bus()
    v1 = fleet.pack("1.0.0", release=1, size=8 * 1024, seed=1)
    v2 = fleet.pack("2.0.0", release=2, size=8 * 1024, seed=2)
    start_socketcan_sim(fleet, BUSES, NODES, v1)
    write_socketcan_config(fleet, BUSES, NODES)
    fleet.start_daemon(timeout=60)
    r = fleet.ctl("update", v2, "--all", timeout=240)
    check(r.rc == 0, f"canfleetctl update --all failed: {r}")
    expect = {n: "2.0.0" for n in harness.all_nodes(BUSES, NODES)}
    nodes = fleet.nodes()
    check(len(nodes) == len(expect), f"canfleetd knows {sorted(nodes)}, expected {sorted(expect)}")
    check(fleet.ctl("status").rc == 0, "status")  # asks libsocketcan each bus's bitrate
    # libsocketcan's own stderr ("no link data found" for a vcan's state) is caught and logged by
    # canfleetd as the bus's: every line of its stderr says its level, and that one is among them
    lines = fleet.daemon.output().split("\n", 1)[1].splitlines()
    check("canfleetd: info: socketcan:vcan0: libsocketcan can_get_state: no link data found" in lines,
          f"libsocketcan's complaint about vcan0 is not in canfleetd's log: {lines}")
    check(all(l.startswith("canfleetd: ") for l in lines),
          f"canfleetd's stderr has lines without a level: {[l for l in lines if not l.startswith('canfleetd: ')]}")
    harness.stop_sims(fleet)
    harness.assert_versions(fleet, expect)


if __name__ == "__main__":
    sys.exit(harness.main(test_vm_update))
