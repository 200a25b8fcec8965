#!/usr/bin/python3
"""The simulated SLCAN adapter driven raw over its pty: Lawicel commands, errors, hang-ups, readiness, shutdown."""
import os
import select
import signal
import subprocess
import sys
import time
import tty

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nodesim_harness import NODESIM, check, fail, main


class Pty:
    def __init__(self, path):
        self.fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
        tty.setraw(self.fd)
        self.buf = b""

    def close(self):
        os.close(self.fd)

    def _fill(self, end):
        left = end - time.monotonic()
        if left <= 0:
            return False
        r, _, _ = select.select([self.fd], [], [], left)
        if r:
            self.buf += os.read(self.fd, 4096)
        return True

    def answer(self, timeout=2.0):
        """One answer: everything up to and including the next '\\r' or BEL."""
        end = time.monotonic() + timeout
        while True:
            for i, b in enumerate(self.buf):
                if b in (0x0D, 0x07):
                    out, self.buf = self.buf[: i + 1], self.buf[i + 1:]
                    return out.decode()
            if not self._fill(end):
                fail("no answer within %.1f s (buffer %r)" % (timeout, self.buf))

    def cmd(self, line, timeout=2.0):
        os.write(self.fd, line.encode() + b"\r")
        return self.answer(timeout)

    def expect(self, line, want):
        got = self.cmd(line)
        check(got == want, "%r answered %r, expected %r" % (line, got, want))

    def nothing_pending(self):
        check(self.buf == b"", "unexpected data %r" % self.buf)


def start(fx, extra=()):
    """Readiness through --ready-fd: a pipe the simulator writes "ready\\n" to and closes."""
    rfd, wfd = os.pipe()
    args = [NODESIM, "--bus", "slcan:" + fx.pty, "--nodes", "2", "--state", fx.state, "--seedkey", "echo",
            "--ready-fd", str(wfd)] + list(extra)
    proc = subprocess.Popen(args, pass_fds=[wfd], stderr=subprocess.PIPE)
    fx.procs.append(proc)
    os.close(wfd)
    r, _, _ = select.select([rfd], [], [], 30)
    got = os.read(rfd, 100) if r else b""
    check(got == b"ready\n", "ready fd gave %r" % got)
    check(os.read(rfd, 100) == b"", "ready fd should be closed after the line")
    os.close(rfd)
    return proc


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    proc.stderr.close()
    return proc.wait(20)


def wait_stderr(proc, text, timeout=10.0):
    """Read the simulator's log until a line contains text."""
    end = time.monotonic() + timeout
    buf = b""
    while time.monotonic() < end:
        r, _, _ = select.select([proc.stderr], [], [], end - time.monotonic())
        if not r:
            break
        chunk = os.read(proc.stderr.fileno(), 4096)
        if not chunk:
            break
        buf += chunk
        sys.stderr.write(chunk.decode(errors="replace"))
        if text.encode() in buf:
            return
    fail("no log line with %r" % text)


def connect_frame(sa, ctr):
    return "t6%02X8%02X%02X%02X%02X00000000" % (0x80 + sa, 0x01, ctr, sa & 0xFF, sa >> 8)


