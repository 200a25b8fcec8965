#!/usr/bin/python3
"""canfleet-nodesim's command line: usage errors exit 2 naming the option, --help, --version, --show."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nodesim_harness import Ccp, Sim, check, main, open_bus, pack_image, run_nodesim, show


def test_usage_errors(fx):
    good = ["--bus", "slcan:" + fx.pty, "--nodes", "2", "--state", fx.state, "--fleet-key", fx.key_file]
    bad_key = os.path.join(fx.dir, "bad.key")
    with open(bad_key, "w") as f:
        f.write("00" * 31 + "\n")
    short_img = os.path.join(fx.dir, "short.img")
    with open(short_img, "wb") as f:
        f.write(fx.v1[:1000])
    other_hw = os.path.join(fx.dir, "hw2.img")
    with open(other_hw, "wb") as f:
        f.write(pack_image(hw_id=2))
    torn = os.path.join(fx.dir, "torn.img")
    with open(torn, "wb") as f:
        f.write(fx.v1[:-1] + b"\x00")
    cases = [
        ([], "--state"),
        (["--state", fx.state], "--bus"),
        (["--bus", "slcan:" + fx.pty, "--state", fx.state, "--seedkey", "echo"], "--nodes"),
        (["--bus", "slcan:" + fx.pty, "--nodes", "1", "--state", fx.state], "--fleet-key"),
        (good + ["--frobnicate"], "--frobnicate"),
        (good + ["extra"], "extra"),
        (["--bus", "can0"] + good[2:], "--bus"),
        (["--bus", "slcan:"] + good[2:], "--bus"),
        (good + ["--bus", "slcan:" + fx.dir + "/x/ttyCF0"], "--bus"),  # same bus name twice
        (good + ["--nodes", "0"], "--nodes"),
        (good + ["--nodes", "x"], "--nodes"),
        (good + ["--nodes", "100"], "--nodes"),  # 0x680+100 runs into the DTO ids
        (good + ["--hw-id", "0x10000"], "--hw-id"),
        (good + ["--cro-base", "0x800"], "--cro-base"),
        (good + ["--dto-base", "0x681"], "--cro-base"),
        (good + ["--bitrate", "0"], "--bitrate"),
        (good + ["--drop", "1.5"], "--drop"),
        (good + ["--corrupt", "-0.1"], "--corrupt"),
        (good + ["--seed", "abc"], "--seed"),
        (good + ["--silent", "3"], "--silent"),
        (good + ["--power-cut", "0"], "--power-cut"),
        (good + ["--power-cut", "3:1,sideways"], "--power-cut"),
        (good + ["--power-cut", "3:9"], "--power-cut"),
        (good + ["--stall", "5"], "--stall"),
        (good + ["--stall", "0:100"], "--stall"),
        (good + ["--stall", "5:0"], "--stall"),
        (good + ["--stall", "5:100:nosuchbus"], "--stall"),
        (good + ["--stall", "5:100:"], "--stall"),
        (good + ["--flash-fault", "erase"], "--flash-fault"),
        (good + ["--flash-fault", "install:0"], "--flash-fault"),
        (good + ["--flash-fault", "install:9"], "--flash-fault"),
        (good + ["--flash-fault", "installx"], "--flash-fault"),
        (good + ["--seedkey", "rot13"], "--seedkey"),
        (good + ["--seedkey", "echo:9"], "--seedkey"),  # no such station (--nodes 2)
        (good + ["--seedkey", "echo:0"], "--seedkey"),
        (good + ["--seedkey", "echo:"], "--seedkey"),
        (good + ["--ready-fd", "1"], "--ready-fd"),
        (good + ["--json"], "--json"),
        (good + ["--show"], "--show"),
        (good + ["--nodes"], "--nodes"),
        (good[:-2] + ["--fleet-key", bad_key], "--fleet-key"),
        (good[:-2] + ["--fleet-key", fx.dir + "/missing.key"], "--fleet-key"),
        (good + ["--install", short_img], "--install"),
        (good + ["--install", other_hw], "--install"),
        (good + ["--install", torn], "--install"),
    ]
    for args, opt in cases:
        r = run_nodesim(args)
        lines = r.stderr.strip().splitlines()
        check(r.returncode == 2, "%s: exit %d, expected 2 (%s)" % (args, r.returncode, r.stderr.strip()))
        check(len(lines) == 1 and opt in lines[0], "%s: message %r should name %s" % (args, r.stderr, opt))
        check(not os.path.lexists(fx.pty), "%s: left a pty link" % args)


def test_help_and_version(fx):
    r = run_nodesim(["--help"])
    check(r.returncode == 0 and "--bus slcan:PATH" in r.stdout and "--power-cut" in r.stdout and
          "--stall N:MS[:BUS]" in r.stdout and "--flash-fault install[:SA]" in r.stdout, "--help: %r" % (r,))
    r = run_nodesim(["--version"])
    check(r.returncode == 0 and r.stdout.startswith("canfleet-nodesim "), "--version: %r" % (r,))


def test_show(fx):
    sim = fx.start(nodes=3)
    bus = open_bus(fx.pty)
    try:
        n = Ccp(bus, 3)
        n.connect()
        n.unlock(fleet_key=fx.fleet_key)
        n.clear_c()
        n.program_image(fx.v2)  # staged, not installed
        n2 = Ccp(bus, 2)
        n2.connect()
        n2.unlock(fleet_key=fx.fleet_key)
        n2.clear_c()
        n2.program_image(fx.v2, parts=("payload",))
    finally:
        bus.shutdown()
    check(sim.stop() == 0, "exit status")

    r = run_nodesim(["--state", fx.state, "--show"])
    check(r.returncode == 0, "--show: %r" % (r,))
    lines = r.stdout.splitlines()
    # First the RAM each node spends on the group transfer's slot record: 43,691 bits.
    check(len(lines) == 4 and lines[0].startswith("node RAM: group slot record 5464 bytes (43691 slots)"),
          "--show RAM line: %r" % r.stdout)
    lines = lines[1:]
    check(len(lines) == 3 and lines[0].startswith("ttyCF0-1: uid "), "--show text: %r" % r.stdout)
    check("B valid 1.0.0 release 1 hw 0x0001" in lines[0] and "C erased" in lines[0], "node 1: %r" % lines[0])
    check("C invalid" in lines[1], "node 2: %r" % lines[1])
    check("C valid 2.0.0 release 2" in lines[2], "node 3: %r" % lines[2])

    nodes = show(fx.state)
    check(sorted(nodes) == ["ttyCF0-1", "ttyCF0-2", "ttyCF0-3"], "--show --json names %s" % sorted(nodes))
    ram = json.loads(run_nodesim(["--state", fx.state, "--show", "--json"]).stdout)["node_ram"]
    check(ram["group_slots"] == 43691 and ram["slot_record_bytes"] == 5464 and
          ram["slot_record_bytes"] < ram["group_state_bytes"] <= ram["ccp_slave_bytes"], "--show --json node_ram: %s" % ram)
    n3 = nodes["ttyCF0-3"]
    check(n3["bus"] == "ttyCF0" and n3["station"] == 3, "bus/station: %s" % n3)
    check(n3["boot_count"] == 1, "boot count %s" % n3["boot_count"])
    check(n3["B"] == {"state": "valid", "version": "1.0.0", "release": 1, "hw_id": 1}, "B: %s" % n3["B"])
    check(n3["C"]["state"] == "valid" and n3["C"]["version"] == "2.0.0", "C: %s" % n3["C"])
    check(nodes["ttyCF0-2"]["C"]["state"] == "invalid" and "reason" in nodes["ttyCF0-2"]["C"], "node 2 C")
    check(len(set(n["uid"] for n in nodes.values())) == 3, "uids must differ")

    # restart: uids and boot counts persist; --install leaves valid applications alone
    fx.sim = sim = Sim(fx.sim_args(nodes=3))
    check(sim.stop() == 0, "exit status")
    again = show(fx.state)
    for name in nodes:
        check(again[name]["uid"] == nodes[name]["uid"], "%s: uid changed across restarts" % name)
    check(again["ttyCF0-1"]["boot_count"] == 2, "boot count after restart: %s" % again["ttyCF0-1"])
    check(again["ttyCF0-3"]["B"]["version"] == "2.0.0", "node 3 installed its staged image at power-on")

    r = run_nodesim(["--state", fx.dir + "/nonexistent", "--show"])
    check(r.returncode == 1 and "nonexistent" in r.stderr, "--show of a missing dir: %r" % (r,))
    r = run_nodesim(["--state", fx.state, "--show", "--json"])
    json.loads(r.stdout)


if __name__ == "__main__":
    main([test_usage_errors, test_help_and_version, test_show])
