#!/usr/bin/python3
# Integration: loader entry through the pins (docs/design.md §8). canfleetd runs with tests/serial-shim
# preloaded, which stands in for a serial port's modem lines and for a GPIO chip (this kernel has
# neither for a pty, nor gpio-sim): an LPC1768 wired for "isp_entry": "dtr-rts" and an ADuCM360 on two
# lines of a (fake) gpiochip both run an old application, so that nothing but their RESET and boot pins
# can bring them into their loaders (no SIGUSR1, no --reset-on-open). One `canfleetctl update LPC ADI
# --all` updates both; each chip runs its new application afterwards. A gpiochip that does not exist
# and lines it does not have fail the job at once, naming the configuration key, nothing flashed.
import os
import struct
import sys

import harness
import serial_fixture as sf
from harness import check

SIZE = 16 * 1024
SHIM = os.environ.get("CANFLEET_SERIAL_SHIM", "")


def lpc_fixed(image):
    """What an LPC's flash holds: word 7 the vector checksum (the seven words before it sum to -word 7)."""
    w = struct.unpack_from("<7I", image, 0)
    return image[:28] + struct.pack("<I", -sum(w) & 0xFFFFFFFF) + image[32:]


def factory(f, name, size, app):
    """The chip's flash file before its simulator starts: an old application, nothing else."""
    data = bytearray(b"\xff" * size)
    data[:len(app)] = app
    with open(os.path.join(sf.state_dir(f), name + ".bin"), "wb") as fh:
        fh.write(data)


def gpiochip(f, name, lines, reset, boot, pins):
    path = os.path.join(f.dir, name)
    with open(path, "w") as fh:
        fh.write(f"canfleet-shim-gpiochip\nlines {lines}\nreset {reset}\nboot {boot}\npins {pins}\n")
    return path


