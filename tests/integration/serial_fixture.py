#!/usr/bin/python3
# Serial nodes for the integration tests (docs/design.md §8): a simulated LPC1768 or ADuCM360 on a pty
# (canfleet-nodesim --bus serial:PATH), its raw image and bundle, and its bus in canfleetd.conf.
import json
import os
import random

import harness
from harness import check


def lpc_app(size, seed=1):
    """An LPC17xx application: SP at the top of the 32 KB local RAM, thumb vectors in flash, then bytes
    from a fixed seed (no long 0xFF runs: every byte really goes over the line). Word 7 is left for
    canfleetctl image pack --target lpc-isp."""
    rnd = random.Random(seed)
    out = bytearray((0x10008000).to_bytes(4, "little"))
    for _ in range(7):
        out += (0x00000101 + 2 * rnd.randrange(0x1000)).to_bytes(4, "little")
    while len(out) < size:
        out.append(rnd.randrange(0xFF))
    return bytes(out[:size])


def adi_app(size, seed=1):
    """An ADuCM360 application: SP in its 8 KB of SRAM, a reset vector in flash, seeded bytes."""
    rnd = random.Random(seed)
    out = bytearray((0x20002000).to_bytes(4, "little") + (0x00000081).to_bytes(4, "little"))
    while len(out) < size:
        out.append(rnd.randrange(0xFF))
    return bytes(out[:size])


def state_dir(f):
    d = os.path.join(f.dir, "serial")
    os.makedirs(d, exist_ok=True)
    return d


def start_chip(f, name, protocol, extra=(), timeout=20):
    """canfleet-nodesim simulating one chip; f.dir/name becomes the pty's symlink."""
    argv = [harness.BINARIES["nodesim"], "--bus", f"serial:{f.pty(name)}", "--protocol", protocol,
            "--state", state_dir(f)]
    rfd, wfd = os.pipe()
    argv += ["--ready-fd", str(wfd)] + list(extra)
    try:
        p = harness.Proc(f, f"nodesim-{name}", argv, pass_fds=(wfd,))
    finally:
        os.close(wfd)
    try:
        line = harness.read_line(rfd, harness.scaled(timeout), f"{name} ready", p)
    finally:
        os.close(rfd)
    check(line.strip() == "ready", f"nodesim {name} said {line!r} instead of ready")
    return p


def flash(f, name):
    """The simulated chip's flash, as its file holds it."""
    with open(os.path.join(state_dir(f), name + ".bin"), "rb") as fh:
        return fh.read()


def chip_state(f, name):
    with open(os.path.join(state_dir(f), name + ".json")) as fh:
        return json.load(fh)


def serial_bundle(f, protocol, version, release, app, part=None, name=None):
    """canfleetctl image pack --target, then bundle create --target; returns (bundle, raw image bytes)."""
    name = name or f"{protocol}-{version}"
    src = os.path.join(f.dir, name + ".src.bin")
    raw = os.path.join(f.dir, name + ".bin")
    with open(src, "wb") as fh:
        fh.write(app)
    part = part or ("LPC1768" if protocol == "lpc-isp" else "ADuCM360")
    r = f.ctl("image", "pack", src, "--target", protocol, "--part", part, "-o", raw, bus=False)
    check(r.rc == 0, f"image pack --target {protocol}: {r}")
    ca = f.trust()
    out = os.path.join(f.dir, name + ".cfb")
    r = f.ctl("bundle", "create", raw, "--target", protocol, "--part", part, "--version", version, "--release",
              str(release), "--cert", ca["cert"], "--key", ca["key"], "-o", out, bus=False)
    check(r.rc == 0, f"bundle create --target {protocol}: {r}")
    os.chmod(out, 0o644)
    with open(raw, "rb") as fh:
        return out, fh.read()


def serial_bus(f, name, protocol, **keys):
    b = {"name": name, "transport": f"serial:{f.pty(name)}@115200", "protocol": protocol}
    b.update(keys)
    return b


def write_config(f, can_buses, can_nodes, serial_buses, **top):
    """write_config() with serial buses (serial_bus() entries) added after the CAN ones."""
    conf = f.write_config(can_buses, can_nodes, **top) if can_buses else None
    if conf is None:
        conf = f.write_config(["unused"], 1, **top)
        conf["buses"] = []
    conf["buses"] += serial_buses
    with open(f.config_path, "w") as fh:
        json.dump(conf, fh, indent=2)
    return conf


def wait_job_end(f, jid, timeout=120):
    return harness.wait_until(f"job {jid} to end",
                              lambda: (lambda x: x if x["state"] != "running" else None)(f.job(jid)), timeout)
