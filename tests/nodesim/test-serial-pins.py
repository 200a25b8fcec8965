#!/usr/bin/python3
"""The simulated chips follow their RESET and boot pins (canfleet-nodesim --pins SOCKET): held silent
in reset, the ROM loader when RESET rises with the boot pin low, the application otherwise. Debian's
lpc21isp -control (DTR = reset, RTS = boot pin: a real master, written by others, that resets the chip
itself) flashes and verifies the simulated LPC1768 through tests/serial-shim, which stands in for the
modem lines a pty does not have; with the lines swapped (-controlswap, another board's wiring) the
chip never enters its loader."""
import os
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serial_harness import (ADI_FLASH, LPC_FLASH, Line, SerialFixture, check, fake_firmware,  # noqa: E402
                            lpc_vector_fix, run_tests)

SHIM = os.environ.get("CANFLEET_SERIAL_SHIM", "")
IMAGE_SIZE = 16 * 1024


class PinsFixture(SerialFixture):
    def __init__(self):
        super().__init__("chip")
        self.pins = os.path.join(self.dir, "pins")

    def start_with(self, protocol, flash_size, image):
        """The chip with an old application in its flash, following its pins."""
        os.makedirs(self.state, exist_ok=True)
        with open(os.path.join(self.state, self.name + ".bin"), "wb") as f:
            f.write(image + b"\xff" * (flash_size - len(image)))
        self.start(protocol, ["--pins", self.pins])
        return self.wait_state(lambda st: st["state"] == "running", "the application at power-on")

    def set_pins(self, reset, boot, want):
        """Drive the pins as the shim does (one datagram), wait for the state the chip must reach."""
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        s.sendto(b"RESET=%d BOOT=%d\n" % (reset, boot), self.pins)
        s.close()
        return self.wait_state(lambda st: st["state"] == want and st["reset_pin"] == reset
                               and st["boot_pin"] == boot, "%s after RESET=%d BOOT=%d" % (want, reset, boot))

    def lpc21isp(self, args, timeout):
        check(SHIM and os.path.exists(SHIM), "CANFLEET_SERIAL_SHIM=%r: the shim is not built" % SHIM)
        env = dict(os.environ, LD_PRELOAD=SHIM, CANFLEET_SHIM_TTYS="%s=%s" % (self.pty, self.pins))
        try:
            r = subprocess.run(["lpc21isp"] + args, capture_output=True, text=True, timeout=timeout, env=env)
            return r.returncode, r.stdout
        except subprocess.TimeoutExpired as e:
            return None, (e.stdout or b"").decode(errors="replace")


def test_adi_follows_its_pins(fx):
    """The chip model alone, its pins driven over the socket: reset holds it silent, BOOT low at the
    rising edge enters the loader (BS answered with the ID packet), BOOT high runs the application."""
    image = fake_firmware(IMAGE_SIZE, 31)
    fx.start_with("adi-uart", ADI_FLASH, image)
    line = Line(fx.pty)
    try:
        line.write(b"\x08")
        check(line.silent(0.3), "a running application must not answer BS")
        fx.set_pins(0, 0, "reset")
        line.write(b"\x08")
        check(line.silent(0.3), "a chip held in reset must not answer")
        fx.set_pins(1, 0, "loader")
        line.write(b"\x08")
        ident = line.read_exact(24)
        check(ident.startswith(b"ADuCM360"), "ID packet after reset with BOOT low: %r" % ident)
        fx.set_pins(1, 1, "loader")  # the boot pin is sampled at reset only
        fx.set_pins(0, 1, "reset")
        st = fx.set_pins(1, 1, "running")
        check(st["app_valid"] and st["app_entry"] == 0xC1, "the application from its reset vector: %s" % st)
        line.write(b"\x08")
        check(line.silent(0.3), "the application must not answer BS")
        check(fx.flash()[:IMAGE_SIZE] == image, "nothing was written")
    finally:
        line.close()


def test_lpc21isp_control_wrong_wiring(fx):
    """-control -controlswap drives reset on RTS and the boot pin on DTR: on this board (lpc21isp -control's
    wiring) that holds RESET low, then releases it with the boot pin high: the application again, the
    loader never answers '?'. lpc21isp would retry (a reset each time) for ~50 s: it is stopped after 4."""
    old = lpc_vector_fix(fake_firmware(IMAGE_SIZE, 32))
    fx.start_with("lpc-isp", LPC_FLASH, old)
    new = fx.file("new.bin", fake_firmware(IMAGE_SIZE, 33))
    rc, out = fx.lpc21isp(["-control", "-controlswap", "-bin", new, fx.pty, "115200", "12000"], timeout=4)
    check(rc != 0 and "Synchronizing" in out, "lpc21isp -controlswap should not sync: %s %s" % (rc, out[-300:]))
    st = fx.chip_state()
    # lpc21isp resets the chip again for each try: it is in reset or its application, never the loader
    check(st["state"] in ("running", "reset") and st["bytes_out"] == 0 and st["flash_ops"] == 0
          and st["boots"] >= 2, "the swapped lines must reset the chip into its application only: %s" % st)
    check(fx.flash()[:IMAGE_SIZE] == old, "the flash changed")
    check(not any("boot pin low" in ln and "RESET released" in ln for ln in fx.sim.lines if ln),
          "the chip saw RESET rise with the boot pin low")


def test_lpc21isp_control_flashes(fx):
    """The chip runs an old application; only lpc21isp's DTR/RTS sequence gets it into ISP."""
    old = lpc_vector_fix(fake_firmware(IMAGE_SIZE, 34))
    before = fx.start_with("lpc-isp", LPC_FLASH, old)
    image = fake_firmware(IMAGE_SIZE, 35)
    path = fx.file("app.bin", image)
    t0 = time.monotonic()
    rc, out = fx.lpc21isp(["-control", "-bin", "-verify", path, fx.pty, "115200", "12000"], timeout=60)
    check(rc == 0 and "Download Finished and Verified correct" in out, "lpc21isp -control: %s %s" % (rc, out[-800:]))
    print("   lpc21isp -control, %d KB: %.2f s (its own pauses: 200 ms in reset, 500 ms after)"
          % (IMAGE_SIZE // 1024, time.monotonic() - t0), flush=True)
    expected = lpc_vector_fix(image)
    check(fx.flash()[:IMAGE_SIZE] == expected, "the flash is not the image lpc21isp wrote")
    fx.sim.wait_log(r"RESET released with the boot pin low")
    # lpc21isp ends with G and its RUN_MODE reset (DTR pulsed, RTS clear): the new application runs
    fx.sim.wait_log(r"RESET released, boot pin high")
    st = fx.wait_state(lambda s: s["state"] == "running" and s["reset_pin"] == 1 and s["boot_pin"] == 1,
                       "the new application running")
    check(st["app_valid"] and st["boots"] >= before["boots"] + 2, "resets through the pins: %s" % st)


if __name__ == "__main__":
    run_tests([test_adi_follows_its_pins, test_lpc21isp_control_wrong_wiring, test_lpc21isp_control_flashes],
              PinsFixture)
