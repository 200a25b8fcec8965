"""Shared fixture of the nodesim tests: the real canfleet-nodesim in a temp dir, a CCP master, image packing.

Everything is synchronised on events (the simulator's "ready" line, its log lines, CCP replies);
waits are bounded loops, never bare sleeps.
"""
import hashlib
import hmac
import os
import random
import re
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time

NODESIM = os.environ.get("NODESIM", "canfleet-nodesim")

CONNECT, SET_MTA, DNLOAD, UPLOAD, TEST, DISCONNECT = 0x01, 0x02, 0x03, 0x04, 0x05, 0x07
BUILD_CHKSUM, SHORT_UP, CLEAR_MEMORY, GET_SEED, UNLOCK = 0x0E, 0x0F, 0x10, 0x12, 0x13
EXCHANGE_ID, PROGRAM, MOVE, GET_CCP_VERSION, PROGRAM_6 = 0x17, 0x18, 0x19, 0x1B, 0x22
OK, ERR_UNKNOWN_CMD, ERR_OUT_OF_RANGE, ERR_ACCESS_DENIED, ERR_ACCESS_LOCKED = 0x00, 0x30, 0x32, 0x33, 0x35
RES_PGM = 0x40
ACTION_SERVICE = 0x21
AREA = 0x40000
TRAILER_OFF, CRC_OFF = 0x3FFC0, 0x3FFFC


def fail(msg):
    raise AssertionError(msg)


def check(cond, msg):
    if not cond:
        fail(msg)


# ---- STM32 CRC32 (docs/design.md §2): words LE, fed MSB first == CRC-32/MPEG-2 over each word's bytes reversed


def _crc_table():
    t = []
    for i in range(256):
        c = i << 24
        for _ in range(8):
            c = ((c << 1) ^ 0x04C11DB7) if c & 0x80000000 else (c << 1)
            c &= 0xFFFFFFFF
        t.append(c)
    return t


_T = _crc_table()


def crc32_bytes(data, crc=0xFFFFFFFF):
    for b in data:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ _T[((crc >> 24) ^ b) & 0xFF]
    return crc


def crc32_stm32(data, crc=0xFFFFFFFF):
    check(len(data) % 4 == 0, "CRC over whole words only")
    swapped = bytearray(len(data))
    swapped[0::4], swapped[1::4], swapped[2::4], swapped[3::4] = data[3::4], data[2::4], data[1::4], data[0::4]
    return crc32_bytes(swapped, crc)


# self-check against docs/design.md's check values, so a broken helper cannot pass a broken node
assert crc32_bytes(b"123456789") == 0x0376E6E7
assert crc32_stm32(b"12345678") == 0xFEFC54F9
assert crc32_stm32(struct.pack("<I", 0x12345678)) == 0xDF8A8A2B


def pack_image(version=(1, 0, 0), release=1, hw_id=1, payload_len=1200, seed=1, bank=1):
    """A 256 KB area image as `canfleetctl image pack` makes it (common/include/canfleet/image.h); bank 2:
    linked for a dual-bank node's bank 2 (vectors in 0x08120000.., docs/design.md §9)."""
    rnd = random.Random(seed)
    payload = bytearray(struct.pack("<II", 0x20020000, 0x08120199 if bank == 2 else 0x08020199))
    payload += bytes(rnd.getrandbits(8) for _ in range(payload_len - 8))
    area = bytearray(b"\xff" * AREA)
    area[: len(payload)] = payload
    trailer = struct.pack("<IHHBBHIIII32s", 0x4D494643, 1, hw_id, version[0], version[1], version[2], release,
                          len(payload), AREA, 0, hashlib.sha256(payload).digest())
    assert len(trailer) == 60
    area[TRAILER_OFF:CRC_OFF] = trailer
    area[CRC_OFF:] = struct.pack("<I", crc32_stm32(area[:CRC_OFF]))
    return bytes(area)


