#!/usr/bin/python3
"""Fault switches a gateway must survive: --stall (a frozen SLCAN adapter), --power-cut mid-CLEAR_MEMORY and
mid-PROGRAM with the power back after ~100 ms."""
import os
import select
import struct
import sys
import time
import tty

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nodesim_harness import (AREA, CLEAR_MEMORY, CONNECT, ERR_ACCESS_DENIED, GET_CCP_VERSION, PROGRAM_6, Ccp, Sim,
                             check, main, open_bus, show)


class RawSlcan:
    """The adapter's pty driven byte by byte, so that the test knows exactly what was written when."""

    def __init__(self, path):
        self.fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
        tty.setraw(self.fd)
        self.buf = b""

    def close(self):
        os.close(self.fd)

    def write(self, line):
        os.write(self.fd, line.encode() + b"\r")

    def answer(self, timeout=2.0):
        """Everything up to and including the next '\\r' or BEL; None when nothing came in time."""
        end = time.monotonic() + timeout
        while True:
            for i, b in enumerate(self.buf):
                if b in (0x0D, 0x07):
                    out, self.buf = self.buf[: i + 1], self.buf[i + 1:]
                    return out.decode()
            left = end - time.monotonic()
            if left <= 0:
                return None
            r, _, _ = select.select([self.fd], [], [], left)
            if r:
                self.buf += os.read(self.fd, 4096)

    def cmd(self, line):
        self.write(line)
        return self.answer()

    def frame(self, cro, data):
        return "t%03X8%s" % (cro, bytes(data).hex().upper())


def cro_frame(cmd, ctr, params=b""):
    return (bytes([cmd, ctr]) + bytes(params) + bytes(6))[:8]


def test_stall(fx):
    """--stall 3:4000 then --stall 5:1000: the 3rd host frame reaches the node, but its answer and a frame sent
    during the stall are lost; after the stall the F flags show the overrun and CCP works again; the second
    stall counts host frames that went on the bus only."""
    sim = fx.start(nodes=1, extra=["--stall", "3:4000", "--stall", "5:1000"])
    a = RawSlcan(fx.pty)
    try:
        check(a.cmd("O") == "\r", "open")
        connect = a.frame(0x681, cro_frame(CONNECT, 1, struct.pack("<H", 1)))
        a.write(connect)  # host frame 1
        check(a.answer() == "z\r", "frame 1 acknowledged")
        check(a.answer().startswith("t6C18FF0001"), "CONNECT answered")
        a.write(a.frame(0x681, cro_frame(GET_CCP_VERSION, 2)))  # frame 2
        check(a.answer() == "z\r", "frame 2 acknowledged")
        check(a.answer().startswith("t6C18FF0002"), "GET_CCP_VERSION answered")
        a.write(a.frame(0x681, cro_frame(GET_CCP_VERSION, 3)))  # frame 3: on the bus, then the stall
        check(a.answer() == "z\r", "frame 3 acknowledged before the stall")
        sim.wait_log(r"ttyCF0: adapter .* stalls for 4000 ms after host frame 3$")
        # during the stall (4 s: ample for this process to write right after the log line): a whole frame
        # line and a command, both thrown away, no answer
        lost = a.frame(0x681, cro_frame(GET_CCP_VERSION, 4))
        a.write(lost)
        a.write("V")
        resumed = sim.wait_log(r"ttyCF0: adapter .* resumes")
        check(resumed.endswith("(lost %d bytes from the host, 1 frames to it)" % (len(lost) + 1 + 2)),
              "what the stall lost: %s" % resumed)
        check(a.answer(0.2) is None, "the stalled adapter answered: %r" % a.buf)
        flags = a.cmd("F")
        check(flags is not None and flags.startswith("F") and int(flags[1:3], 16) & 0x08,
              "F flags after the stall: %r" % flags)
        # frame 4 (the stall's lost frame did not count), then frame 5 starts the second stall
        a.write(a.frame(0x681, cro_frame(GET_CCP_VERSION, 5)))
        check(a.answer() == "z\r", "frame 4 acknowledged")
        check(a.answer().startswith("t6C18FF0005"), "CCP works after the stall")
        a.write(a.frame(0x681, cro_frame(GET_CCP_VERSION, 6)))
        check(a.answer() == "z\r", "frame 5 acknowledged")
        sim.wait_log(r"ttyCF0: adapter .* stalls for 1000 ms after host frame 5$")
        sim.wait_log(r"ttyCF0: adapter .* resumes \(lost 0 bytes from the host, 1 frames to it\)")
        a.write(a.frame(0x681, cro_frame(GET_CCP_VERSION, 7)))
        check(a.answer() == "z\r", "frame 6 acknowledged")
        check(a.answer().startswith("t6C18FF0007"), "CCP works after the second stall")
    finally:
        a.close()
    check(sim.stop() == 0, "exit status")


