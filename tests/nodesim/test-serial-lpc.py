#!/usr/bin/python3
"""The simulated LPC1768 ISP loader against independent masters (Debian's lpc21isp and lpcprog) and
against UM10360's rules for misuse, power cuts and G."""
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serial_harness import (LPC1768_ID, LPC_FLASH, Line, SerialFixture, check, fake_firmware,  # noqa: E402
                            line_seconds, lpc_vector_fix, rand_bytes, read_blocks, run_tests,
                            send_blocks)

IMAGE_SIZE = 64 * 1024
# lpcprog knows one sector size per part (its README's TODO): the LPC1768's first 64 KB are 16
# uniform 4 KB sectors, which is all a 64 KB image needs (lpctools ships its LPC1764 the same way).
LPCPROG_PARTS = ("0x26013F37, LPC1768FBD100, 0x00000000, 0x10000, 16, 0x04, "
                 "0x10000000, 0x8000, 0x800, 0x800, 1\n")


def tool(*args, timeout=120):
    exe = shutil.which(args[0])
    check(exe, "%s is not installed (scripts/setup installs lpc21isp and lpctools)" % args[0])
    t0 = time.monotonic()
    r = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout)
    return r, time.monotonic() - t0


def closed(fx):
    """The state once the simulator saw the tool close the pty (its byte counts are final)."""
    return fx.wait_state(lambda st: st["host"] == "closed", "the host closed the pty")


def report(fx, who, wall, before):
    st = closed(fx)
    up = st["bytes_in"] - before["bytes_in"]
    down = st["bytes_out"] - before["bytes_out"]
    # A UART is full duplex: the echo comes back while the host sends, so the busier direction
    # bounds the time; the sum is the bound for a master that waits for every echo byte.
    print("   %s, %d KB: %.2f s on the pty (not baud-limited); %d bytes host->chip, %d chip->host; "
          "at 115200 baud 8N1 (10 bits per byte) that takes at least %.2f s (the busier direction), "
          "%.2f s if both directions took turns; the raw image alone would take %.2f s"
          % (who, IMAGE_SIZE // 1024, wall, up, down, line_seconds(max(up, down)), line_seconds(up + down),
             line_seconds(IMAGE_SIZE)), flush=True)


def expect_flash(fx, expected):
    flash = fx.flash()
    check(len(flash) == LPC_FLASH, "flash file is %d bytes" % len(flash))
    check(flash[:len(expected)] == expected, "flash file differs from the image")
    check(flash[len(expected):] == b"\xff" * (LPC_FLASH - len(expected)), "flash beyond the image not erased")


def lpcprog_dump(fx, parts):
    out = os.path.join(fx.dir, "dump.bin")
    r, _ = tool("lpcprog", "-d", fx.pty, "-c", "dump", "-p", parts, "-f", "12000", out)
    check(r.returncode == 0, "lpcprog dump failed: %s %s" % (r.stdout[-500:], r.stderr[-500:]))
    with open(out, "rb") as f:
        return f.read()


def test_lpc21isp_flashes_and_lpcprog_reads_back(fx):
    fx.start("lpc-isp")
    image = fake_firmware(IMAGE_SIZE, 11)
    path = fx.file("app.bin", image)
    before = fx.chip_state()
    r, wall = tool("lpc21isp", "-bin", "-verify", "-donotstart", path, fx.pty, "115200", "12000")
    check(r.returncode == 0, "lpc21isp failed (%d): %s" % (r.returncode, r.stdout[-800:]))
    check("Download Finished and Verified correct" in r.stdout, "lpc21isp did not verify: %s" % r.stdout[-800:])
    report(fx, "lpc21isp", wall, before)
    expected = lpc_vector_fix(image)  # lpc21isp fills in word 7, as the ROM requires
    check(expected != image, "the test image should need its vector checksum")
    expect_flash(fx, expected)
    fx.wait_state(lambda st: st["app_valid"] and st["state"] == "loader", "valid user code, still in the loader")
    # a second, independent master reads it back over R
    fx.reset()
    dump = lpcprog_dump(fx, fx.file("parts.def", LPCPROG_PARTS.encode()))
    check(dump == expected, "lpcprog read back something else than lpc21isp wrote")


