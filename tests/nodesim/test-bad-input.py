#!/usr/bin/python3
"""Bad input over python-can: counters, unknown commands, out-of-range MTAs, programming out of order, a torn image."""
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nodesim_harness import (AREA, CLEAR_MEMORY, CONNECT, ERR_ACCESS_DENIED, ERR_ACCESS_LOCKED, ERR_OUT_OF_RANGE,
                             ERR_UNKNOWN_CMD, GET_SEED, MOVE, PROGRAM, PROGRAM_6, RES_PGM, SET_MTA, UNLOCK,
                             Ccp, Sim, check, main, open_bus, show)


def test_counters_echoed(fx):
    fx.start(nodes=1)
    bus = open_bus(fx.pty)
    try:
        n = Ccp(bus, 1)
        for ctr in (0x00, 0x7F, 0xFF, 0x42, 0x42):
            r = n.raw(CONNECT, struct.pack("<H", 1), ctr=ctr)  # raw() fails unless ctr comes back
            check(r is not None and r[0] == 0 and r[1] == ctr, "CONNECT ctr 0x%02X: %r" % (ctr, r))
        # a master that expected another counter must notice: the slave echoes, never "fixes"
        n.send(bytes([0x1B, 0x99, 2, 1, 0, 0, 0, 0]))
        dto = n.recv(1.0)
        check(dto is not None and dto[2] == 0x99, "GET_CCP_VERSION reply counter: %r" % (dto,))
    finally:
        bus.shutdown()


def test_unknown_and_out_of_range(fx):
    fx.start(nodes=1)
    bus = open_bus(fx.pty)
    try:
        n = Ccp(bus, 1)
        n.connect()
        for cmd in (0x55, 0x00, 0xFE, MOVE):
            n.expect_err(ERR_UNKNOWN_CMD, cmd)
        n.expect_err(ERR_OUT_OF_RANGE, SET_MTA, bytes([0, 4]) + struct.pack(">I", 0))      # no extension 4
        n.expect_err(ERR_OUT_OF_RANGE, SET_MTA, bytes([0, 3]) + struct.pack(">I", AREA + 1))  # past C's end
        n.expect_err(ERR_OUT_OF_RANGE, SET_MTA, bytes([0, 3]) + struct.pack(">I", 0xFFFFFFFF))
        n.expect_err(ERR_OUT_OF_RANGE, SET_MTA, bytes([2, 3]) + struct.pack(">I", 0))      # no MTA2
        # locked: nothing that writes C
        n.set_mta(3, 0)
        n.expect_err(ERR_ACCESS_LOCKED, CLEAR_MEMORY, struct.pack(">I", AREA))
        n.expect_err(ERR_ACCESS_LOCKED, PROGRAM_6, bytes(6))
        # a wrong key
        d = n.cmd(GET_SEED, bytes([RES_PGM]))
        n.expect_err(ERR_ACCESS_LOCKED, UNLOCK, bytes(6))
        n.unlock(fleet_key=fx.fleet_key)
        # unlocked, but PROGRAM before CLEAR_MEMORY
        n.set_mta(3, 0)
        n.expect_err(ERR_ACCESS_DENIED, PROGRAM_6, bytes(6))
        n.expect_err(ERR_ACCESS_DENIED, PROGRAM, bytes([2, 1, 2]))
        # CLEAR_MEMORY beyond C
        n.set_mta(3, 0x20000)
        n.expect_err(ERR_OUT_OF_RANGE, CLEAR_MEMORY, struct.pack(">I", AREA))
        # a PROGRAM past the end of C
        n.clear_c()
        n.set_mta(3, AREA - 2)
        n.expect_err(ERR_OUT_OF_RANGE, PROGRAM_6, bytes(6))
        # programming the same bytes twice: flash bits only clear
        n.program(0, b"\x01\x02\x03\x04\x05\x06")
        n.set_mta(3, 0)
        n.expect_err(ERR_ACCESS_DENIED, PROGRAM_6, b"\x01\x02\x03\x04\x05\x06")
        check(n.version() == (1, 0, 0), "still v1")
        check(d is not None, "seed")
    finally:
        bus.shutdown()


def test_torn_image_refused(fx):
    sim = fx.start(nodes=1)
    bus = open_bus(fx.pty)
    try:
        n = Ccp(bus, 1)
        n.connect()
        n.unlock(fleet_key=fx.fleet_key)
        n.clear_c()
        n.program_image(fx.v2, parts=("payload",))  # no trailer, no CRC
        r = n.disconnect(end=True)
        check(r is not None and r[0] == ERR_ACCESS_DENIED, "DISCONNECT(end) of a torn C: %r" % (r,))
        check(n.version() == (1, 0, 0), "node must keep running v1")
        check(n.status()[66] == 3, "staged state should be invalid")
        # the trailer without its last bytes: CRC wrong
        n.program(0x3FFC0, fx.v2[0x3FFC0:0x3FFFA])
        r = n.disconnect(end=True)
        check(r is not None and r[0] == ERR_ACCESS_DENIED, "DISCONNECT(end) without the CRC: %r" % (r,))
    finally:
        bus.shutdown()
    sim.kill()  # power cycle
    check(show(fx.state)["ttyCF0-1"]["C"]["state"] == "invalid", "C should hold the torn image")
    sim = Sim(fx.sim_args(nodes=1))
    fx.sim = sim
    bus = open_bus(fx.pty)
    try:
        n = Ccp(bus, 1)
        n.connect()
        check(n.version() == (1, 0, 0), "after a power cycle with a torn C: %s" % (n.version(),))
        check(n.status()[65] == 0, "the bootloader must not have installed anything")
    finally:
        bus.shutdown()
    check(sim.stop() == 0, "exit status")


def test_wrong_hardware_refused(fx):
    from nodesim_harness import pack_image
    fx.start(nodes=1)
    bus = open_bus(fx.pty)
    try:
        n = Ccp(bus, 1)
        n.connect()
        n.unlock(fleet_key=fx.fleet_key)
        n.clear_c()
        n.program_image(pack_image((3, 0, 0), 3, hw_id=0x0002, seed=3))
        r = n.disconnect(end=True)
        check(r is not None and r[0] == ERR_ACCESS_DENIED, "DISCONNECT(end) for another hw id: %r" % (r,))
        check(n.version() == (1, 0, 0), "still v1")
    finally:
        bus.shutdown()


if __name__ == "__main__":
    main([test_counters_echoed, test_unknown_and_out_of_range, test_torn_image_refused, test_wrong_hardware_refused])