def test_stall_mid_line(fx):
    """A stall that ends while the host is half-way through a line: the rest of that line is refused (BEL),
    not taken for a command."""
    sim = fx.start(nodes=1, extra=["--stall", "1:3000"])
    a = RawSlcan(fx.pty)
    try:
        check(a.cmd("O") == "\r", "open")
        a.write(a.frame(0x681, cro_frame(CONNECT, 1, struct.pack("<H", 1))))
        check(a.answer() == "z\r", "frame 1 acknowledged")
        sim.wait_log(r"stalls for 3000 ms after host frame 1$")
        os.write(a.fd, b"t6818")  # the start of a line, lost
        sim.wait_log(r"resumes \(lost 5 bytes from the host, 1 frames to it\)")
        os.write(a.fd, cro_frame(CONNECT, 2, struct.pack("<H", 1)).hex().upper().encode() + b"\r")
        check(a.answer() == "\a", "the tail of a cut line must be refused")
        a.write(a.frame(0x681, cro_frame(CONNECT, 3, struct.pack("<H", 1))))
        check(a.answer() == "z\r", "next frame acknowledged")
        check(a.answer().startswith("t6C18FF0003"), "CONNECT answered after the stall")
    finally:
        a.close()
    check(sim.stop() == 0, "exit status")


def unlocked(fx, bus):
    n = Ccp(bus, 1)
    n.connect()
    n.unlock(fleet_key=fx.fleet_key)
    return n


def finish_update(fx, n):
    """The whole update again, as a gateway would after the node came back."""
    n.connect_retry()
    n.unlock(fleet_key=fx.fleet_key)
    n.clear_c()
    n.program_image(fx.v2)
    r = n.disconnect(end=True)
    check(r is not None and r[0] == 0, "DISCONNECT(end): %r" % (r,))
    n.connect_retry()
    check(n.version() == (2, 0, 0), "running %s after the update" % (n.version(),))


def test_power_cut_mid_clear_memory(fx):
    """--power-cut 1:1: the first flash operation after start-up is the first sector erase of CLEAR_MEMORY
    (B was put in by the factory programmer, the boot writes nothing). The node goes dark, comes back in its
    application ~100 ms later, C is not valid, and a new session updates it."""
    sim = fx.start(nodes=1, extra=["--power-cut", "1:1"])
    bus = open_bus(fx.pty)
    try:
        n = unlocked(fx, bus)
        n.set_mta(3, 0)
        check(n.raw(CLEAR_MEMORY, struct.pack(">I", AREA), timeout=1.0) is None,
              "a node whose power went mid-erase answered")
        sim.wait_log(r"ttyCF0-1: power cut at flash operation 1 ")
        sim.wait_log(r"ttyCF0-1: power restored")
        n.connect_retry()
        check(n.version() == (1, 0, 0), "after the cut: running %s" % (n.version(),))
        check(n.status()[64] == 1, "back in the application")
        n.unlock(fleet_key=fx.fleet_key)
        n.set_mta(3, 0)
        n.expect_err(ERR_ACCESS_DENIED, PROGRAM_6, bytes(6))  # a new session must erase again
        finish_update(fx, n)
    finally:
        bus.shutdown()
    check(sim.stop() == 0, "exit status")
    check(show(fx.state)["ttyCF0-1"]["B"]["version"] == "2.0.0", "v2 in B")