def test_lpcprog_flashes_and_reads_back(fx):
    fx.start("lpc-isp")
    image = fake_firmware(IMAGE_SIZE, 12)
    path = fx.file("app.bin", image)
    parts = fx.file("parts.def", LPCPROG_PARTS.encode())
    before = fx.chip_state()
    r, wall = tool("lpcprog", "-d", fx.pty, "-c", "flash", "-p", parts, "-f", "12000", path)
    check(r.returncode == 0 and "Writing started, 64 blocks" in r.stdout and "rror" not in r.stdout,
          "lpcprog flash failed: %s %s" % (r.stdout[-800:], r.stderr[-500:]))
    report(fx, "lpcprog flash", wall, before)
    expected = lpc_vector_fix(image)
    expect_flash(fx, expected)
    fx.reset()
    before = fx.chip_state()
    t0 = time.monotonic()
    dump = lpcprog_dump(fx, parts)
    st = closed(fx)
    print("   lpcprog dump: %.2f s, %d bytes chip->host (%.2f s at 115200 baud)"
          % (time.monotonic() - t0, st["bytes_out"] - before["bytes_out"],
             line_seconds(st["bytes_out"] - before["bytes_out"])))
    check(dump == expected, "lpcprog dump differs from what it flashed")
    # and lpc21isp verifies the same chip with its own compare (M) after writing it again
    fx.reset()
    r, _ = tool("lpc21isp", "-bin", "-verify", "-donotstart", path, fx.pty, "115200", "12000")
    check("Verified correct" in r.stdout, "lpc21isp over lpcprog's flash: %s" % r.stdout[-500:])
    expect_flash(fx, expected)


# ---- our own master: UM10360's return codes for misuse


class Isp:
    def __init__(self, path):
        self.line = Line(path)
        self.echo = True

    def close(self):
        self.line.close()

    def sync(self, khz=12000):
        self.line.write("?")
        check(self.line.read_line() == "Synchronized", "no Synchronized")
        self.line.write("Synchronized\r\n")
        got = self.line.read_line()
        check(got == "Synchronized", "Synchronized not echoed: %r" % got)
        check(self.line.read_line() == "OK", "no OK after Synchronized")
        self.line.write("%d\r\n" % khz)
        check(self.line.read_line() == str(khz), "frequency not echoed")
        check(self.line.read_line() == "OK", "no OK after the frequency")

    def cmd(self, text, extra=0):
        """Send a command; returns (return code, [extra lines])."""
        self.line.write(text + "\r\n")
        if self.echo:
            got = self.line.read_line()
            check(got == text, "echo %r for %r" % (got, text))
        rc = int(self.line.read_line())
        lines = [self.line.read_line() for _ in range(extra if rc == 0 else 0)]
        return rc, lines

    def rc(self, text, want):
        got, _ = self.cmd(text)
        check(got == want, "%s: return code %d, UM10360 says %d" % (text, got, want))


