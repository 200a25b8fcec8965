"""Fixture of the serial chip tests: canfleet-nodesim --bus serial:PATH in a temp dir, a raw pty line,
the chip's flash and state files, and the LPC / ADI helpers the masters share.

Waits are bounded reads on the line or the simulator's log lines, never bare sleeps.
"""
import json
import os
import random
import select
import shutil
import struct
import sys
import tempfile
import termios
import time
import tty

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nodesim_harness import Sim, check, fail  # noqa: E402,F401

LPC1768_ID = 0x26013F37
LPC_FLASH = 512 * 1024
ADI_FLASH = 128 * 1024
BAUD = 115200
BITS_PER_BYTE = 10  # 8N1: start, 8 data, stop


class SerialFixture:
    def __init__(self, name):
        self.dir = tempfile.mkdtemp(prefix="nodesim-serial-")
        self.state = os.path.join(self.dir, "state")
        self.name = name
        self.pty = os.path.join(self.dir, name)
        self.sim = None

    def start(self, protocol, extra=()):
        self.sim = Sim(["--bus", "serial:" + self.pty, "--protocol", protocol, "--state", self.state,
                        "--seed", "1"] + list(extra))
        return self.sim

    def chip_state(self):
        with open(os.path.join(self.state, self.name + ".json")) as f:
            return json.load(f)

    def wait_state(self, pred, what, timeout=10.0):
        """The state file is rewritten after each answer: wait (bounded) until pred holds."""
        end = time.monotonic() + timeout
        while True:
            st = self.chip_state()
            if pred(st):
                return st
            if time.monotonic() > end:
                fail("state file never showed %s: %s" % (what, st))
            time.sleep(0.01)

    def flash(self):
        with open(os.path.join(self.state, self.name + ".bin"), "rb") as f:
            return f.read()

    def reset(self):
        """The reset button with the loader-entry pin held: SIGUSR1."""
        n = self.chip_state()["boots"]
        self.sim.proc.send_signal(10)  # SIGUSR1
        self.sim.wait_log(r"reset \(SIGUSR1")
        end = time.monotonic() + 10
        while self.chip_state()["boots"] == n:
            check(time.monotonic() < end, "state file not rewritten after the reset")
            time.sleep(0.01)

    def file(self, name, data):
        path = os.path.join(self.dir, name)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def cleanup(self):
        if self.sim and self.sim.proc.poll() is None:
            self.sim.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


class Line:
    """The host's end of the pty, raw."""

    def __init__(self, path):
        self.fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
        tty.setraw(self.fd)
        termios.tcflush(self.fd, termios.TCIOFLUSH)
        self.buf = b""

    def close(self):
        os.close(self.fd)

    def write(self, data):
        if isinstance(data, str):
            data = data.encode()
        while data:
            n = os.write(self.fd, data)
            data = data[n:]

    def read_some(self, timeout):
        r, _, _ = select.select([self.fd], [], [], timeout)
        if not r:
            return b""
        return os.read(self.fd, 4096)

    def read_exact(self, n, timeout=5.0):
        end = time.monotonic() + timeout
        while len(self.buf) < n:
            left = end - time.monotonic()
            if left <= 0:
                fail("timed out reading %d bytes, have %r" % (n, self.buf))
            self.buf += self.read_some(left)
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_line(self, timeout=5.0):
        """One line: CR and LF both end a line, empty lines are skipped (the ISP echoes the host's CR,
        answers, then echoes its LF)."""
        end = time.monotonic() + timeout
        while True:
            self.buf = self.buf.lstrip(b"\r\n")
            cut = min([i for i in (self.buf.find(b"\r"), self.buf.find(b"\n")) if i >= 0], default=-1)
            if cut >= 0:
                line, self.buf = self.buf[:cut], self.buf[cut + 1:]
                return line.decode(errors="replace")
            left = end - time.monotonic()
            if left <= 0:
                fail("timed out waiting for a line, have %r" % self.buf)
            self.buf += self.read_some(left)

    def silent(self, timeout):
        """True when nothing but line ends (left over from a line already read) arrives within timeout."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            self.buf += self.read_some(max(0.0, end - time.monotonic()))
        self.buf = self.buf.lstrip(b"\r\n")
        return not self.buf


def rand_bytes(n, seed):
    r = random.Random(seed)
    return bytes(r.getrandbits(8) for _ in range(n))


def lpc_vector_fix(image):
    """Word 7 = two's complement of the sum of words 0..6 (UM10360 "Criterion for Valid User Code")."""
    words = struct.unpack_from("<7I", image, 0)
    out = bytearray(image)
    struct.pack_into("<I", out, 0x1C, (-sum(words)) & 0xFFFFFFFF)
    return bytes(out)


def fake_firmware(n, seed):
    """n bytes that look like a Cortex-M3 image: a vector table, then code-like noise."""
    body = bytearray(rand_bytes(n, seed))
    struct.pack_into("<8I", body, 0, 0x10008000, 0x000000C1, 0xC9, 0xCB, 0xCD, 0xCF, 0xD1, 0)
    return bytes(body)


def line_seconds(nbytes, baud=BAUD):
    return nbytes * BITS_PER_BYTE / baud


def run_tests(tests, make_fixture):
    failed = 0
    only = sys.argv[1:]
    for t in tests:
        if only and t.__name__ not in only:
            continue
        fx = make_fixture()
        print("== %s" % t.__name__, flush=True)
        try:
            t(fx)
            print("   ok", flush=True)
        except Exception as e:
            import traceback
            traceback.print_exc()
            print("   FAILED: %s" % e, flush=True)
            failed += 1
        finally:
            fx.cleanup()
    print("%d failed" % failed)
    sys.exit(1 if failed else 0)


# ---- ISP data blocks, with Python's own UU codec (binascii) as the independent encoder


def send_blocks(line, data, corrupt_block=None):
    """W's data: 45-byte UU lines, the checksum after every 20 lines and after the last; expects OK.
    corrupt_block: that block's checksum is sent wrong once; the chip must answer RESEND."""
    import binascii
    lines = [data[i:i + 45] for i in range(0, len(data), 45)]
    for b, start in enumerate(range(0, len(lines), 20)):
        block = lines[start:start + 20]
        total = sum(sum(x) for x in block)
        tries = [total + 1, total] if b == corrupt_block else [total]
        for want in tries:
            for chunk in block:
                line.write(binascii.b2a_uu(chunk, backtick=True).rstrip(b"\n") + b"\r\n")
            line.write("%d\r\n" % want)
            answer = line.read_line()
            expect = "OK" if want == total else "RESEND"
            check(answer == expect, "block %d: %r, expected %s" % (b, answer, expect))


def read_blocks(line, n, resend_first=False):
    """R's data: UU lines and a checksum per 20 lines; answers OK (or RESEND once for the first block)."""
    import binascii
    out = b""
    asked_resend = False
    while len(out) < n:
        block = b""
        for _ in range(20):
            text = line.read_line()
            block += binascii.a2b_uu(text)
            if len(out) + len(block) >= n:
                break
        total = int(line.read_line())
        check(total == sum(block), "R block checksum %d, the data sums to %d" % (total, sum(block)))
        if resend_first and not asked_resend:
            asked_resend = True
            line.write("RESEND\r\n")
            continue
        line.write("OK\r\n")
        out += block
    return out
