#!/usr/bin/python3
"""canfleetctl image pack / inspect, driven as an operator would: the real binary, files in a temp dir.

Usage: test-image-tool.py CANFLEETCTL IMAGE_CHECK
IMAGE_CHECK is tests/client/image-check (cf_image_check() on a file).
"""
import hashlib
import json
import os
import struct
import subprocess
import sys
import tempfile
import time
import unittest

CANFLEETCTL = None
IMAGE_CHECK = None

AREA = 0x40000
TRAILER = 0x3FFC0
CRC_AT = 0x3FFFC
MAGIC = 0x4D494643
TRAILER_FMT = "<IHHBBHIIII32s"  # image.h, 60 bytes


# The reference STM32 CRC (docs/design.md §2), written independently of common/src/crc32.c
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "nodesim"))
from nodesim_harness import crc32_stm32 as stm32_crc  # noqa: E402


def fake_app(n=3000, sp=0x20020000, reset=0x08020199):
    """A small application: vector table (SP, reset, a few handlers) then code-like bytes."""
    head = struct.pack("<II", sp, reset) + struct.pack("<4I", *([0x080201A1] * 4))
    body = bytes((i * 37 + 11) & 0xFF for i in range(max(0, n - len(head))))
    return (head + body)[:n] if n >= len(head) else head[:n]