def test_return_codes(fx):
    fx.start("lpc-isp")
    isp = Isp(fx.pty)
    try:
        isp.sync()
        rc, lines = isp.cmd("J", 1)
        check(rc == 0 and int(lines[0]) == LPC1768_ID, "J: %d %s" % (rc, lines))
        rc, lines = isp.cmd("N", 4)
        check(rc == 0 and len(lines) == 4 and all(x.isdigit() for x in lines), "N: %s" % lines)
        rc, lines = isp.cmd("K", 2)
        check(rc == 0 and len(lines) == 2, "K")
        isp.rc("A 0", 0)
        isp.echo = False
        isp.rc("X", 1)                       # INVALID_COMMAND
        isp.rc("J 1", 12)                    # PARAM_ERROR
        isp.rc("P 0", 12)
        isp.rc("P a b", 12)
        isp.rc("E 0 0", 15)                  # CMD_LOCKED before U
        isp.rc("C 0 268435968 256", 15)
        isp.rc("G 0 T", 15)
        isp.rc("U 12345", 16)                # INVALID_CODE
        isp.rc("U 23130", 0)
        isp.rc("P 3 2", 7)                   # INVALID_SECTOR: end below start
        isp.rc("P 0 30", 7)                  # the LPC1768 has sectors 0..29
        isp.rc("E 0 0", 9)                   # SECTOR_NOT_PREPARED_FOR_WRITE_OPERATION
        isp.rc("P 0 1", 0)
        isp.rc("E 0 1", 0)
        isp.rc("E 0 0", 9)                   # E left the sectors unprepared again
        isp.rc("W 268435969 4", 13)          # ADDR_ERROR: not a word boundary
        isp.rc("W 268435968 6", 6)           # COUNT_ERROR
        isp.rc("W 536870912 4", 14)          # ADDR_NOT_MAPPED
        isp.rc("W 268435968 0", 0)
        isp.rc("P 0 0", 0)
        isp.rc("C 0 268435968 100", 6)       # COUNT_ERROR: 256, 512, 1024 or 4096 only
        isp.rc("P 0 0", 0)
        isp.rc("C 128 268435968 256", 3)     # DST_ADDR_ERROR: not a 256-byte boundary
        isp.rc("P 0 0", 0)
        isp.rc("C 0 268435970 256", 2)       # SRC_ADDR_ERROR
        isp.rc("P 0 0", 0)
        isp.rc("C 524288 268435968 256", 5)  # DST_ADDR_NOT_MAPPED
        isp.rc("P 0 0", 0)
        isp.rc("C 0 4096 256", 4)            # SRC_ADDR_NOT_MAPPED: flash is no RAM source
        isp.rc("C 0 268435968 256", 9)       # not prepared
        isp.rc("I 0 1", 0)                   # blank after E
        isp.rc("I 2 1", 7)
        isp.rc("R 1 4", 13)
        isp.rc("R 0 5", 6)
        isp.rc("R 524288 4", 14)
        isp.rc("M 0 268435968 6", 6)
        isp.rc("M 2 268435968 4", 13)
        isp.rc("M 0 4 4", 0)                 # both erased
        isp.rc("G 1 T", 13)
        isp.rc("G 0 A", 12)                  # no ARM mode on a Cortex-M3
        isp.rc("B 1234 1", 17)               # INVALID_BAUD_RATE
        isp.rc("B 115200 3", 18)             # INVALID_STOP_BIT
        isp.rc("B 115200 1", 0)
        fx.wait_state(lambda st: st["unlocked"] and not st["echo"] and st["synchronized"] and
                      "INVALID_STOP_BIT" in st["last_error"], "unlocked, echo off, the last error")
    finally:
        isp.close()


def test_write_resend_copy_read_compare(fx):
    fx.start("lpc-isp")
    isp = Isp(fx.pty)
    try:
        isp.sync()
        isp.rc("A 0", 0)
        isp.echo = False
        isp.rc("U 23130", 0)
        data = rand_bytes(1024, 3)
        isp.rc("W 268435968 1024", 0)
        # the second block's checksum is wrong once: RESEND, then the block again
        send_blocks(isp.line, data, corrupt_block=1)
        fx.wait_state(lambda st: st["bad_checksums"] == 1, "the RESEND counted")
        isp.rc("P 0 0", 0)
        isp.rc("E 0 0", 0)
        isp.rc("P 0 0", 0)
        isp.rc("C 0 268435968 1024", 0)
        check(fx.flash()[:1024] == data, "C did not copy W's data")
        rc, lines = isp.cmd("M 0 268435968 1024", 0)
        check(rc == 0, "M after C: %d" % rc)
        # R with a RESEND of the first block: the chip sends it again
        isp.line.write("R 0 1024\r\n")
        check(isp.line.read_line() == "0", "R")
        got = read_blocks(isp.line, 1024, resend_first=True)
        check(got == data, "R read back something else")
        # NOR flash: a second copy over programmed bytes ANDs, it does not replace
        ones = bytes([0xF0]) * 256
        isp.rc("W 268435968 256", 0)
        send_blocks(isp.line, ones)
        isp.rc("P 0 0", 0)
        isp.rc("C 0 268435968 256", 0)
        check(fx.flash()[:256] == bytes(b & 0xF0 for b in data[:256]), "copy over data must AND")
        rc, _ = isp.cmd("M 0 268435968 256")
        check(rc == 10, "M of differing memory: %d (COMPARE_ERROR)" % rc)
        isp.line.read_line()  # the offset
        isp.line.write("I 0 0\r\n")
        check(isp.line.read_line() == "8", "I of a programmed sector: SECTOR_NOT_BLANK")
        check(isp.line.read_line() == "0", "first non-blank offset")
        isp.line.read_line()
    finally:
        isp.close()


