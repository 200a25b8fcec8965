#!/usr/bin/python3
# Integration: signed bundles flashed end to end — the stock openssl cms recipe, pipes, a file changed after
# the call, anti-rollback refused up front naming the node, and plain images with "allow_unsigned".
import hashlib
import json
import os
import select
import subprocess
import sys
import time

import dbus_wire
import harness
from harness import check

BUSES = ["bus0"]
DEST, MANAGER, IFACE = "io.canfleet.Gateway1", "/io/canfleet/Gateway1", "io.canfleet.Gateway1.Manager"


def openssl_bundle(f, img, out):
    """A bundle made with the stock tools only (README, docs/design.md §6): manifest JSON, openssl cms, cat."""
    with open(img, "rb") as fh:
        image = fh.read()
    # the trailer's fields, as canfleetctl image inspect reads them
    r = f.ctl("image", "inspect", "--json", img, bus=False)
    check(r.rc == 0, f"image inspect: {r}")
    info = r.json()
    major, minor, patch = (int(x) for x in info["version"].split("."))
    manifest = {"format": "canfleet-bundle-1", "hw_id": int(str(info["hw_id"]), 0), "version": info["version"],
                "release": info["release"], "image_size": len(image),
                "image_sha256": hashlib.sha256(image).hexdigest(), "description": "made with openssl cms"}
    mpath, cms = out + ".manifest.json", out + ".cms"
    with open(mpath, "w") as fh:
        json.dump(manifest, fh)
    ca = f.trust()
    p = subprocess.run(["openssl", "cms", "-sign", "-binary", "-nodetach", "-outform", "DER", "-in", mpath,
                        "-signer", ca["cert"], "-inkey", ca["key"], "-out", cms], capture_output=True)
    check(p.returncode == 0, f"openssl cms -sign: {p.stderr.decode(errors='replace')}")
    with open(cms, "rb") as fh:
        der = fh.read()
    with open(out, "wb") as fh:
        fh.write(image + der + len(der).to_bytes(8, "big"))
    os.chmod(out, 0o644)
    return out


def start_update_call(conn, fd, nodes):
    """Send StartUpdate without waiting; returns the call's serial."""
    fields = [(1, ("o", MANAGER)), (3, ("s", "StartUpdate")), (6, ("s", DEST)), (2, ("s", IFACE))]
    return conn.send(1, fields, "hasa{sv}", [0, nodes, {}], fds=[fd])


def reply_to(conn, serial, timeout=30):
    deadline = time.monotonic() + harness.scaled(timeout)
    while True:
        m = conn.recv(deadline)
        if m.kind in (2, 3) and m.fields.get(5) == serial:
            return m


def job_path(reply, what):
    check(not reply.error, f"{what}: refused: {reply.error} {reply.message}")
    return reply.values[0]


def wait_job_done(f, path):
    jid = int(path.rsplit("/", 1)[1])
    j = harness.wait_until(f"job {jid} to end", lambda: (lambda x: x if x["state"] != "running" else None)(
        f.job(jid)), 60)
    check(j["state"] == "done", f"job {jid} ended {j['state']}: {j}")
    return j