class ImageTool(unittest.TestCase):
    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="canfleet-client-")
        self.dir = self._tmp.name

    def tearDown(self):
        self._tmp.cleanup()

    def path(self, name):
        return os.path.join(self.dir, name)

    def write(self, name, data):
        p = self.path(name)
        with open(p, "wb") as f:
            f.write(data)
        return p

    def run_ctl(self, *args, env=None):
        e = dict(os.environ)
        e.pop("SOURCE_DATE_EPOCH", None)
        if env:
            e.update(env)
        return subprocess.run([CANFLEETCTL, *args], capture_output=True, text=True, env=e, timeout=60)

    def pack(self, app, *extra, out="app.img", version="1.2.3", hw_id="0x0407", env=None):
        src = self.write("app.bin", app)
        args = ["image", "pack", src, "--version", version, "--hw-id", hw_id, "-o", self.path(out)]
        return self.run_ctl(*args, *extra, env=env)

    def assert_refused(self, r, code, *words):
        self.assertEqual(r.returncode, code, r.stderr)
        lines = r.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, "one line of error expected: %r" % r.stderr)
        for w in words:
            self.assertIn(w, lines[0])
        # nothing half-written is left behind
        self.assertFalse(os.path.exists(self.path("app.img")))
        self.assertEqual([f for f in os.listdir(self.dir) if f.startswith(".")], [])

    # ---- the CRC reference itself ----

    def test_reference_crc(self):
        self.assertEqual(stm32_crc(b"12345678"), 0xFEFC54F9)
        self.assertEqual(stm32_crc(struct.pack("<I", 0x12345678)), 0xDF8A8A2B)

    # ---- pack ----

    def test_pack_layout(self):
        app = fake_app(3000)
        r = self.pack(app, "--release", "7", "--build-time", "1700000000")
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(self.path("app.img"), "rb") as f:
            img = f.read()
        self.assertEqual(len(img), AREA)
        self.assertEqual(img[: len(app)], app)
        self.assertEqual(img[len(app) : TRAILER], b"\xff" * (TRAILER - len(app)))
        (magic, layout, hw, vmaj, vmin, vpat, rel, plen, asize, btime, sha) = struct.unpack(
            TRAILER_FMT, img[TRAILER:CRC_AT]
        )
        self.assertEqual(magic, MAGIC)
        self.assertEqual(img[TRAILER : TRAILER + 4], b"CFIM")
        self.assertEqual(layout, 1)
        self.assertEqual(hw, 0x0407)
        self.assertEqual((vmaj, vmin, vpat), (1, 2, 3))
        self.assertEqual(rel, 7)
        self.assertEqual(plen, len(app))
        self.assertEqual(asize, AREA)
        self.assertEqual(btime, 1700000000)
        self.assertEqual(sha, hashlib.sha256(app).digest())
        self.assertEqual(struct.unpack("<I", img[CRC_AT:])[0], stm32_crc(img[:CRC_AT]))
        c = subprocess.run([IMAGE_CHECK, self.path("app.img")], capture_output=True, text=True)
        self.assertEqual(c.returncode, 0, c.stdout + c.stderr)
        self.assertTrue(c.stdout.startswith("0 "))

    def test_pack_defaults(self):
        r = self.pack(fake_app(100), env={"SOURCE_DATE_EPOCH": "1234567890"})
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(self.path("app.img"), "rb") as f:
            t = struct.unpack(TRAILER_FMT, f.read()[TRAILER:CRC_AT])
        self.assertEqual(t[6], 0)  # release defaults to 0
        self.assertEqual(t[9], 1234567890)  # build time from SOURCE_DATE_EPOCH
        # without it: the current time (an hour's slack: this is about the source, not speed)
        r = self.pack(fake_app(100))
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(self.path("app.img"), "rb") as f:
            t = struct.unpack(TRAILER_FMT, f.read()[TRAILER:CRC_AT])
        self.assertLess(abs(t[9] - time.time()), 3600)
        os.unlink(self.path("app.img"))
        self.assert_refused(self.pack(fake_app(100), env={"SOURCE_DATE_EPOCH": "soon"}), 2, "SOURCE_DATE_EPOCH")

    def test_pack_accepted_forms(self):
        for size in ("256K", "262144", "0x40000", "256KiB"):
            r = self.pack(fake_app(64), "--size", size)
            self.assertEqual(r.returncode, 0, "%s: %s" % (size, r.stderr))
        # decimal and hex hardware ids mean the same
        outs = []
        for hw in ("1031", "0x0407", "0X407"):
            r = self.pack(fake_app(64), "--build-time", "0", hw_id=hw, out="hw.img")
            self.assertEqual(r.returncode, 0, r.stderr)
            with open(self.path("hw.img"), "rb") as f:
                outs.append(f.read())
        self.assertEqual(outs[0], outs[1])
        self.assertEqual(outs[0], outs[2])
        # ISO-8601 build time
        r = self.pack(fake_app(64), "--build-time", "2023-11-14T22:13:20Z")
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(self.path("app.img"), "rb") as f:
            self.assertEqual(struct.unpack(TRAILER_FMT, f.read()[TRAILER:CRC_AT])[9], 1700000000)
        # limits of the version fields
        r = self.pack(fake_app(64), version="255.255.65535")
        self.assertEqual(r.returncode, 0, r.stderr)
        r = self.pack(fake_app(64), version="0.0.0", hw_id="65535")
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_pack_largest_payload(self):
        app = fake_app(TRAILER)
        r = self.pack(app)
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(self.path("app.img"), "rb") as f:
            img = f.read()
        self.assertEqual(img[:TRAILER], app)
        c = subprocess.run([IMAGE_CHECK, self.path("app.img")], capture_output=True)
        self.assertEqual(c.returncode, 0)

    def test_pack_replaces_atomically(self):
        out = self.write("app.img", b"old contents")
        r = self.pack(fake_app(500))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(os.path.getsize(out), AREA)
        self.assertEqual(sorted(os.listdir(self.dir)), ["app.bin", "app.img"])
        # a refused pack leaves the old image alone
        self.write("app.img", b"old contents")
        r = self.pack(b"")
        self.assertEqual(r.returncode, 1)
        with open(out, "rb") as f:
            self.assertEqual(f.read(), b"old contents")
        # an unwritable destination is reported, exit 1
        r = self.pack(fake_app(64), out="no-such-dir/app.img")
        self.assertEqual(r.returncode, 1)
        self.assertIn("cannot write", r.stderr)

    def test_refuse_too_large(self):
        self.assert_refused(self.pack(fake_app(TRAILER + 1)), 1, "262081", "0x3FFC0")
        self.assert_refused(self.pack(fake_app(AREA)), 1, "image already")

    def test_refuse_empty(self):
        self.assert_refused(self.pack(b""), 1, "empty")

    def test_refuse_short(self):
        self.assert_refused(self.pack(b"\x00\x00\x02\x20\x99"), 1, "vector table")

    def test_refuse_no_vector_table(self):
        for sp, reset in (
            (0xFFFFFFFF, 0xFFFFFFFF),  # erased / not a binary
            (0x20020000, 0x08020198),  # no Thumb bit
            (0x20020000, 0x08000199),  # linked for the bootloader area
            (0x20030000, 0x08020199),  # stack beyond SRAM
        ):
            self.assert_refused(self.pack(fake_app(256, sp, reset)), 1, "vector table", "0x08020000")
        self.assert_refused(self.pack(b"\x7fELF" + bytes(60)), 1, "ELF", "objcopy")

    def test_refuse_bad_version(self):
        for v in ("1.2", "1.2.3.4", "256.0.0", "0.256.0", "1.2.65536", "v1.2.3", "1.-2.3", "1..3", "", "a.b.c",
                  "1.2.3-rc1", " 1.2.3"):
            self.assert_refused(self.pack(fake_app(64), version=v), 2, "--version")

    def test_refuse_bad_hw_id(self):
        for hw in ("65536", "0x10000", "-1", "abc", "0x", "", "12k", "1.0"):
            self.assert_refused(self.pack(fake_app(64), hw_id=hw), 2, "--hw-id")

    def test_refuse_bad_size(self):
        for size in ("128K", "512K", "0x20000", "262143"):
            self.assert_refused(self.pack(fake_app(64), "--size", size), 2, "256K")
        self.assert_refused(self.pack(fake_app(64), "--size", "big"), 2, "--size")

    def test_refuse_bad_release_and_time(self):
        self.assert_refused(self.pack(fake_app(64), "--release", "4294967296"), 2, "--release")
        self.assert_refused(self.pack(fake_app(64), "--release", "-1"), 2, "--release")
        self.assert_refused(self.pack(fake_app(64), "--build-time", "yesterday"), 2, "--build-time")

    def test_refuse_usage(self):
        self.assert_refused(self.pack(fake_app(64), "--frobnicate"), 2, "unknown option", "--frobnicate")
        self.assert_refused(self.pack(fake_app(64), "-x"), 2, "unknown option", "-x")
        src = self.write("app.bin", fake_app(64))
        out = self.path("app.img")
        self.assert_refused(self.run_ctl("image", "pack", src, "--hw-id", "1", "-o", out), 2, "--version")
        self.assert_refused(self.run_ctl("image", "pack", src, "--version", "1.0.0", "-o", out), 2, "--hw-id")
        self.assert_refused(self.run_ctl("image", "pack", src, "--version", "1.0.0", "--hw-id", "1"), 2, "-o")
        self.assert_refused(self.run_ctl("image", "pack", "--version", "1.0.0", "--hw-id", "1", "-o", out), 2,
                            "input")
        self.assert_refused(self.run_ctl("image", "pack", src, src, "--version", "1.0.0", "--hw-id", "1", "-o",
                                         out), 2, "one input")
        self.assert_refused(self.run_ctl("image", "pack", src, "--version"), 2, "needs a value")
        self.assert_refused(self.run_ctl("image", "pack", self.path("missing.bin"), "--version", "1.0.0",
                                         "--hw-id", "1", "-o", out), 1, "cannot read", "missing.bin")
        self.assert_refused(self.run_ctl("image", "frobnicate"), 2, "frobnicate")
        self.assert_refused(self.run_ctl("image"), 2, "pack")
        self.assert_refused(self.run_ctl("frobnicate"), 2, "unknown command")
        self.assert_refused(self.run_ctl("--frobnicate"), 2, "unknown option")
        self.assert_refused(self.run_ctl(), 2, "no command")

    # ---- inspect ----

    def packed(self, app=None, **kw):
        r = self.pack(app if app is not None else fake_app(3000), "--release", "42", "--build-time",
                      "1700000000", **kw)
        self.assertEqual(r.returncode, 0, r.stderr)
        return self.path("app.img")

    def test_inspect_text(self):
        app = fake_app(3000)
        img = self.packed(app)
        r = self.run_ctl("image", "inspect", img)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        out = r.stdout
        self.assertRegex(out, r"version:\s+1\.2\.3\n")
        self.assertRegex(out, r"hardware id:\s+0x0407\n")
        self.assertRegex(out, r"release:\s+42\n")
        self.assertRegex(out, r"payload length:\s+3000 bytes")
        self.assertRegex(out, r"build time:\s+2023-11-14T22:13:20Z\n")
        self.assertIn(hashlib.sha256(app).hexdigest(), out)
        self.assertRegex(out, r"CRC32:\s+valid")
        self.assertRegex(out, r"trailer:\s+valid")
        self.assertRegex(out, r"vector table:\s+valid")
        self.assertRegex(out, r"payload sha256:\s+valid")
        self.assertNotIn("INVALID", out)

    def inspect_json(self, img):
        r = self.run_ctl("image", "inspect", "--json", img)
        return r.returncode, json.loads(r.stdout)

    def test_inspect_json(self):
        app = fake_app(3000)
        code, j = self.inspect_json(self.packed(app))
        self.assertEqual(code, 0)
        self.assertIs(j["valid"], True)
        self.assertEqual(j["version"], "1.2.3")
        self.assertEqual(j["hw_id"], 0x0407)
        self.assertEqual(j["release"], 42)
        self.assertEqual(j["payload_len"], 3000)
        self.assertEqual(j["build_time"], 1700000000)
        self.assertEqual(j["build_time_iso"], "2023-11-14T22:13:20Z")
        self.assertEqual(j["payload_sha256"], hashlib.sha256(app).hexdigest())
        for k in ("crc_valid", "trailer_valid", "vectors_valid", "payload_sha256_valid"):
            self.assertIs(j[k], True, k)
        # --json after the file works too
        r = self.run_ctl("image", "inspect", self.path("app.img"), "--json")
        self.assertEqual(json.loads(r.stdout)["valid"], True)

    def test_inspect_corrupt_byte(self):
        img = self.packed()
        with open(img, "r+b") as f:
            f.seek(1000)
            b = f.read(1)
            f.seek(1000)
            f.write(bytes([b[0] ^ 0x01]))
        r = self.run_ctl("image", "inspect", img)
        self.assertEqual(r.returncode, 1)
        self.assertRegex(r.stdout, r"CRC32:\s+INVALID")
        code, j = self.inspect_json(img)
        self.assertEqual(code, 1)
        self.assertIs(j["valid"], False)
        self.assertIs(j["crc_valid"], False)
        self.assertIs(j["payload_sha256_valid"], False)
        c = subprocess.run([IMAGE_CHECK, img], capture_output=True, text=True)
        self.assertEqual(c.returncode, 1)
        self.assertTrue(c.stdout.startswith("-1 "))

    def test_inspect_sha_mismatch_with_good_crc(self):
        # payload changed and the CRC recomputed: only the SHA-256 in the trailer can tell
        img = self.packed()
        with open(img, "rb") as f:
            data = bytearray(f.read())
        data[2000] ^= 0xFF
        data[CRC_AT:] = struct.pack("<I", stm32_crc(bytes(data[:CRC_AT])))
        with open(img, "wb") as f:
            f.write(data)
        code, j = self.inspect_json(img)
        self.assertEqual(code, 1)
        self.assertIs(j["crc_valid"], True)
        self.assertIs(j["payload_sha256_valid"], False)
        self.assertIs(j["valid"], False)

    def test_inspect_padding_not_erased_with_good_crc(self):
        # a byte after the payload that is not 0xFF, CRC recomputed: canfleetd refuses it (the same
        # cf_image_check_full()), so inspect must not call it valid
        img = self.packed()
        with open(img, "rb") as f:
            data = bytearray(f.read())
        plen = struct.unpack_from("<I", data, TRAILER + 16)[0]
        data[plen + 7] = 0x00
        data[CRC_AT:] = struct.pack("<I", stm32_crc(bytes(data[:CRC_AT])))
        with open(img, "wb") as f:
            f.write(data)
        code, j = self.inspect_json(img)
        self.assertEqual(code, 1)
        self.assertIs(j["crc_valid"], True)
        self.assertIs(j["payload_sha256_valid"], True)
        self.assertIs(j["padding_valid"], False)
        self.assertIs(j["valid"], False)
        r = self.run_ctl("image", "inspect", img)
        self.assertEqual(r.returncode, 1)
        self.assertRegex(r.stdout, r"padding:\s+INVALID")

    def test_inspect_erased_and_wrong_size(self):
        img = self.write("erased.img", b"\xff" * AREA)
        code, j = self.inspect_json(img)
        self.assertEqual(code, 1)
        self.assertIs(j["crc_valid"], False)
        self.assertIs(j["trailer_valid"], False)
        self.assertIs(j["valid"], False)
        r = self.run_ctl("image", "inspect", self.write("short.img", fake_app(100)))
        self.assertEqual(r.returncode, 1)
        self.assertIn("262144", r.stderr)
        r = self.run_ctl("image", "inspect", self.path("missing.img"))
        self.assertEqual(r.returncode, 1)
        self.assertIn("cannot read", r.stderr)
        r = self.run_ctl("image", "inspect", self.dir)
        self.assertEqual(r.returncode, 1)
        self.assertIn("directory", r.stderr)
        r = self.run_ctl("image", "inspect")
        self.assertEqual(r.returncode, 2)
        r = self.run_ctl("image", "inspect", "--yaml", self.path("erased.img"))
        self.assertEqual(r.returncode, 2)
        self.assertIn("--yaml", r.stderr)

    # ---- help ----

    def test_help(self):
        for args in (["--help"], ["-h"], ["help"]):
            r = self.run_ctl(*args)
            self.assertEqual(r.returncode, 0)
            self.assertIn("image", r.stdout)
            self.assertIn("Examples", r.stdout)
        for args in (["image", "--help"], ["help", "image"], ["image", "pack", "--help"],
                     ["image", "inspect", "--help"]):
            r = self.run_ctl(*args)
            self.assertEqual(r.returncode, 0, args)
            for w in ("pack", "inspect", "--hw-id", "--release", "default 0", "256K", "Examples"):
                self.assertIn(w, r.stdout, (args, w))
        r = self.run_ctl("--version")
        self.assertEqual(r.returncode, 0)
        self.assertRegex(r.stdout, r"^canfleetctl \d+\.\d+")


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit("usage: test-image-tool.py CANFLEETCTL IMAGE_CHECK [unittest args]")
    CANFLEETCTL = os.path.abspath(sys.argv[1])
    IMAGE_CHECK = os.path.abspath(sys.argv[2])
    unittest.main(argv=[sys.argv[0], "-v", *sys.argv[3:]])
