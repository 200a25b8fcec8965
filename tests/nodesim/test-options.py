#!/usr/bin/python3
"""Simulator options over python-can: several buses, ids, seed demo key, silent nodes, drop/corrupt, timing models."""
import os
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nodesim_harness import (AREA, CONNECT, GET_SEED, RES_PGM, UNLOCK, Ccp, Sim, check, main, open_bus, show)


def test_two_buses_custom_ids(fx):
    pty2 = os.path.join(fx.dir, "second@115200")  # the daemon's slcan:PATH@baud syntax is accepted
    fx.sim = sim = Sim(["--bus", "slcan:" + fx.pty, "--bus", "slcan:" + pty2, "--nodes", "3", "--state", fx.state,
                        "--fleet-key", fx.key_file, "--install", fx.v1_file, "--cro-base", "0x600",
                        "--dto-base", "0x640", "--hw-id", "0x0001"])
    pty2 = pty2.split("@")[0]
    buses = [open_bus(fx.pty), open_bus(pty2)]
    try:
        uids = set()
        for bus in buses:
            for sa in (1, 2, 3):
                n = Ccp(bus, sa, cro_base=0x600, dto_base=0x640)
                n.connect()
                uids.add(n.short_uid())
            check(Ccp(bus, 1).raw(CONNECT, struct.pack("<H", 1), timeout=0.2) is None,
                  "default ids must be unused with --cro-base 0x600")
        check(len(uids) == 6, "six distinct nodes")
    finally:
        for b in buses:
            b.shutdown()
    check(sim.stop() == 0, "exit status")
    check(sorted(show(fx.state)) == ["second-1", "second-2", "second-3", "ttyCF0-1", "ttyCF0-2", "ttyCF0-3"],
          "flash file names per bus")


def test_seedkey_echo_and_silent(fx):
    fx.sim = sim = Sim(["--bus", "slcan:" + fx.pty, "--nodes", "3", "--state", fx.state, "--seedkey", "echo",
                        "--silent", "2", "--log-frames"])
    bus = open_bus(fx.pty)
    try:
        n = Ccp(bus, 1)
        n.connect()
        d = n.cmd(GET_SEED, bytes([RES_PGM]))
        d = n.cmd(UNLOCK, bytes([0, 0]) + bytes(d[1:5]))  # the seed demo's key
        check(d[0] & RES_PGM, "echo key not accepted")
        check(Ccp(bus, 2).raw(CONNECT, struct.pack("<H", 2), timeout=0.3) is None, "silent node answered")
        Ccp(bus, 3).connect()
        check(Ccp(bus, 3).status()[64] == 2, "without an application the node is in the bootloader")
    finally:
        bus.shutdown()
    check(sim.stop() == 0, "exit status")
    check(sim.log_has(r"ttyCF0: host +-> 681 \[8\] 01 01 01 00"), "--log-frames shows the host's CONNECT")
    check(sim.log_has(r"ttyCF0: node 1 +-> 6C1 \[8\] FF 00 01"), "--log-frames shows node 1's reply")
    check(not sim.log_has(r"node 2 +->"), "the silent node sent something")


def connect_stats(bus, sa, tries):
    n = Ccp(bus, sa)
    good = bad = lost = 0
    for _ in range(tries):
        r = n.raw(CONNECT, struct.pack("<H", sa), timeout=0.15)
        if r is None:
            lost += 1
        elif r[0] == 0 and r[2] == bytes(5):
            good += 1
        else:
            bad += 1
    return good, bad, lost


class LooseCcp(Ccp):
    """For corrupted traffic: a wrong counter is data, not a test failure."""

    def raw(self, cmd, params=b"", timeout=1.0, ctr=None):
        self.ctr = (self.ctr + 1) & 0xFF
        self.send((bytes([cmd, self.ctr]) + bytes(params) + bytes(6))[:8])
        dto = self.recv(timeout)
        return None if dto is None else (dto[1], dto[2], dto[3:])