def bundle_update(f):
    f.start_bus()
    img1 = f.pack("1.0.0", release=1)
    f.start_sim(BUSES, 3, install=img1)
    f.write_config(BUSES, 3)
    f.start_daemon()
    v2 = f.pack("2.0.0", release=2, seed=2)
    v3 = openssl_bundle(f, f.image(f.pack("3.0.0", release=3, seed=3)), os.path.join(f.dir, "v3-openssl.cfb"))

    # 1. the stock openssl cms recipe, flashed end to end
    r = f.ctl("update", v3, "--node", "bus0:1")
    check(r.rc == 0, f"the openssl-made bundle: {r}")

    # 2. anti-rollback up front: bus0:1 runs release 3 now; the whole update is refused, naming it, and
    #    bus0:2 (which could take release 2) is not touched either
    r = f.ctl("scan", "bus0")
    check(r.rc == 0, f"scan: {r}")
    jobs_before = len(f.jobs())
    conn = dbus_wire.Conn(f.bus_address)
    fd = os.open(v2, os.O_RDONLY)
    reply = conn.call(DEST, MANAGER, IFACE, "StartUpdate", "hasa{sv}", [0, ["bus0:1", "bus0:2"], {}], fds=[fd])
    os.close(fd)
    check(reply.error == "io.canfleet.Gateway1.Error.Rollback", f"rollback: {reply.error} {reply.message}")
    check("bus0:1 runs release 3, the bundle has release 2" in reply.message, f"rollback message: {reply.message}")
    check("bus0:2" not in reply.message, f"bus0:2 runs release 1 and was named: {reply.message}")
    r = f.ctl("update", v2, "--all")
    check(r.rc == 5 and "bus0:1 runs release 3" in r.err, f"update --all with an older bundle: {r}")
    check(len(f.jobs()) == jobs_before, "a job was made for a refused rollback")

    # 3. a pipe: read without blocking the daemon. Half the bundle first, the writer still open: the
    #    daemon answers other callers meanwhile; the rest, then EOF: the job runs.
    with open(v2, "rb") as fh:
        data = fh.read()
    rfd, wfd = os.pipe()
    os.write(wfd, data[:4096])
    serial = start_update_call(conn, rfd, ["bus0:2"])
    os.close(rfd)  # the daemon has its own
    r = f.ctl("status")
    check(r.rc == 0, f"canfleetd did not answer while a pipe was being read: {r}")
    view = memoryview(data)[4096:]
    while view:
        select.select([], [wfd], [], 10)
        n = os.write(wfd, view[:65536])
        view = view[n:]
    os.close(wfd)
    path = job_path(reply_to(conn, serial), "the bundle through a pipe")
    wait_job_done(f, path)

    # 4. the caller's file is read once: changed after the call (same inode, other bytes), the job still
    #    flashes what was handed over
    victim = os.path.join(f.dir, "swap.cfb")
    with open(victim, "wb") as fh:
        fh.write(data)
    fd = os.open(victim, os.O_RDONLY)
    reply = conn.call(DEST, MANAGER, IFACE, "StartUpdate", "hasa{sv}", [0, ["bus0:3"], {}], fds=[fd])
    with open(victim, "r+b") as fh:
        with open(v3, "rb") as src:
            fh.write(src.read())
        fh.truncate()
    os.close(fd)
    j = wait_job_done(f, job_path(reply, "the file swapped after the call"))
    check(j["image"]["version"] == "2.0.0", f"the job flashed {j['image']}, not what was handed over: {j}")
    conn.close()
    f.daemon.stop()
    harness.assert_versions(f, {"bus0:1": "3.0.0", "bus0:2": "2.0.0", "bus0:3": "2.0.0"}, via_daemon=False)

    # 5. "allow_unsigned": true (no keyring): a plain image is flashed; a bundle then cannot be verified
    #    and is refused naming the key
    f.sims.clear()
    f.start_sim(BUSES, 3)
    f.signed = False
    f.write_config(BUSES, 3)
    check(subprocess.run([harness.BINARIES["canfleetd"], "--check", "--config", f.config_path],
                         capture_output=True).returncode == 0, "--check refuses allow_unsigned without keyring")
    f.start_daemon()
    plain = f.pack("4.0.0", release=4, seed=4)
    r = f.ctl("update", plain, "--node", "bus0:2")
    check(r.rc == 0, f"a plain image with allow_unsigned: {r}")
    r = f.ctl("update", v3, "--node", "bus0:3")
    check(r.rc == 5 and '"keyring"' in r.err, f"a bundle without a keyring: {r}")
    harness.assert_versions(f, {"bus0:2": "4.0.0", "bus0:3": "2.0.0"}, via_daemon=False)


if __name__ == "__main__":
    sys.exit(harness.main(bundle_update))