def test_commands(fx):
    proc = start(fx)
    p = Pty(fx.pty)
    try:
        p.expect("V", "V1013\r")
        p.expect("N", "NCF01\r")
        p.expect("F", "\a")          # flags only while open
        p.expect("t68180101010000000000", "\a")  # transmit while closed
        p.expect("S9", "\a")
        p.expect("S6", "\r")
        p.expect("C", "\r")
        p.expect("O", "\r")
        p.expect("O", "\a")          # already open
        p.expect("S4", "\a")         # bitrate only while closed
        p.expect("F", "F00\r")
        os.write(p.fd, b"\r")        # a bare CR is ignored: the next answer belongs to V
        p.expect("V", "V1013\r")

        # malformed lines: BEL, and the adapter keeps working
        for bad in ("t68", "t6818zz00000000000000", "t681901010100000000000000", "t68180102", "t8001",
                    "tGGG0", "T1234567", "T2000000000", "t6811", "X", "s011C", "Z2", "M1234",
                    "t" + "0" * 60):
            p.expect(bad, "\a")

        # CONNECT to node 1 answered on its DTO id
        p.expect(connect_frame(1, 0x10), "z\r")
        check(p.answer() == "t6C18FF0010" + "00" * 5 + "\r", "CONNECT reply")
        # a frame with a wrong DLC is not CCP: ignored by the node; the next reply is the next command's
        p.expect("t6817" + "0F11" + "0100000000", "z\r")
        p.expect("t6818" + "5512" + "00" * 6, "z\r")          # unknown command 0x55, ctr 0x12
        check(p.answer() == "t6C18FF3012" + "00" * 5 + "\r", "unknown command answered 0x30")
        # an extended frame with the CRO's number is another frame: nobody answers
        p.expect("T000006818" + "5513" + "00" * 6, "Z\r")
        p.expect("r6818", "z\r")                               # remote frame: no data, no answer
        p.expect(connect_frame(2, 0x14), "z\r")
        check(p.answer() == "t6C28FF0014" + "00" * 5 + "\r", "node 2 CONNECT reply")

        # timestamps: 4 more hex digits before the CR
        p.expect("Z1", "\r")
        p.expect(connect_frame(1, 0x15), "z\r")
        a = p.answer()
        check(len(a) == len("t6C18FF0015" + "00" * 5) + 5 and a.startswith("t6C18FF0015"), "timestamped %r" % a)
        int(a[-5:-1], 16)
        p.expect("Z0", "\r")

        # listen-only: hears, may not send
        p.expect("C", "\r")
        p.expect("L", "\r")
        p.expect(connect_frame(1, 0x16), "\a")
        p.expect("C", "\r")
        p.nothing_pending()
    finally:
        p.close()
    check(stop(proc) == 0, "SIGTERM exit status")
    check(not os.path.lexists(fx.pty), "symlink not removed")


def test_hangup_and_reopen(fx):
    proc = start(fx)
    try:
        p = Pty(fx.pty)
        p.expect("O", "\r")
        p.expect(connect_frame(1, 1), "z\r")
        p.answer()
        p.close()  # the host goes away with the channel open
        for round_ in range(3):
            wait_stderr(proc, "host closed")
            p = Pty(fx.pty)
            # the adapter may need up to its retry period to see us: ask until it answers
            for _ in range(100):
                os.write(p.fd, b"V\r")
                r, _, _ = select.select([p.fd], [], [], 0.05)
                if r:
                    break
            check(p.answer() == "V1013\r", "adapter alive after hang-up %d" % round_)
            p.buf = b""
            while select.select([p.fd], [], [], 0.1)[0]:  # the retried V's answers, nothing else
                extra = os.read(p.fd, 4096)
                check(set(extra.split(b"\r")) <= {b"", b"V1013"}, "stale data after reopen: %r" % extra)
            p.expect(connect_frame(1, 2), "\a")  # unplugged = closed
            p.expect("O", "\r")
            p.expect(connect_frame(1, 3), "z\r")
            check(p.answer() == "t6C18FF0003" + "00" * 5 + "\r", "CONNECT after reopen")
            p.close()
        check(proc.poll() is None, "simulator died")
    finally:
        check(stop(proc) == 0, "exit status")


def test_stale_link_and_refusal(fx):
    os.makedirs(fx.state, exist_ok=True)
    os.symlink("/nonexistent/pts/99", fx.pty)  # left by a killed simulator
    proc = start(fx)
    check(os.readlink(fx.pty).startswith("/dev/pts/"), "stale link not replaced")
    p = Pty(fx.pty)
    p.expect("V", "V1013\r")
    p.close()
    check(stop(proc) == 0, "exit status")
    with open(fx.pty, "w") as f:
        f.write("not a link\n")
    r = subprocess.run([NODESIM, "--bus", "slcan:" + fx.pty, "--nodes", "1", "--state", fx.state, "--seedkey",
                        "echo"], capture_output=True, text=True, timeout=30)
    check(r.returncode != 0 and "not a symlink" in r.stderr, "a regular file must not be replaced: %r" % (r,))
    with open(fx.pty) as f:
        check(f.read() == "not a link\n", "file clobbered")


if __name__ == "__main__":
    main([test_commands, test_hangup_and_reopen, test_stale_link_and_refusal])