def pack_with_canfleetctl(tool, image, workdir):
    """Repack image's payload with the real `canfleetctl image pack` (build time 0, like pack_image())."""
    info = struct.unpack("<IHHBBHIIII", image[TRAILER_OFF:TRAILER_OFF + 28])
    hw_id, version, release, payload_len = info[2], info[3:6], info[6], info[7]
    app, out = os.path.join(workdir, "app.bin"), os.path.join(workdir, "packed.img")
    with open(app, "wb") as f:
        f.write(image[:payload_len])
    r = subprocess.run([tool, "image", "pack", app, "--version", "%d.%d.%d" % version, "--hw-id", str(hw_id),
                        "--release", str(release), "--build-time", "0", "-o", out],
                       capture_output=True, text=True, timeout=30)
    check(r.returncode == 0, "canfleetctl image pack failed: %s" % r.stderr)
    with open(out, "rb") as f:
        return f.read()


def node_secret(fleet_key, uid):
    return hmac.new(fleet_key, b"canfleet-node-v1" + uid, hashlib.sha256).digest()


def ccp_key(secret, seed):
    return hmac.new(secret, seed, hashlib.sha256).digest()[:6]


# ---- The simulator process


class Sim:
    """canfleet-nodesim with stdout ("ready") and stderr (log lines) captured."""

    def __init__(self, args, ready_timeout=30.0):
        self.args = [NODESIM] + list(args)
        self.lines = []
        self.cond = threading.Condition()
        self.proc = subprocess.Popen(self.args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.reader = threading.Thread(target=self._read_stderr, daemon=True)
        self.reader.start()
        self._wait_ready(ready_timeout)

    def _read_stderr(self):
        for raw in self.proc.stderr:
            line = raw.decode(errors="replace").rstrip("\n")
            sys.stderr.write("  [nodesim] " + line + "\n")
            with self.cond:
                self.lines.append(line)
                self.cond.notify_all()
        with self.cond:
            self.lines.append(None)  # EOF
            self.cond.notify_all()

    def _wait_ready(self, timeout):
        r, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if r else b""
        if line != b"ready\n":
            self.proc.kill()
            self.proc.wait()
            fail("simulator not ready (got %r, exit %r): %s" % (line, self.proc.returncode, self.args))

    def wait_log(self, pattern, timeout=30.0):
        rx = re.compile(pattern)
        end = time.monotonic() + timeout
        seen = 0
        with self.cond:
            while True:
                for line in self.lines[seen:]:
                    if line is None:
                        fail("simulator exited while waiting for /%s/" % pattern)
                    if rx.search(line):
                        return line
                seen = len(self.lines)
                left = end - time.monotonic()
                if left <= 0:
                    fail("no log line /%s/ within %.0f s" % (pattern, timeout))
                self.cond.wait(left)

    def log_has(self, pattern):
        rx = re.compile(pattern)
        with self.cond:
            return any(line is not None and rx.search(line) for line in self.lines)

    def stop(self, sig=signal.SIGTERM, timeout=20.0):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            fail("simulator did not exit on signal %d" % sig)
        self.reader.join(5)
        return rc

    def kill(self):
        return self.stop(signal.SIGKILL)


def run_nodesim(args, timeout=30):
    return subprocess.run([NODESIM] + list(args), capture_output=True, text=True, timeout=timeout)


def show(state):
    import json
    r = run_nodesim(["--state", state, "--show", "--json"])
    check(r.returncode == 0, "--show failed: %s" % r.stderr)
    return {n["name"]: n for n in json.loads(r.stdout)["nodes"]}


class Fixture:
    """A temp state dir with a fleet key and the v1 / v2 images."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="nodesim-test-")
        self.fleet_key = bytes(random.Random(7).getrandbits(8) for _ in range(32))
        self.key_file = os.path.join(self.dir, "fleet.key")
        with open(self.key_file, "w") as f:
            f.write(self.fleet_key.hex() + "\n")
        self.v1 = pack_image((1, 0, 0), 1, seed=1)
        self.v2 = pack_image((2, 0, 0), 2, seed=2)
        self.v1_file = os.path.join(self.dir, "v1.img")
        with open(self.v1_file, "wb") as f:
            f.write(self.v1)
        self.state = os.path.join(self.dir, "state")
        self.pty = os.path.join(self.dir, "ttyCF0")
        self.sim = None
        self.procs = []  # other simulator processes a test started itself

    def sim_args(self, nodes=2, extra=()):
        return ["--bus", "slcan:" + self.pty, "--nodes", str(nodes), "--state", self.state,
                "--fleet-key", self.key_file, "--install", self.v1_file] + list(extra)

    def start(self, nodes=2, extra=()):
        self.sim = Sim(self.sim_args(nodes, extra))
        return self.sim

    def cleanup(self):
        if self.sim and self.sim.proc.poll() is None:
            self.sim.kill()
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


# ---- A CCP master over python-can


class CcpError(Exception):
    def __init__(self, err, cmd):
        super().__init__("CCP command 0x%02X answered 0x%02X" % (cmd, err))
        self.err = err


class Ccp:
    """One node's CCP session over a python-can bus. Every reply's counter is checked."""

    def __init__(self, bus, sa, cro_base=0x680, dto_base=0x6C0):
        self.bus, self.sa = bus, sa
        self.cro, self.dto = cro_base + sa, dto_base + sa
        self.ctr = 0

    def send(self, data):
        import can
        self.bus.send(can.Message(arbitration_id=self.cro, data=bytes(data), is_extended_id=False))

    def recv(self, timeout):
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return None
            msg = self.bus.recv(left)
            if msg is not None and msg.arbitration_id == self.dto and not msg.is_extended_id:
                check(msg.dlc == 8, "DTO with DLC %d" % msg.dlc)
                if msg.data[0] == 0xFF:
                    return bytes(msg.data)

    def drain(self):
        while self.bus.recv(0.01) is not None:
            pass

    def raw(self, cmd, params=b"", timeout=1.0, ctr=None):
        """Send a CRO, return (err, ctr, data[5]) or None on time-out."""
        if ctr is None:
            self.ctr = (self.ctr + 1) & 0xFF
            ctr = self.ctr
        self.send((bytes([cmd, ctr]) + bytes(params) + bytes(6))[:8])
        dto = self.recv(timeout)
        if dto is None:
            return None
        check(dto[2] == ctr, "counter not echoed: sent 0x%02X, got 0x%02X" % (ctr, dto[2]))
        return dto[1], dto[2], dto[3:]

    def cmd(self, cmd, params=b"", timeout=1.0):
        r = self.raw(cmd, params, timeout)
        check(r is not None, "no reply to CCP command 0x%02X" % cmd)
        if r[0] != OK:
            raise CcpError(r[0], cmd)
        return r[2]

    def expect_err(self, err, cmd, params=b"", timeout=1.0):
        r = self.raw(cmd, params, timeout)
        check(r is not None, "no reply to CCP command 0x%02X" % cmd)
        check(r[0] == err, "command 0x%02X: expected error 0x%02X, got 0x%02X" % (cmd, err, r[0]))

    def connect(self, timeout=1.0):
        return self.cmd(CONNECT, struct.pack("<H", self.sa), timeout)

    def connect_retry(self, tries=100, timeout=0.1):
        """Until the node answers (it may be rebooting): a bounded loop of CONNECTs."""
        for _ in range(tries):
            r = self.raw(CONNECT, struct.pack("<H", self.sa), timeout)
            if r is not None and r[0] == OK:
                self.drain()
                return
        fail("node %d did not answer CONNECT" % self.sa)

    def set_mta(self, ext, addr, mta=0):
        self.cmd(SET_MTA, bytes([mta, ext]) + struct.pack(">I", addr))

    def upload(self, n):
        return self.cmd(UPLOAD, bytes([n]))[:n]

    def short_up(self, n, ext, addr):
        return self.cmd(SHORT_UP, bytes([n, ext]) + struct.pack(">I", addr))[:n]

    def device_id(self):
        d = self.cmd(EXCHANGE_ID)
        check(d[0] == 16, "device ID length %d" % d[0])
        out = b""
        while len(out) < 16:
            out += self.upload(min(5, 16 - len(out)))
        return out

    def version(self):
        v = self.short_up(4, 1, 8)
        return (v[0], v[1], struct.unpack("<H", v[2:4])[0])

    def status(self):
        out = b""
        while len(out) < 80:
            out += self.short_up(min(5, 80 - len(out)), 1, len(out))
        return out

    def unlock(self, secret=None, fleet_key=None):
        uid = None
        if secret is None:
            uid = self.short_uid()
            secret = node_secret(fleet_key, uid)
        d = self.cmd(GET_SEED, bytes([RES_PGM]))
        check(d[0] == 1, "PGM not protected")
        d = self.cmd(UNLOCK, ccp_key(secret, d[1:5]))
        check(d[0] & RES_PGM, "PGM not unlocked")

    def short_uid(self):
        return self.short_up(5, 0, 0) + self.short_up(5, 0, 5) + self.short_up(2, 0, 10)

    def clear_c(self):
        self.set_mta(3, 0)
        self.cmd(CLEAR_MEMORY, struct.pack(">I", AREA), timeout=30)

    def program(self, offset, data):
        """PROGRAM_6 blocks, PROGRAM for the tail; checks the MTA each reply reports."""
        self.set_mta(3, offset)
        pos = 0
        while pos < len(data):
            n = min(6, len(data) - pos)
            if n == 6:
                d = self.cmd(PROGRAM_6, data[pos:pos + 6], timeout=1.0)
            else:
                d = self.cmd(PROGRAM, bytes([n]) + data[pos:pos + n], timeout=1.0)
            pos += n
            check(d[0] == 3 and struct.unpack(">I", d[1:5])[0] == offset + pos,
                  "MTA after PROGRAM: %s, expected 0x%X" % (d.hex(), offset + pos))

    def program_image(self, image, parts=("payload", "trailer")):
        """Only the non-erased parts go over the bus: the payload and the trailer + CRC."""
        payload_len = struct.unpack("<I", image[TRAILER_OFF + 16:TRAILER_OFF + 20])[0]
        if "payload" in parts:
            self.program(0, image[:payload_len])
        if "trailer" in parts:
            self.program(TRAILER_OFF, image[TRAILER_OFF:])

    def checksum(self, offset, size):
        self.set_mta(3, offset)
        d = self.cmd(BUILD_CHKSUM, struct.pack(">I", size), timeout=30)
        check(d[0] == 4, "checksum size %d" % d[0])
        return struct.unpack(">I", d[1:5])[0]

    def confirm(self, timeout=1.0):
        """ACTION_SERVICE 0xCF10 CONFIRM (dual-bank nodes)."""
        return self.cmd(ACTION_SERVICE, struct.pack(">H", 0xCF10), timeout=timeout)

    def disconnect(self, end=True, timeout=30):
        return self.raw(DISCONNECT, bytes([1 if end else 0, 0]) + struct.pack("<H", self.sa), timeout)


def open_bus(pty, bitrate=500000):
    import can
    return can.interface.Bus(interface="slcan", channel=pty, bitrate=bitrate, sleep_after_open=0)


def main(tests):
    """Run test functions in order; each gets a fresh Fixture. Exit 1 on any failure."""
    failed = 0
    only = sys.argv[1:]
    for t in tests:
        if only and t.__name__ not in only:
            continue
        fx = Fixture()
        print("== %s" % t.__name__, flush=True)
        try:
            t(fx)
            print("   ok", flush=True)
        except Exception as e:  # report and go on with the next test
            import traceback
            traceback.print_exc()
            print("   FAILED: %s" % e, flush=True)
            failed += 1
        finally:
            fx.cleanup()
    print("%d failed" % failed)
    sys.exit(1 if failed else 0)