def serial_entry(f):
    check(SHIM and os.path.exists(SHIM), f"CANFLEET_SERIAL_SHIM={SHIM!r}: the shim is not built")
    f.start_bus()
    pins = {n: os.path.join(f.dir, n + ".pins") for n in ("lpc0", "adi0", "adi8", "adi9")}
    old_lpc = lpc_fixed(sf.lpc_app(SIZE, seed=21))
    old_adi = sf.adi_app(SIZE, seed=22)
    factory(f, "lpc0", 512 * 1024, old_lpc)
    for n in ("adi0", "adi8", "adi9"):
        factory(f, n, 128 * 1024, old_adi)
    sims = {n: sf.start_chip(f, n, "lpc-isp" if n.startswith("lpc") else "adi-uart", ["--pins", pins[n]])
            for n in pins}
    for n in pins:
        st = sf.chip_state(f, n)
        check(st["state"] == "running", f"{n} should run its old application at power-on: {st}")

    chip = gpiochip(f, "gpiochip0", 8, 3, 5, pins["adi0"])
    good = [sf.serial_bus(f, "lpc0", "lpc-isp", isp_entry="dtr-rts"),
            sf.serial_bus(f, "adi0", "adi-uart", isp_entry={"gpiochip": chip, "reset": 3, "boot": 5})]
    sf.write_config(f, [], 0, good)
    # the modem lines of lpc0's pty (the shim resolves the symlink); the gpiochip files name their sockets
    shim_env = {"LD_PRELOAD": SHIM, "CANFLEET_SHIM_TTYS": f"{f.pty('lpc0')}={pins['lpc0']}"}
    f.start_daemon(env=shim_env)

    # the start-up probe pulses the pins of the chips it can reset: identity read, application again
    harness.wait_until("lpc0 and adi0 identified", lambda: all(
        f.nodes()[k]["identity"] for k in ("lpc0:1", "adi0:1")), 30)
    for n in ("lpc0", "adi0"):
        harness.wait_until(f"{n} back in its application after the probe",
                           lambda: sf.chip_state(f, n)["state"] == "running", 10)
    check(f.nodes()["lpc0:1"]["identity"].startswith("LPC1768 0x26013F37"), f"{f.nodes()['lpc0:1']}")
    check(f.nodes()["adi0:1"]["identity"].startswith("ADuCM360"), f"{f.nodes()['adi0:1']}")

    # 1. both chips in one update --all, one bundle each
    lpc, lpc_raw = sf.serial_bundle(f, "lpc-isp", "2.0.0", 3, sf.lpc_app(SIZE, seed=23))
    adi, adi_raw = sf.serial_bundle(f, "adi-uart", "2.0.0", 3, sf.adi_app(SIZE, seed=24))
    boots = {n: sf.chip_state(f, n)["boots"] for n in ("lpc0", "adi0")}
    r = f.ctl("update", lpc, adi, "--all")
    check(r.rc == 0, f"update LPC ADI --all: {r}")
    for n, raw in (("lpc0", lpc_raw), ("adi0", adi_raw)):
        st = sf.chip_state(f, n)
        check(st["state"] == "running" and st["app_valid"], f"{n} does not run its new application: {st}")
        check(sf.flash(f, n)[:len(raw)] == raw, f"{n}'s flash is not the image")
        # entry into the loader and the start of the application: two resets through the pins
        check(st["boots"] >= boots[n] + 2, f"{n} was not reset through its pins: {st}")
        log = sims[n].output()
        check("RESET released with the boot pin low" in log and "RESET released, boot pin high" in log,
              f"{n}'s simulator never saw the pins' sequence:\n{log[-2000:]}")
    nodes = f.nodes()
    check(nodes["lpc0:1"]["version"] == "2.0.0" and nodes["adi0:1"]["version"] == "2.0.0", f"{nodes}")

    # 2. the wiring faults, with canfleetd started again on a configuration that has them: the job fails
    #    at once (no retries for node_lost_timeout_s), naming the key; the chip untouched
    chip8 = gpiochip(f, "gpiochip8", 4, 2, 3, pins["adi8"])  # 4 lines: line 6 cannot be requested
    f.daemon.stop()
    sf.write_config(f, [], 0, good + [
        sf.serial_bus(f, "adi8", "adi-uart", isp_entry={"gpiochip": chip8, "reset": 6, "boot": 3}),
        sf.serial_bus(f, "adi9", "adi-uart",
                      isp_entry={"gpiochip": os.path.join(f.dir, "gpiochip9"), "reset": 1, "boot": 2})])
    f.start_daemon(env=shim_env)
    adi_bad, _ = sf.serial_bundle(f, "adi-uart", "1.9.0", 2, sf.adi_app(SIZE, seed=29), name="adi-bad")
    for node, want in (("adi9:1", "isp_entry.gpiochip: cannot open %s: No such file or directory"
                        % os.path.join(f.dir, "gpiochip9")),
                       ("adi8:1", "isp_entry.reset/boot: lines 6 and 3 of %s cannot be requested: "
                        "Invalid argument" % chip8)):
        bus = node.split(":")[0]
        before = sf.chip_state(f, bus)
        r = f.ctl("update", adi_bad, "--node", node, timeout=30)
        check(r.rc == 1, f"update {node} with a broken isp_entry: {r}")
        err = f.jobs()[-1]["nodes"][0]["error"] or ""
        check(want in err and "loader entry failed (nothing flashed)" in err, f"{node}'s error: {err!r}")
        st = sf.chip_state(f, bus)
        check(st["flash_ops"] == 0 and st["state"] == "running" and st["boots"] == before["boots"],
              f"{bus} was touched: {st}")
        check(sf.flash(f, bus)[:SIZE] == old_adi, f"{bus}'s flash changed")
    # the good two, probed again through their pins after the restart, run what the update left
    harness.wait_until("lpc0 and adi0 identified again", lambda: all(
        f.nodes()[k]["identity"] for k in ("lpc0:1", "adi0:1")), 30)
    for n, raw in (("lpc0", lpc_raw), ("adi0", adi_raw)):
        harness.wait_until(f"{n} in its application", lambda: sf.chip_state(f, n)["state"] == "running", 10)
        check(sf.flash(f, n)[:len(raw)] == raw, f"{n}'s flash after the restart")

if __name__ == "__main__":
    sys.exit(harness.main(serial_entry))
