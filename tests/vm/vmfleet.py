"""Shared by the tests that run inside the VM: canfleet-nodesim and canfleetd on vcan interfaces
through their SocketCAN transports (harness.Fleet's own helpers speak SLCAN ptys)."""

import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import harness  # noqa: E402
from harness import check  # noqa: E402


def start_socketcan_sim(fleet, buses, nodes, install, extra=()):
    argv = [harness.BINARIES["nodesim"]]
    for b in buses:
        argv += ["--bus", f"socketcan:{b}"]
    argv += ["--nodes", str(nodes), "--state", fleet.sim_state, "--fleet-key", fleet.key_path,
             "--install", fleet.image(install)] + list(extra)
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


def write_socketcan_config(fleet, buses, nodes, bitrate=500000):
    conf = {
        "fleet_key_file": fleet.key_path, "state_dir": fleet.state_dir, "cache_dir": fleet.cache_dir,
        "reply_timeout_ms": harness.Fleet.REPLY_TIMEOUT_MS,
        "buses": [{"name": b, "transport": f"socketcan:{b}", "bitrate": bitrate,
                   "nodes": list(range(1, nodes + 1))} for b in buses],
    }
    # as Fleet.write_config: signed bundles against the fleet's test CA, or plain images
    if fleet.signed:
        conf["keyring"] = fleet.trust()["keyring"]
    else:
        conf["allow_unsigned"] = True
    with open(fleet.config_path, "w") as f:
        json.dump(conf, f, indent=2)
    return conf