def test_drop_and_corrupt(fx):
    base = ["--bus", "slcan:" + fx.pty, "--nodes", "1", "--state", fx.state, "--seedkey", "echo", "--seed", "7"]
    fx.sim = sim = Sim(base + ["--drop", "1"])
    bus = open_bus(fx.pty)
    try:
        check(connect_stats(bus, 1, 5) == (0, 0, 5), "--drop 1 lets frames through")
    finally:
        bus.shutdown()
    sim.stop()

    fx.sim = sim = Sim(base + ["--drop", "0.5"])
    bus = open_bus(fx.pty)
    try:
        good, bad, lost = connect_stats(bus, 1, 40)
        check(good > 0 and lost > 0 and bad == 0, "--drop 0.5: %d answered, %d lost, %d bad" % (good, lost, bad))
    finally:
        bus.shutdown()
    sim.stop()

    fx.sim = sim = Sim(base + ["--corrupt", "1", "--log-frames"])
    bus = open_bus(fx.pty)
    try:
        n = LooseCcp(bus, 1)
        clean = 0
        for _ in range(20):
            r = n.raw(CONNECT, struct.pack("<H", 1), timeout=0.15)
            if r is not None and r[0] == 0 and r[1] == n.ctr and r[2] == bytes(5):
                clean += 1
        check(clean == 0, "--corrupt 1: %d replies arrived intact" % clean)
    finally:
        bus.shutdown()
    sim.stop()
    check(sim.log_has(r"ttyCF0: host +corrupt 681"), "corruption logged")


def test_bus_timing(fx):
    """At 10 kbit/s a CONNECT and its reply take >= 2 x 47+64 bits = 22.2 ms on the bus: a lower bound the
    model guarantees however fast the machine is (the timing model never delivers early)."""
    fx.sim = sim = Sim(["--bus", "slcan:" + fx.pty, "--nodes", "1", "--state", fx.state, "--seedkey", "echo",
                        "--bus-timing"])
    bus = open_bus(fx.pty, bitrate=10000)  # SLCAN "S0"
    try:
        n = Ccp(bus, 1)
        t0 = time.monotonic()
        for _ in range(10):
            n.connect(timeout=2.0)
        dt = time.monotonic() - t0
        check(dt >= 10 * 2 * 111 / 10000, "10 round trips at 10 kbit/s in %.3f s" % dt)
    finally:
        bus.shutdown()
    sim.stop()


def test_flash_timing(fx):
    """Erasing C's two 128 KB sectors takes 2 x 128 x 8 ms = 2.048 s with --flash-timing (a lower bound);
    meanwhile the node answers BUSY to other commands."""
    fx.sim = sim = Sim(fx.sim_args(nodes=1, extra=["--flash-timing"]))
    bus = open_bus(fx.pty)
    try:
        n = Ccp(bus, 1)
        n.connect()
        n.unlock(fleet_key=fx.fleet_key)
        n.set_mta(3, 0)
        t0 = time.monotonic()
        n.send(bytes([0x10, 0x77]) + struct.pack(">I", AREA) + bytes(2))
        r = n.raw(0x1B, bytes([2, 1]))  # GET_CCP_VERSION while erasing
        check(r is not None and r[0] == 0x10, "a command during the erase: %r" % (r,))
        dto = None
        while dto is None or dto[2] != 0x77:
            dto = n.recv(30)
            check(dto is not None, "no CLEAR_MEMORY reply")
        dt = time.monotonic() - t0
        check(dto[1] == 0, "CLEAR_MEMORY failed 0x%02X" % dto[1])
        check(dt >= 2.048, "256 KB erased in %.3f s" % dt)
        n.program_image(fx.v2)
        r = n.disconnect(end=True)
        check(r is not None and r[0] == 0, "DISCONNECT %r" % (r,))
        n.connect_retry(tries=200)
        check(n.version() == (2, 0, 0), "installed with flash timing")
    finally:
        bus.shutdown()
    check(sim.stop() == 0, "exit status")


if __name__ == "__main__":
    main([test_two_buses_custom_ids, test_seedkey_echo_and_silent, test_drop_and_corrupt, test_bus_timing,
          test_flash_timing])
