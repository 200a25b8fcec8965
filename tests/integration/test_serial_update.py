#!/usr/bin/python3
# Integration: serial nodes (docs/design.md §8) next to CAN nodes. A simulated LPC1768 (ISP) and ADuCM360
# (AN-1160) on ptys and two CAN nodes are updated by one `canfleetctl update CAN LPC ADI --all`, one bundle
# per kind of node; each chip's flash file then holds the raw image. A bundle for another part is refused
# before anything is erased: inside the job while the chip is not known yet (flash file byte for byte
# unchanged), by StartUpdate once it is. A scan of a serial bus reads the chip's identity and leaves its
# loader synchronised (isp_entry manual, no reset): the next job finds it in command mode and goes on. Prints the line's bytes and the time a 64 KB image takes at 115200
# baud (10 bits a byte) against the wall time on the pty.
import os
import re
import signal
import sys

import harness
import serial_fixture as sf
from harness import check
from test_ctl_json import Checker

CAN = ["bus0"]
SIZE = 64 * 1024


def serial_update(f):
    f.start_bus()
    img1 = f.pack("1.0.0", release=1)
    f.start_sim(CAN, 2, install=img1)
    # the chips reset into their loader when the gateway opens the line (DTR wired to reset), so that each
    # job meets them in their loader without anyone pressing a button
    sf.start_chip(f, "lpc0", "lpc-isp", ["--reset-on-open"])
    sf.start_chip(f, "adi0", "adi-uart", ["--reset-on-open"])
    # these two stay in their loader across the host's sessions: nothing resets them
    manual = [sf.start_chip(f, "lpc1", "lpc-isp"), sf.start_chip(f, "adi1", "adi-uart")]
    sf.write_config(f, CAN, 2, [sf.serial_bus(f, "lpc0", "lpc-isp", crystal_khz=12000),
                                sf.serial_bus(f, "adi0", "adi-uart"), sf.serial_bus(f, "lpc1", "lpc-isp"),
                                sf.serial_bus(f, "adi1", "adi-uart")])
    f.start_daemon()
    # the start-up probe meets the CAN nodes; a serial node whose loader is entered by hand (isp_entry
    # "manual") is left alone until its first job
    harness.wait_until("the start-up probe", lambda: all(n["state"] != "unknown" for k, n in f.nodes().items()
                                                         if k.startswith("bus0")), 30)
    nodes = f.nodes()
    check(nodes["lpc0:1"]["state"] == "unknown" and nodes["lpc0:1"]["identity"] in (None, ""),
          f"the LPC before any session: {nodes['lpc0:1']}")
    check(nodes["lpc0:1"]["protocol"] == "lpc-isp" and nodes["adi0:1"]["protocol"] == "adi-uart"
          and nodes["bus0:1"]["protocol"] == "ccp", f"protocols: {nodes}")

    # 1. a bundle for another LPC17xx while the chip is not known yet: the job fails it after J, nothing
    #    erased (the flash file is byte for byte what it was)
    before = sf.flash(f, "lpc0")
    wrong, _ = sf.serial_bundle(f, "lpc-isp", "0.9.0", 1, sf.lpc_app(SIZE, seed=9), part="LPC1769",
                                name="wrong-part")
    r = f.ctl("update", wrong, "--node", "lpc0:1")
    check(r.rc == 1, f"a bundle for an LPC1769 on an LPC1768: {r}")
    j = f.jobs()[-1]
    err = j["nodes"][0]["error"] or ""
    check("the bundle is for part 0x26113F37" in err and "nothing erased" in err and "LPC1768 0x26013F37" in err,
          f"the wrong part's error: {err!r}")
    check(sf.flash(f, "lpc0") == before, "the flash changed although the part id was refused")
    check(sf.chip_state(f, "lpc0")["flash_ops"] == 0, f"flash operations: {sf.chip_state(f, 'lpc0')}")
    ident = f.nodes()["lpc0:1"]["identity"]
    check(ident.startswith("LPC1768 0x26013F37, boot code ") and "serial" in ident, f"identity: {ident!r}")

    # 2. now it is known: StartUpdate itself refuses, naming the chip
    r = f.ctl("update", wrong, "--node", "lpc0:1")
    check(r.rc != 0 and "the bundle is for part 0x26113F37 (nothing erased)" in r.err, f"known part: {r}")
    # a serial bundle for a CAN node, a CAN bundle for a serial node
    r = f.ctl("update", wrong, "--node", "bus0:1")
    check(r.rc != 0 and "bus0:1 is a ccp node, the bundle is for lpc-isp" in r.err, f"serial bundle, CAN node: {r}")

    # 3. a scan identifies a serial node and leaves its loader synchronised; a job meets it there
    for bus, proto, want in (("lpc1", "lpc-isp", "LPC1768 0x26013F37"), ("adi1", "adi-uart", "ADuCM360")):
        r = f.ctl("scan", bus)
        check(r.rc == 0 and f"{bus}:1" in r.out, f"scan {bus}: {r}")
        r = f.ctl("node", f"{bus}:1")
        check(r.rc == 0 and f"protocol:     {proto} (serial node)" in r.out and f"identity:     {want}" in r.out,
              f"node {bus}:1: {r}")
    lpc_s, lpc_s_raw = sf.serial_bundle(f, "lpc-isp", "1.5.0", 2, sf.lpc_app(4096, seed=5), name="lpc-small")
    adi_s, adi_s_raw = sf.serial_bundle(f, "adi-uart", "1.5.0", 2, sf.adi_app(4096, seed=6), name="adi-small")
    for node, bundle, raw, bus in (("lpc1:1", lpc_s, lpc_s_raw, "lpc1"), ("adi1:1", adi_s, adi_s_raw, "adi1")):
        r = f.ctl("update", bundle, "--node", node)
        check(r.rc == 0, f"update {node} after a scan: {r}")
        check(sf.flash(f, bus)[:len(raw)] == raw, f"{bus}'s flash after the update")
        check(sf.chip_state(f, bus)["state"] == "running", f"{bus} does not run its application: {sf.chip_state(f, bus)}")
    # isp_entry manual: the operator resets them into their loader (the simulator's SIGUSR1)
    for p in manual:
        os.kill(p.pid, signal.SIGUSR1)
    for bus in ("lpc1", "adi1"):
        harness.wait_until(f"{bus} in its loader", lambda: sf.chip_state(f, bus)["state"] == "loader", 10)

    # 4. one update of all three kinds, one bundle each
    can2 = f.pack("2.0.0", release=2, seed=2)
    lpc, lpc_raw = sf.serial_bundle(f, "lpc-isp", "3.1.0", 4, sf.lpc_app(SIZE, seed=3))
    adi, adi_raw = sf.serial_bundle(f, "adi-uart", "2.0.0", 2, sf.adi_app(SIZE, seed=4))
    r = f.ctl("update", lpc, "--all", "--dry-run")
    check(r.rc == 0 and "is 3.1.0 for lpc-isp part 0x26013F37, release 4" in r.out
          and re.search(r"lpc0:1 .* update", r.out) and re.search(r"adi0:1 .* skip .*adi-uart node", r.out),
          f"update --dry-run of the LPC bundle: {r}")
    # the same as JSON: the raw image described from its manifest, against the committed schema
    doc = Checker().validate("dry_run", f.ctl("update", lpc, "--all", "--dry-run", "--json"))
    img = doc["image"]
    check(img["valid"] and img["version"] == "3.1.0" and img["release"] == 4 and "raw lpc-isp image" in img["status"],
          f"update --dry-run --json of the LPC bundle: {img}")
    r = f.ctl("update", can2, lpc, adi, "--all")
    check(r.rc == 0, f"update CAN LPC ADI --all: {r}")
    check("skipped lpc0:1 (lpc-isp node), adi0:1 (adi-uart node)" in r.out, f"CAN job's skips: {r.out}")
    check(sf.flash(f, "lpc1")[:len(lpc_raw)] == lpc_raw and sf.flash(f, "adi1")[:len(adi_raw)] == adi_raw,
          "lpc1 and adi1 are updated by --all too")
    check(sf.flash(f, "lpc0")[:len(lpc_raw)] == lpc_raw, "the LPC's flash is not the image")
    check(sf.flash(f, "adi0")[:len(adi_raw)] == adi_raw, "the ADuCM360's flash is not the image")
    rest = sf.flash(f, "lpc0")[len(lpc_raw):]
    check(rest == b"\xff" * len(rest), "the LPC's flash past the image is not erased")
    nodes = f.nodes()
    check(nodes["lpc0:1"]["version"] == "3.1.0" and nodes["adi0:1"]["version"] == "2.0.0",
          f"versions: {nodes['lpc0:1']} {nodes['adi0:1']}")
    check(nodes["adi0:1"]["identity"].startswith("ADuCM360"), f"ADI identity: {nodes['adi0:1']}")
    check(sf.chip_state(f, "lpc0")["app_valid"], f"the LPC boot ROM would not start it: {sf.chip_state(f, 'lpc0')}")
    jobs = f.jobs()
    targets = sorted(j["image"]["target"] for j in jobs[-3:])
    check(targets == ["adi-uart", "ccp", "lpc-isp"], f"job targets: {targets}")
    check(all(len(j["nodes"]) == 2 for j in jobs[-3:]),
          f"nodes per job: {[(j['image']['target'], len(j['nodes'])) for j in jobs[-3:]]}")

    # the figures: the daemon logs each serial node's line bytes and wall time
    log = f.daemon.output()
    for name, proto in (("lpc0:1", "lpc-isp"), ("adi0:1", "adi-uart")):
        m = re.findall(name + r": now holds \S+ \(release \d+\), (\d+) bytes verified; line: (\d+) bytes out, (\d+) in "
                       r"\(([\d.]+) s at 115200 baud\), ([\d.]+) s wall", log)
        check(m, f"no figures for {name} in the log")
        size, out, inn, line_s, wall = m[-1]
        print(f"{proto}: {size} bytes: {out} bytes out + {inn} in = {int(out) + int(inn)} on the line, "
              f"{line_s} s at 115200 baud (10 bits/byte; the raw image alone: {int(size) * 10 / 115200:.1f} s); "
              f"{wall} s wall on the pty")
    harness.assert_versions(f, {"bus0:1": "2.0.0", "bus0:2": "2.0.0"})


if __name__ == "__main__":
    sys.exit(harness.main(serial_update))