def test_power_cut_mid_program(fx):
    """--power-cut 4:1: CLEAR_MEMORY's two erases, the first PROGRAM_6, then the power goes at the second. The
    node comes back running v1 with C incomplete; the update started over from CONNECT finishes it."""
    sim = fx.start(nodes=1, extra=["--power-cut", "4:1"])
    bus = open_bus(fx.pty)
    try:
        n = unlocked(fx, bus)
        n.clear_c()
        n.set_mta(3, 0)
        n.cmd(PROGRAM_6, fx.v2[0:6])
        check(n.raw(PROGRAM_6, fx.v2[6:12], timeout=1.0) is None, "a node whose power went mid-PROGRAM answered")
        sim.wait_log(r"ttyCF0-1: power cut at flash operation 4 ")
        sim.wait_log(r"ttyCF0-1: power restored")
        n.connect_retry()
        check(n.version() == (1, 0, 0), "after the cut: running %s" % (n.version(),))
        finish_update(fx, n)
    finally:
        bus.shutdown()
    check(sim.stop() == 0, "exit status")


def test_flash_fault_install(fx):
    """--flash-fault install:1: node 1's boot install fails every time. It tries 3 times, then stays in its
    bootloader's recovery (the tries erased B) answering CCP and saying why; node 2 is not affected. After a
    restart without the fault, the same image staged again installs."""
    sim = fx.start(nodes=2, extra=["--flash-fault", "install:1"])
    bus = open_bus(fx.pty)
    try:
        for sa in (1, 2):
            n = Ccp(bus, sa)
            n.connect()
            n.unlock(fleet_key=fx.fleet_key)
            n.clear_c()
            n.program_image(fx.v2)
            r = n.disconnect(end=True)
            check(r is not None and r[0] == 0, "node %d DISCONNECT(end): %r" % (sa, r))
        sim.wait_log(r"ttyCF0-1: node: no valid application, staying in the bootloader")
        n1 = Ccp(bus, 1)
        n1.connect_retry()
        st = n1.status()
        check(st[64] == 2, "node 1 should be in recovery, mode %d" % st[64])
        check(st[65] == 4, "last_update %d, expected 4 (install failed 3 times)" % st[65])
        check(st[76] == 3, "install_failures %d" % st[76])
        n2 = Ccp(bus, 2)
        n2.connect_retry()
        check(n2.version() == (2, 0, 0), "node 2 has no fault: running %s" % (n2.version(),))
    finally:
        bus.shutdown()
    check(sim.stop() == 0, "exit status")
    tries = sum(1 for line in sim.lines if line and line.startswith("ttyCF0-1: boot: installing the staged image"))
    retries = sum(1 for line in sim.lines if line and line.startswith("ttyCF0-1: boot: install failed, C kept"))
    check(tries == 3 and retries == 2, "node 1 tried %d times (%d retries), expected 3 (2)" % (tries, retries))
    check(sim.log_has(r"ttyCF0-1: boot: the staged image failed to install 3 times"), "no give-up line")
    state = show(fx.state)
    check(state["ttyCF0-1"]["install_failures"] == 3 and state["ttyCF0-2"]["install_failures"] == 0,
          "--show: install_failures %r" % ({k: v["install_failures"] for k, v in state.items()},))
    check(state["ttyCF0-1"]["B"]["state"] != "valid" and state["ttyCF0-1"]["C"]["state"] == "valid",
          "node 1: B erased by the tries, C kept: %r" % state["ttyCF0-1"])

    # power back without the fault (and without --install, which would put v1 into the empty B): still given
    # up (no install at power-on), then a real update works
    args = fx.sim_args(nodes=2)
    i = args.index("--install")
    fx.sim = sim = Sim(args[:i] + args[i + 2:])
    check(not sim.log_has(r"ttyCF0-1: boot: installing"), "a power-on must not try the image again")
    bus = open_bus(fx.pty)
    try:
        n1 = Ccp(bus, 1)
        n1.connect_retry()
        st = n1.status()
        check(st[64] == 2 and st[65] == 4, "after a power cycle: mode %d, last_update %d" % (st[64], st[65]))
        finish_update(fx, n1)
        st = n1.status()
        check(st[65] == 1 and st[76] == 0, "after the update: last_update %d, install_failures %d" % (st[65], st[76]))
    finally:
        bus.shutdown()
    check(sim.stop() == 0, "exit status")
    check(sim.log_has(r"ttyCF0-1: ccp: new image staged, earlier failed installs forgotten"), "no STAGED record")


if __name__ == "__main__":
    main([test_stall, test_stall_mid_line, test_power_cut_mid_clear_memory, test_power_cut_mid_program,
          test_flash_fault_install])
