#!/usr/bin/python3
"""The simulated ADuCM360 serial download loader (AN-1160, seed 004) against a Python master written
from the application note, lpc21isp's ADuC70xx master (AN-724, the same packets), bad checksums,
corrupted bytes and a power cut in the middle of a write."""
import os
import shutil
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serial_harness import (ADI_FLASH, Line, SerialFixture, check, fail, fake_firmware,  # noqa: E402
                            line_seconds, run_tests)

ACK, BEL = 0x06, 0x07
PAGE = 512
IMAGE_SIZE = 64 * 1024

# AN-1160's CRC24_D32, one entry per bit of the new value: (data bits, old-value bits), as listed in
# the note's code example (seed 004); written out again here, independently of common/src/adi-uart.c.
_ROWS = [
    (list(range(23, 32)) + list(range(0, 18)), list(range(0, 10)) + list(range(15, 24))),
    ([23, 18, 0], [10, 15]), ([24, 19, 1], [11, 16]), ([25, 20, 2], [12, 17]), ([26, 21, 3], [13, 18]),
    ([31, 30, 29, 28, 26, 25, 24, 23, 22] + list(range(5, 18)) + [3, 2, 1, 0],
     list(range(0, 10)) + [14, 15, 16, 17, 18, 20, 21, 22, 23]),
    ([28, 18, 5, 0], [10, 20]), ([29, 19, 6, 1], [11, 21]), ([30, 20, 7, 2], [12, 22]),
    ([31, 21, 8, 3], [0, 13, 23]), ([22, 9, 4], [1, 14]), ([23, 10, 5], [2, 15]), ([24, 11, 6], [3, 16]),
    ([25, 12, 7], [4, 17]), ([26, 13, 8], [0, 5, 18]), ([27, 14, 9], [1, 6, 19]), ([28, 15, 10], [2, 7, 20]),
    ([29, 16, 11], [3, 8, 21]), ([30, 17, 12], [4, 9, 22]), ([31, 18, 13], [5, 10, 23]), ([19, 14], [6, 11]),
    ([20, 15], [7, 12]), ([21, 16], [8, 13]),
    (list(range(22, 32)) + list(range(0, 17)), list(range(0, 9)) + list(range(14, 24))),
]


def lfsr(data):
    crc = 0xFFFFFF
    for (word,) in struct.iter_unpack("<I", data):
        new = 0
        for k, (d, c) in enumerate(_ROWS):
            bit = 0
            for i in d:
                bit ^= (word >> i) & 1
            for i in c:
                bit ^= (crc >> i) & 1
            new |= bit << k
        crc = new
    return crc


def packet(cmd, value, data=b"", bad_checksum=False):
    body = bytes([5 + len(data), ord(cmd)]) + struct.pack(">I", value) + data
    cs = (-sum(body)) & 0xFF
    if bad_checksum:
        cs ^= 0x01
    return b"\x07\x0e" + body + bytes([cs])


class Loader:
    def __init__(self, path):
        self.line = Line(path)
        self.sent = self.received = 0

    def close(self):
        self.line.close()

    def sync(self):
        self.line.write(b"\x08")
        ident = self.line.read_exact(24)
        self.sent += 1
        self.received += 24
        check(ident[22:] == b"\n\r", "ID packet ends %r" % ident[22:])
        return ident[:15].decode().rstrip(), ident[15:18].decode()

    def send(self, cmd, value, data=b"", bad_checksum=False, timeout=2.0):
        p = packet(cmd, value, data, bad_checksum)
        self.line.write(p)
        self.sent += len(p)
        got = self.line.read_exact(1, timeout)[0]
        self.received += 1
        return got

    def ok(self, cmd, value, data=b""):
        got = self.send(cmd, value, data)
        check(got == ACK, "%s 0x%X: answer 0x%02X, expected ACK" % (cmd, value, got))

    def verify_page(self, addr, page):
        self.ok("V", 0x80000000, page[508:512])
        return self.send("V", addr, struct.pack("<I", lfsr(page[:508])))

    def flash(self, image):
        pages = (len(image) + PAGE - 1) // PAGE
        for first in range(0, pages, 255):
            self.ok("E", first * PAGE, bytes([min(255, pages - first)]))
        for off in range(0, len(image), 250):
            self.ok("W", off, image[off:off + 250])


