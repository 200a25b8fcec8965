#!/usr/bin/python3
# Integration: canfleetd runs the same full image check as `canfleetctl image inspect` before anything
# else (a CRC recomputed over tampered bytes proves nothing), and "already runs this image" means the
# same bytes, not the same version.
import os
import struct
import sys

import harness
from harness import check

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "nodesim"))
from nodesim_harness import crc32_stm32  # noqa: E402

AREA = 0x40000
TRAILER = 0x3FFC0
CRC_AT = 0x3FFFC
SHA_AT = TRAILER + 28
LEN_AT = TRAILER + 16
# area B in a simulated node's flash file: a header page (firmware/host/sim-flash.h), then the flash
# from 0x08000000, B at 0x08020000 (docs/design.md §2); the header says its own size at offset 8
B_IN_FLASH = 0x20000
INVALID = "io.canfleet.Gateway1.Error.InvalidImage"


def read(path):
    with open(path, "rb") as f:
        return bytearray(f.read())


def reseal(area):
    """What an attacker or a broken tool does: fix the CRC up over whatever the bytes are now."""
    struct.pack_into("<I", area, CRC_AT, crc32_stm32(bytes(area[:CRC_AT])))
    return area


def write(f, name, area):
    p = os.path.join(f.dir, name)
    with open(p, "wb") as out:
        out.write(bytes(area))
    os.chmod(p, 0o644)
    return p


def node_b(f, bus, sa):
    """Area B of a simulated node, from its flash file (the simulator must be stopped)."""
    path = os.path.join(f.sim_state, f"{bus}-{sa}.flash")
    check(os.path.exists(path), f"no flash file of {bus}:{sa} in {os.listdir(f.sim_state)}")
    with open(path, "rb") as fl:
        header = struct.unpack_from("<I", fl.read(12), 8)[0]
        fl.seek(header + B_IN_FLASH)
        return fl.read(AREA)


def image_checks(f):
    img1 = f.start_fleet(["bus0"], 2)
    img2 = f.pack("2.0.0", release=2, seed=2)
    v1, v2 = read(img1), read(img2)
    plen = struct.unpack_from("<I", v2, LEN_AT)[0]

    bad_sha = bytearray(v2)
    bad_sha[SHA_AT] ^= 0x01
    bad_sha = write(f, "bad-sha.img", reseal(bad_sha))

    bad_pad = bytearray(v2)
    bad_pad[plen + 100] = 0x00
    bad_pad = write(f, "bad-pad.img", reseal(bad_pad))

    # v2's code under v1's trailer (v1's version, release and payload SHA-256), CRC recomputed
    disguised = bytearray(v2)
    disguised[TRAILER:CRC_AT] = v1[TRAILER:CRC_AT]
    disguised = write(f, "v2-as-v1.img", reseal(disguised))

    for path, word in ((bad_sha, "sha-256"), (bad_pad, "0xff"), (disguised, "sha-256")):
        r = f.ctl("image", "inspect", path, bus=False)
        check(r.rc == 1, f"image inspect {os.path.basename(path)} must say invalid (exit 1): {r}")
        for force in ((), ("--force",)):
            r = f.ctl("update", path, "--node", "bus0:1", *force)
            check(r.rc == 5, f"update with {os.path.basename(path)} {force} must be refused (exit 5): {r}")
            check("valid" in r.err.lower() and word in r.err.lower(),
                  f"the refusal of {os.path.basename(path)} must say why ({word}): {r.err!r}")
    check(f.jobs() == [], f"a refused image made a job: {f.jobs()}")

    # new code correctly packed under the running version: a different image, so it is flashed
    # (not "already runs 1.0.0"), and the node then runs exactly these bytes
    same_version = f.pack("1.0.0", release=1, seed=3, name="app-1.0.0-other-code")
    r = f.ctl("update", same_version, "--node", "bus0:2")
    check(r.rc == 0, f"update with other code under the same version: {r}")
    harness.assert_versions(f, {"bus0:1": "1.0.0", "bus0:2": "1.0.0"}, via_daemon=False)
    check(node_b(f, "bus0", 1) == bytes(v1), "bus0:1 must still hold the v1 image byte for byte")
    check(node_b(f, "bus0", 2) == bytes(read(same_version)),
          "bus0:2 must hold the new image byte for byte (it was reported up to date without being flashed)")


if __name__ == "__main__":
    # plain images and "allow_unsigned": true: the full image check of unsigned images stays tested
    sys.exit(harness.main(image_checks, signed=False))
