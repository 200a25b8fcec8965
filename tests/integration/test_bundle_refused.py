#!/usr/bin/python3
# Integration: canfleetd refuses what a trusted key did not sign — before a single CAN frame.
"""
A bundle signed by a key the keyring does not hold, a bundle whose image was changed after signing, one
whose manifest was changed, a truncated one, and a plain image without "allow_unsigned": each is refused
by StartUpdate with its own D-Bus error and a message saying which check failed, no job is made, and the
simulator's frame log (--log-frames, unbuffered stderr) shows that no frame went to any node. The dry run
(canfleetctl update --dry-run, PlanUpdate) says the same refusal with exit 5, also without a job or a frame.
"""
import os
import re
import sys

import dbus_wire
import harness
from harness import check

BUSES = ["bus0"]
NOT_TRUSTED = "io.canfleet.Gateway1.Error.NotTrusted"
INVALID = "io.canfleet.Gateway1.Error.InvalidImage"
FRAME = re.compile(r"\b([0-9A-F]{3}) \[(\d)\]")


def frames(sim):
    return sum(1 for line in sim.output().splitlines() if FRAME.search(line))


def write(f, name, data):
    path = os.path.join(f.dir, name)
    with open(path, "wb") as out:
        out.write(data)
    os.chmod(path, 0o644)
    return path


def bundle_refused(f):
    f.start_bus()
    img1 = f.pack("1.0.0", release=1)
    sim = f.start_sim(BUSES, 2, extra=["--log-frames"], install=img1)
    f.write_config(BUSES, 2)
    f.start_daemon()
    good = f.pack("2.0.0", release=2, seed=2)
    with open(good, "rb") as fh:
        cfb = bytearray(fh.read())
    other = harness.make_ca(f.dir, name="other", cn="a key nobody trusts")

    untrusted = f.bundle(f.image(good), cert=other["cert"], key=other["key"],
                         out=os.path.join(f.dir, "untrusted.cfb"))
    image_flipped = bytearray(cfb)
    image_flipped[100] ^= 0x01       # in the image: the signed manifest's sha256 no longer matches
    cms_len = int.from_bytes(cfb[-8:], "big")
    manifest_at = cfb.find(b'"release":', 262144, 262144 + cms_len)
    check(manifest_at > 0, "the manifest is not inline in the bundle's CMS")
    manifest_changed = bytearray(cfb)
    manifest_changed[manifest_at + len('"release": ')] ^= 0x01  # the signature no longer covers it

    cases = [
        # what, file, D-Bus error, words the message must hold
        ("a bundle signed by an untrusted key", untrusted, NOT_TRUSTED, ["trust", "keyring"]),
        ("a bundle whose image was changed", write(f, "image-flipped.cfb", image_flipped), NOT_TRUSTED,
         ["sha256"]),
        ("a bundle whose manifest was changed", write(f, "manifest-changed.cfb", manifest_changed), NOT_TRUSTED,
         ["signature"]),
        ("a truncated bundle", write(f, "truncated.cfb", cfb[:-100]), INVALID, ["size"]),
        ("a plain image", f.image(good), NOT_TRUSTED, ['"allow_unsigned": true', "unsigned image refused"]),
    ]
    # canfleetd's start-up probe talks to the nodes first: counted from after it
    harness.wait_probed(f)
    before = frames(sim)
    check(before > 0, "the start-up probe logged no frame: the frame log is not read right")
    conn = dbus_wire.Conn(f.bus_address)
    for what, path, error, words in cases:
        fd = os.open(path, os.O_RDONLY)
        try:
            reply = conn.call("io.canfleet.Gateway1", "/io/canfleet/Gateway1", "io.canfleet.Gateway1.Manager",
                              "StartUpdate", "hasa{sv}", [0, [], {"all": ("b", True)}], fds=[fd])
        finally:
            os.close(fd)
        check(reply.error == error, f"{what}: error {reply.error!r} ({reply.message!r}), expected {error}")
        # the operator's view: canfleetctl exits 5 (refused) and prints the daemon's message
        r = f.ctl("update", path, "--all")
        check(r.rc == 5, f"{what}: canfleetctl update should exit 5: {r}")
        for w in words:
            check(w in reply.message and w in r.err, f"{what}: the message does not say {w!r}: {r}")
        # the dry run asks canfleetd (PlanUpdate): the same refusal, in the same words, and nothing done
        d = f.ctl("update", path, "--all", "--dry-run")
        check(d.rc == 5 and "canfleetd would refuse this update: " in d.err, f"{what}: dry run: {d}")
        for w in words:
            check(w in d.err, f"{what}: the dry run does not say {w!r}: {d}")
        if error == NOT_TRUSTED:
            check("signature: not trusted: " in d.out, f"{what}: the dry run's signature line: {d}")
        j = f.ctl("update", path, "--node", "bus0:1", "--dry-run", "--json")
        check(j.rc == 5 and not j.json()["would_start"] and j.json()["refusal"] == reply.message and
              [(n["node"], n["result"]) for n in j.json()["nodes"]] == [("bus0:1", "refuse")],
              f"{what}: dry run --json: {j}")
        check(frames(sim) == before, f"{what}: frames were sent on the bus:\n{sim.output()[-2000:]}")
        check(f.daemon.alive(), f"canfleetd died after {what}")
    conn.close()
    check(f.jobs() == [], f"a refused update made a job: {f.jobs()}")
    log = f.daemon.output()
    check("update refused: bundle refused: trust:" in log, f"the journal does not show the refusal:\n{log}")

    # a dry run of the good bundle: canfleetd's keyring trusts it, the nodes would be updated, still no frame
    d = f.ctl("update", good, "--all", "--dry-run", "--json")
    check(d.rc == 0 and d.json()["would_start"] and d.json()["refusal"] is None and
          d.json()["signature"].startswith("bundle signed by ") and "trusted by the keyring" in d.json()["signature"]
          and [(n["node"], n["result"]) for n in d.json()["nodes"]] == [("bus0:1", "update"), ("bus0:2", "update")],
          f"dry run of the good bundle: {d}")
    check(f.jobs() == [] and frames(sim) == before, f"the dry run of the good bundle did something: {f.jobs()}")

    # the good bundle goes through: the frame log did work all along
    r = f.ctl("update", good, "--all")
    check(r.rc == 0, f"the good bundle: {r}")
    check(frames(sim) > before, "no frame logged for a real update: the frame log is not read right")
    harness.assert_versions(f, {n: "2.0.0" for n in harness.all_nodes(BUSES, 2)})


if __name__ == "__main__":
    sys.exit(harness.main(bundle_refused))