def test_flash_verify_reset(fx):
    fx.start("adi-uart")
    ld = Loader(fx.pty)
    try:
        t0 = time.monotonic()
        product, version = ld.sync()
        check(product == "ADuCM360" and len(version) == 3, "ID packet: %r %r" % (product, version))
        image = fake_firmware(IMAGE_SIZE, 21)
        ld.flash(image)
        for addr in range(0, IMAGE_SIZE, PAGE):
            got = ld.verify_page(addr, image[addr:addr + PAGE])
            check(got == ACK, "verify of page 0x%X: 0x%02X" % (addr, got))
        wall = time.monotonic() - t0
        flash = fx.flash()
        check(len(flash) == ADI_FLASH and flash[:IMAGE_SIZE] == image, "flash file differs from the image")
        check(flash[IMAGE_SIZE:] == b"\xff" * (ADI_FLASH - IMAGE_SIZE), "beyond the image: erased")
        # a page that differs: BEL, both for the signature and for the last word
        bad = bytearray(image[:PAGE])
        bad[100] ^= 1
        check(ld.verify_page(0, bytes(bad)) == BEL, "verify with a wrong signature must BEL")
        bad = bytearray(image[:PAGE])
        bad[511] ^= 1
        check(ld.verify_page(0, bytes(bad)) == BEL, "verify with a wrong last word must BEL")
        check(ld.send("V", 0, struct.pack("<I", lfsr(image[:508]))) == BEL, "step 2 without step 1 must BEL")
        print("   adi-uart master, %d KB written and verified: %.2f s on the pty; %d bytes host->chip, "
              "%d chip->host; at 115200 baud 8N1 (10 bits per byte) at least %.2f s, %.2f s with both "
              "directions taking turns; the raw image alone would take %.2f s"
              % (IMAGE_SIZE // 1024, wall, ld.sent, ld.received, line_seconds(max(ld.sent, ld.received)),
                 line_seconds(ld.sent + ld.received), line_seconds(IMAGE_SIZE)), flush=True)
        ld.ok("R", 1)
        fx.wait_state(lambda st: st["state"] == "running" and st["app_valid"], "the application running")
        fx.sim.wait_log(r"application started at 0x00000000 \(valid user code")
        ld.line.write(packet("R", 1))
        check(ld.line.silent(0.3), "a running application does not answer the loader's packets")
        fx.reset()
        check(ld.sync()[0] == "ADuCM360", "the loader again after a reset")
    finally:
        ld.close()


def test_bel_for_bad_packets(fx):
    fx.start("adi-uart")
    ld = Loader(fx.pty)
    try:
        ld.sync()
        check(ld.send("W", 0, b"\x01\x02", bad_checksum=True) == BEL, "a bad checksum must BEL")
        check(ld.send("X", 0, b"") == BEL, "an unknown command must BEL")
        check(ld.send("W", ADI_FLASH - 2, b"\x00" * 4) == BEL, "a write past the flash must BEL")
        check(ld.send("E", ADI_FLASH, b"\x01") == BEL, "an erase past the flash must BEL")
        check(ld.send("R", 2) == BEL, "remote reset takes the value 1 only")
        check(ld.send("W", 0, bytes(251 - 1)) == ACK, "250 data bytes are allowed")
        check(fx.flash()[:250] == bytes(250), "written")
        # NOR flash: a second write over programmed bytes ANDs (the loader does not check)
        ld.ok("E", 0, b"\x01")
        ld.ok("W", 0x10, b"\xf0\x0f")
        ld.ok("W", 0x10, b"\x3c\x3c")
        check(fx.flash()[0x10:0x12] == b"\x30\x0c", "a write over written bytes ANDs")
        # mass erase: address 0, 0 pages
        ld.ok("E", 0, b"\x00")
        check(fx.flash() == b"\xff" * ADI_FLASH, "mass erase")
        # garbage between packets is skipped; the next packet is answered
        ld.line.write(b"\x55\xaa\x07\x07\x0e")
        ld.line.write(packet("W", 0x20, b"\x12")[2:])
        check(ld.line.read_exact(1) == bytes([ACK]), "a packet after garbage")
        fx.wait_state(lambda st: st["bad_checksums"] == 1 and st["naks"] == 5, "1 bad checksum, 5 BELs")
    finally:
        ld.close()


