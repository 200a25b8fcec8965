#!/usr/bin/python3
"""canfleet-nodesim --layout f7-dual-bank (docs/design.md §9): revert of an application that never confirms,
confirm over CCP, an application that leaves the confirmation to the gateway (--app-no-confirm), a stale
"reverted" forgotten once a new image arrives, a power cut at the option-byte write, layouts that do not
mix, --show."""
import os
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nodesim_harness import (CRC_OFF, Ccp, Sim, check, crc32_stm32, main, open_bus, pack_image, run_nodesim,
                             show)

DUAL = ["--layout", "f7-dual-bank"]
BANK, TRIAL, LAST_UPDATE = 77, 78, 65
TRIAL_NONE, TRIAL_PENDING, TRIAL_CONFIRMED, TRIAL_REVERTED = 0, 1, 2, 3


def stage(fx, node, image):
    node.unlock(fleet_key=fx.fleet_key)
    node.clear_c()
    node.program_image(image)
    check(node.checksum(0, CRC_OFF) == crc32_stm32(image[:CRC_OFF]), "BUILD_CHKSUM of the staged image")
    r = node.disconnect(end=True)
    check(r is not None and r[0] == 0, "DISCONNECT(end): %r" % (r,))


def poll_status(node, pred, timeout=10.0):
    end = time.monotonic() + timeout
    while True:
        st = node.status()
        if pred(st) or time.monotonic() > end:
            return st
        time.sleep(0.05)


def test_app_fails_reverts(fx):
    """The new application crashes before it confirms: the node goes back to v1 and says reverted."""
    v2 = pack_image((2, 0, 0), 2, seed=2, bank=2)
    sim = fx.start(nodes=2, extra=DUAL + ["--app-fails-after-update=1"])
    bus = open_bus(fx.pty)
    try:
        n1 = Ccp(bus, 1)
        n1.connect()
        stage(fx, n1, v2)
        sim.wait_log(r"ttyCF0-1: the new application crashed before confirming")
        sim.wait_log(r"ttyCF0-1: boot: the trial was not confirmed before a reset: reverting")
        n1.connect_retry()
        st = poll_status(n1, lambda s: s[TRIAL] == TRIAL_REVERTED and s[BANK] == 1)
        check(st[BANK] == 1 and st[TRIAL] == TRIAL_REVERTED, "bank %d trial %d" % (st[BANK], st[TRIAL]))
        check(n1.version() == (1, 0, 0), "after the revert running %s" % (n1.version(),))
        time.sleep(0.6)  # v1 is not on trial: it neither crashes nor writes anything
        check(n1.status()[BANK] == 1, "v1 keeps running")

        # node 2 has a healthy application: the same update ends confirmed by the application
        n2 = Ccp(bus, 2)
        n2.connect()
        stage(fx, n2, v2)
        n2.connect_retry()
        st = poll_status(n2, lambda s: s[TRIAL] == TRIAL_CONFIRMED)
        check(st[BANK] == 2 and st[TRIAL] == TRIAL_CONFIRMED and st[LAST_UPDATE] == 5,
              "node 2: bank %d trial %d last_update %d" % (st[BANK], st[TRIAL], st[LAST_UPDATE]))
    finally:
        bus.shutdown()
    check(sim.stop() == 0, "exit status")
    nodes = show(fx.state)
    check(nodes["ttyCF0-1"]["boot_bank"] == 1 and nodes["ttyCF0-1"]["trial"] == "reverted", "--show node 1: %s"
          % nodes["ttyCF0-1"])
    check(nodes["ttyCF0-2"]["boot_bank"] == 2 and nodes["ttyCF0-2"]["trial"] == "confirmed", "--show node 2: %s"
          % nodes["ttyCF0-2"])


def test_confirm_over_ccp(fx):
    """A gateway confirms with ACTION_SERVICE 0xCF10 before the failing application would crash."""
    v2 = pack_image((2, 0, 0), 2, seed=2, bank=2)
    sim = fx.start(nodes=1, extra=DUAL + ["--app-fails-after-update"])
    bus = open_bus(fx.pty)
    try:
        n1 = Ccp(bus, 1)
        n1.connect()
        n1.unlock(fleet_key=fx.fleet_key)
        n1.confirm()  # nothing to confirm: OK
        n1.connect()
        stage(fx, n1, v2)
        # straight after the swap: the application has not crashed yet (250 ms)
        n1.connect_retry(tries=200, timeout=0.01)
        st = n1.status()
        check(st[BANK] == 2 and st[TRIAL] == TRIAL_PENDING, "on trial: bank %d trial %d" % (st[BANK], st[TRIAL]))
        n1.unlock(fleet_key=fx.fleet_key)
        n1.confirm()
        check(n1.status()[TRIAL] == TRIAL_CONFIRMED, "confirmed over CCP")
        time.sleep(0.4)
        st = n1.status()
        check(st[BANK] == 2 and st[TRIAL] == TRIAL_CONFIRMED, "still on bank 2: %d trial %d" % (st[BANK], st[TRIAL]))
    finally:
        bus.shutdown()
    check(not sim.log_has(r"crashed"), "a confirmed application does not crash")
    check(sim.stop() == 0, "exit status")