def test_go_runs_the_application_until_reset(fx):
    fx.start("lpc-isp")
    isp = Isp(fx.pty)
    try:
        isp.sync()
        isp.rc("U 23130", 0)
        isp.rc("G 0 T", 0)
        fx.wait_state(lambda st: st["state"] == "running" and st["app_entry"] == 0 and not st["app_valid"],
                      "the application running from 0")
        fx.sim.wait_log(r"application started at 0x00000000 \(NO valid user code")
        isp.line.write("?")
        check(isp.line.silent(0.3), "a running application does not answer the ISP")
        fx.reset()
        isp.sync()  # the loader again
        fx.wait_state(lambda st: st["state"] == "loader", "the loader after the reset")
    finally:
        isp.close()


def test_power_cut_mid_erase(fx):
    os.makedirs(fx.state)
    old = rand_bytes(LPC_FLASH, 5)
    fx.file("state/" + fx.name + ".bin", old)
    # flash operations: sector 0 erased (1), sector 1 cut halfway (2, torn)
    fx.start("lpc-isp", ["--power-cut", "2,torn"])
    isp = Isp(fx.pty)
    try:
        isp.sync()
        isp.rc("A 0", 0)
        isp.echo = False
        isp.rc("U 23130", 0)
        isp.rc("P 0 2", 0)
        isp.line.write("E 0 2\r\n")
        fx.sim.wait_log(r"power cut at flash operation 2 \(torn")
        fx.sim.wait_log(r"reset \(power returned")
        check(isp.line.silent(0.2), "no answer to the cut E")
        flash = fx.flash()
        check(flash[:4096] == b"\xff" * 4096, "sector 0 was erased before the cut")
        check(flash[4096:6144] == b"\xff" * 2048 and flash[6144:8192] == old[6144:8192], "sector 1 torn")
        check(flash[8192:] == old[8192:], "sector 2 untouched")
        fx.wait_state(lambda st: st["power_cuts"] == 1 and st["boots"] == 2 and not st["unlocked"],
                      "one power cut, a second boot")
        # back in the loader: a master starts over and finishes
        isp.echo = True
        isp.sync()
        isp.rc("U 23130", 0)
        isp.rc("P 0 2", 0)
        isp.rc("E 0 2", 0)
        isp.rc("I 0 2", 0)
    finally:
        isp.close()


def test_power_cut_off_is_silent(fx):
    fx.start("lpc-isp", ["--power-cut", "1,off"])
    isp = Isp(fx.pty)
    try:
        isp.sync()
        isp.rc("U 23130", 0)
        isp.rc("P 5 5", 0)
        isp.line.write("E 5 5\r\n")
        fx.sim.wait_log(r"power cut at flash operation 1, power stays off")
        isp.line.read_line()  # the echo of E went out before the cut
        isp.line.write("?")
        check(isp.line.silent(0.5), "a chip without power answers nothing: %r" % isp.line.buf)
        fx.wait_state(lambda st: st["state"] == "off", "state off")
    finally:
        isp.close()


def test_stall(fx):
    fx.start("lpc-isp", ["--stall", "3:400"])
    isp = Isp(fx.pty)
    try:
        isp.sync()
        isp.cmd("J", 1)
        isp.cmd("K", 2)
        isp.cmd("N", 4)  # the 3rd command is still answered, then the chip freezes
        isp.line.write("J\r\n")
        check(isp.line.silent(0.2), "a stalled chip answers nothing")
        fx.sim.wait_log(r"resumes after the stall")
        rc, lines = isp.cmd("J", 1)
        check(rc == 0 and int(lines[0]) == LPC1768_ID, "J after the stall")
    finally:
        isp.close()