def test_power_cut_mid_write_then_finish(fx):
    image = fake_firmware(8 * PAGE, 22)
    # flash operations: 8 page erases, then W packets; the 11th is the third W, torn
    fx.start("adi-uart", ["--power-cut", "11,torn"])
    ld = Loader(fx.pty)
    try:
        ld.sync()
        ld.ok("E", 0, b"\x08")
        ld.ok("W", 0, image[0:250])
        ld.ok("W", 250, image[250:500])
        ld.line.write(packet("W", 500, image[500:750]))
        fx.sim.wait_log(r"power cut at flash operation 11 \(torn")
        check(ld.line.silent(0.2), "no ACK for the write the power cut")
        fx.sim.wait_log(r"reset \(power returned")
        flash = fx.flash()
        check(flash[:500] == image[:500], "the acknowledged writes are in the flash")
        check(flash[500:625] == image[500:625] and flash[625:750] == b"\xff" * 125, "the cut write is torn")
        # the next session starts over: BS, erase, write, verify
        ld.sync()
        ld.flash(image)
        for addr in range(0, len(image), PAGE):
            check(ld.verify_page(addr, image[addr:addr + PAGE]) == ACK, "verify of page 0x%X" % addr)
        fx.wait_state(lambda st: st["power_cuts"] == 1 and st["boots"] == 2, "one cut, two boots")
    finally:
        ld.close()


def test_corrupted_bytes_are_retried(fx):
    # about one byte in 300 has a bit flipped, each way: the master retries on BEL or silence
    retry_under_faults(fx, ["--corrupt", "0.003", "--seed", "5"])


def test_dropped_bytes_are_retried(fx):
    # about one byte in 500 is lost, each way: a packet short of a byte is dropped by the loader after
    # 100 ms of silence, a lost ACK is a time-out; the master retries both
    retry_under_faults(fx, ["--drop", "0.002", "--seed", "6"])


def retry_under_faults(fx, faults):
    fx.start("adi-uart", faults)
    image = fake_firmware(16 * PAGE, 23)
    ld = Loader(fx.pty)
    retries = 0

    def reliably(cmd, value, data=b"", want=ACK):
        nonlocal retries
        for _ in range(20):
            try:
                got = ld.send(cmd, value, data, timeout=0.3)
            except AssertionError:  # a corrupted count byte: the loader waits for more, then drops it
                got = None
            if got == want:
                return
            retries += 1
            ld.line.silent(0.15)  # let the loader drop a half packet and flush late answers
        fail("%s 0x%X never acknowledged" % (cmd, value))

    try:
        # with these seeds the BS and the ID packet pass unharmed (the faults follow the seed byte by byte)
        check(ld.sync()[0] == "ADuCM360", "ID packet")
        reliably("E", 0, bytes([16]))
        for off in range(0, len(image), 250):
            reliably("W", off, image[off:off + 250])
        check(fx.flash()[:len(image)] == image, "every byte arrived despite the corruption")
        st = fx.chip_state()
        check(retries > 0, "the faults should have cost retries")
        print("   %d retries, %d bad checksums seen by the loader" % (retries, st["bad_checksums"]))
    finally:
        ld.close()


def test_lpc21isp_adarm_master(fx):
    """lpc21isp's ADuC70xx master (AN-724: BS, ID packet, mass erase, W of 250 bytes) flashes it too."""
    exe = shutil.which("lpc21isp")
    check(exe, "lpc21isp is not installed (scripts/setup)")
    fx.start("adi-uart")
    image = fake_firmware(IMAGE_SIZE, 24)
    path = fx.file("app.bin", image)
    r = subprocess.run([exe, "-ADARM", "-bin", path, fx.pty, "115200", "12000"], capture_output=True,
                       text=True, timeout=120)
    check(r.returncode == 0, "lpc21isp -ADARM failed: %s" % r.stdout[-800:])
    check(fx.flash()[:IMAGE_SIZE] == image, "lpc21isp's ADuC download differs in the flash file")
    st = fx.wait_state(lambda st: st["host"] == "closed", "the host closed the pty")
    check(st["naks"] == 0, "no BEL for lpc21isp's packets")


if __name__ == "__main__":
    run_tests([test_flash_verify_reset, test_bel_for_bad_packets, test_power_cut_mid_write_then_finish,
               test_corrupted_bytes_are_retried, test_dropped_bytes_are_retried, test_lpc21isp_adarm_master],
              lambda: SerialFixture("ttyADI"))