def test_app_no_confirm(fx):
    """--app-no-confirm: the new application runs but never confirms itself. It stays on trial (past the
    500 ms after which a normal one confirms); a power cut then reverts it. Staged again, a CCP CONFIRM
    confirms it, the log says the master did, and a power cut afterwards keeps the new bank."""
    v2 = pack_image((2, 0, 0), 2, seed=2, bank=2)
    extra = DUAL + ["--app-no-confirm=1"]
    sim = fx.start(nodes=1, extra=extra)
    bus = open_bus(fx.pty)
    try:
        n1 = Ccp(bus, 1)
        n1.connect()
        stage(fx, n1, v2)
        sim.wait_log(r"ttyCF0-1: the new application runs and does not confirm itself \(--app-no-confirm\)")
        time.sleep(0.7)  # a self-confirming application has confirmed by now
        n1.connect_retry()
        st = n1.status()
        check(st[BANK] == 2 and st[TRIAL] == TRIAL_PENDING, "still on trial: bank %d trial %d" % (st[BANK], st[TRIAL]))
    finally:
        bus.shutdown()
    check(not sim.log_has(r"confirmed"), "nobody confirmed: %s" % sim.log_has(r"confirmed"))
    sim.stop()  # a power cut while on trial
    sim = fx.start(nodes=1, extra=extra)
    bus = open_bus(fx.pty)
    try:
        n1 = Ccp(bus, 1)
        n1.connect_retry()
        st = poll_status(n1, lambda s: s[TRIAL] == TRIAL_REVERTED and s[BANK] == 1)
        check(st[BANK] == 1 and st[TRIAL] == TRIAL_REVERTED, "after the power cut: bank %d trial %d"
              % (st[BANK], st[TRIAL]))
        check(n1.version() == (1, 0, 0), "after the revert running %s" % (n1.version(),))

        # the revert is the story of the image in bank 2: a new image arriving there ends it, so that
        # a later update's "reverted" can only be its own (daemon/dual-bank.c relies on it)
        n1.unlock(fleet_key=fx.fleet_key)
        n1.clear_c()
        st = n1.status()
        check(st[BANK] == 1 and st[TRIAL] == TRIAL_NONE, "after CLEAR_MEMORY: bank %d trial %d" % (st[BANK], st[TRIAL]))
        n1.program_image(v2)
        r = n1.disconnect(end=True)
        check(r is not None and r[0] == 0, "DISCONNECT(end): %r" % (r,))
        n1.connect_retry()
        st = poll_status(n1, lambda s: s[BANK] == 2)
        check(st[BANK] == 2 and st[TRIAL] == TRIAL_PENDING, "on trial again: bank %d trial %d" % (st[BANK], st[TRIAL]))
        n1.unlock(fleet_key=fx.fleet_key)
        n1.confirm()
        check(n1.status()[TRIAL] == TRIAL_CONFIRMED, "confirmed over CCP")
        sim.wait_log(r"ttyCF0-1: the trial was confirmed by the master's CCP CONFIRM")
    finally:
        bus.shutdown()
    check(not sim.log_has(r"the application confirmed"), "the application confirmed by itself")
    sim.stop()  # a power cut after the confirmation: the new bank stays
    nodes = show(fx.state)
    check(nodes["ttyCF0-1"]["boot_bank"] == 2 and nodes["ttyCF0-1"]["trial"] == "confirmed",
          "--show after the confirmation: %s" % nodes["ttyCF0-1"])
    sim = fx.start(nodes=1, extra=extra)
    bus = open_bus(fx.pty)
    try:
        n1 = Ccp(bus, 1)
        n1.connect_retry()
        st = n1.status()
        check(st[BANK] == 2 and st[TRIAL] == TRIAL_CONFIRMED and n1.version() == (2, 0, 0),
              "after a power cut: bank %d trial %d %s" % (st[BANK], st[TRIAL], n1.version()))
    finally:
        bus.shutdown()
    check(sim.stop() == 0, "exit status")