def test_reset_on_open(fx):
    fx.start("lpc-isp", ["--reset-on-open"])
    for boot in (1, 2):  # the first host meets the chip as powered on
        isp = Isp(fx.pty)
        try:
            isp.sync()  # a fresh loader every time the port opens, without SIGUSR1
            isp.rc("U 23130", 0)
            fx.wait_state(lambda st: st["boots"] == boot and st["unlocked"], "boot %d, unlocked" % boot)
        finally:
            isp.close()
        fx.wait_state(lambda st: st["host"] == "closed", "the host closed the pty")


def test_command_line(fx):
    from nodesim_harness import run_nodesim
    bus = ["--bus", "serial:" + fx.pty]
    for args, want in [
        (bus + ["--state", fx.state], "--protocol: required with --bus serial:PATH"),
        (["--bus", "slcan:" + fx.pty, "--nodes", "1", "--state", fx.state, "--seedkey", "echo",
          "--protocol", "lpc-isp"], "--protocol: only with --bus serial:PATH"),
        (bus + ["--protocol", "lpc-isp", "--state", fx.state, "--nodes", "2"], "--nodes: is for CAN nodes"),
        (bus + ["--protocol", "lpc-isp", "--state", fx.state, "--power-cut", "3:1"], "--power-cut: a serial"),
        (bus + ["--protocol", "lpc-isp", "--state", fx.state, "--stall", "3:100:x"], "--stall: a serial"),
        (bus + ["--protocol", "isp", "--state", fx.state], "--protocol: 'isp': expected lpc-isp or adi-uart"),
        (bus + ["--bus", "serial:" + fx.pty + "2", "--protocol", "lpc-isp", "--state", fx.state],
         "serial:PATH simulates one chip"),
        (bus + ["--protocol", "lpc-isp", "--state", fx.state, "--part", "LPC2148"],
         "--part LPC2148: not an LPC17xx part name or id"),
        (bus + ["--protocol", "adi-uart", "--state", fx.state, "--part", "LPC1768"],
         "--part LPC1768: expected ADuCM360 or ADuCM361"),
    ]:
        r = run_nodesim(args)
        check(r.returncode == 2 and want in r.stderr, "%s: exit %d, %r (want %r)" % (args, r.returncode,
                                                                                     r.stderr, want))
    # a flash file of another size is not this part's flash: refused, and left as it was
    os.makedirs(fx.state)
    junk = fx.file("state/%s.bin" % fx.name, b"\x00" * 1000)
    r = run_nodesim(bus + ["--protocol", "lpc-isp", "--state", fx.state])
    check(r.returncode == 2 and "not a flash file of this part" in r.stderr, "wrong size: %r" % r.stderr)
    with open(junk, "rb") as f:
        check(f.read() == b"\x00" * 1000, "the refused file is untouched")
    os.unlink(junk)
    # another part: its id, its flash size, its sectors
    fx.start("lpc-isp", ["--part", "0x25001121"])
    isp = Isp(fx.pty)
    try:
        isp.sync()
        rc, lines = isp.cmd("J", 1)
        check(int(lines[0]) == 0x25001121, "J of the LPC1752: %s" % lines)
        isp.rc("P 15 15", 0)
        isp.rc("P 16 16", 7)  # 64 KB: sectors 0..15 only
        check(len(fx.flash()) == 64 * 1024, "the LPC1752's flash file is 64 KB")
        check(fx.chip_state()["part"] == "LPC1752", "part name in the state file")
    finally:
        isp.close()


if __name__ == "__main__":
    run_tests([test_lpc21isp_flashes_and_lpcprog_reads_back, test_lpcprog_flashes_and_reads_back,
               test_return_codes, test_write_resend_copy_read_compare, test_go_runs_the_application_until_reset,
               test_power_cut_mid_erase, test_power_cut_off_is_silent, test_stall,
               test_reset_on_open, test_command_line],
              lambda: SerialFixture("ttyLPC"))