def test_power_cut_at_the_flip(fx):
    """--power-cut at the option-byte write, torn: the node comes back on a valid image and finishes the swap."""
    v2 = pack_image((2, 0, 0), 2, seed=2, bank=2)
    # after the DISCONNECT's reset: 1 TRIAL record, 2 BOOT_ADD0 (torn: naming no bank)
    sim = fx.start(nodes=1, extra=DUAL + ["--power-cut", "2:1,torn,after-reset"])
    bus = open_bus(fx.pty)
    try:
        n1 = Ccp(bus, 1)
        n1.connect()
        stage(fx, n1, v2)
        sim.wait_log(r"ttyCF0-1: power cut at flash operation 2, torn")
        sim.wait_log(r"ttyCF0-1: power restored")
        n1.connect_retry()
        st = poll_status(n1, lambda s: s[TRIAL] == TRIAL_CONFIRMED)
        check(st[BANK] == 2 and st[TRIAL] == TRIAL_CONFIRMED, "after the torn flip: bank %d trial %d"
              % (st[BANK], st[TRIAL]))
        check(n1.version() == (2, 0, 0), "running %s" % (n1.version(),))
    finally:
        bus.shutdown()
    check(sim.stop() == 0, "exit status")


def test_install_into_bank2(fx):
    """--install takes an image into the bank it is linked for, which then boots (factory programming)."""
    img = os.path.join(fx.dir, "v1-bank2.img")
    with open(img, "wb") as f:
        f.write(pack_image((1, 0, 0), 1, seed=1, bank=2))
    sim = Sim(["--bus", "slcan:" + fx.pty, "--nodes", "1", "--state", fx.state, "--fleet-key", fx.key_file,
               "--install", img] + DUAL)
    fx.sim = sim
    bus = open_bus(fx.pty)
    try:
        n1 = Ccp(bus, 1)
        n1.connect()
        st = n1.status()
        check(st[BANK] == 2 and st[TRIAL] == TRIAL_NONE, "bank %d trial %d" % (st[BANK], st[TRIAL]))
        check(n1.version() == (1, 0, 0), "running %s" % (n1.version(),))
        # the next update goes to bank 1
        stage(fx, n1, pack_image((2, 0, 0), 2, seed=2, bank=1))
        n1.connect_retry()
        st = poll_status(n1, lambda s: s[TRIAL] == TRIAL_CONFIRMED)
        check(st[BANK] == 1 and n1.version() == (2, 0, 0), "after the update: bank %d %s" % (st[BANK], n1.version()))
    finally:
        bus.shutdown()
    check(sim.stop() == 0, "exit status")
    # an image linked for neither bank is refused before anything starts
    bad = bytearray(pack_image((1, 0, 0), 1, seed=1))
    bad[4:8] = struct.pack("<I", 0x08240199)
    with open(img, "wb") as f:
        f.write(bytes(bad))
    r = run_nodesim(["--bus", "slcan:" + fx.pty + "x", "--nodes", "1", "--state", fx.state + "x", "--fleet-key",
                     fx.key_file, "--install", img] + DUAL)
    check(r.returncode != 0 and "--install" in r.stderr, "an image for no bank: %d %s" % (r.returncode, r.stderr))


def test_layouts_do_not_mix(fx):
    sim = fx.start(nodes=1)
    check(sim.stop() == 0, "exit status")
    r = run_nodesim(fx.sim_args(nodes=1, extra=DUAL))
    check(r.returncode != 0 and "a node of the f4-copy layout, not f7-dual-bank" in r.stderr,
          "an F4 flash file as a dual-bank node: %d %s" % (r.returncode, r.stderr))
    r = run_nodesim(fx.sim_args(nodes=1, extra=["--layout", "f5"]))
    check(r.returncode == 2 and "--layout: 'f5': expected f4-copy or f7-dual-bank" in r.stderr, r.stderr)
    r = run_nodesim(fx.sim_args(nodes=1, extra=["--app-fails-after-update"]))
    check(r.returncode == 2 and "--layout f7-dual-bank" in r.stderr, r.stderr)
    r = run_nodesim(fx.sim_args(nodes=1, extra=DUAL + ["--app-fails-after-update=7"]))
    check(r.returncode == 2 and "station 7 does not exist" in r.stderr, r.stderr)
    r = run_nodesim(fx.sim_args(nodes=1, extra=["--app-no-confirm"]))
    check(r.returncode == 2 and "--app-no-confirm: only a dual-bank node" in r.stderr, r.stderr)
    r = run_nodesim(fx.sim_args(nodes=1, extra=DUAL + ["--app-no-confirm=7"]))
    check(r.returncode == 2 and "--app-no-confirm: station 7 does not exist" in r.stderr, r.stderr)
    r = run_nodesim(fx.sim_args(nodes=1, extra=DUAL + ["--app-no-confirm=x"]))
    check(r.returncode == 2 and "--app-no-confirm: 'x' is not a station address" in r.stderr, r.stderr)


if __name__ == "__main__":
    main([test_app_fails_reverts, test_confirm_over_ccp, test_app_no_confirm, test_power_cut_at_the_flip, test_install_into_bank2,
          test_layouts_do_not_mix])
