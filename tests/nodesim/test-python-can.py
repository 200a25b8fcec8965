#!/usr/bin/python3
"""End to end with an SLCAN host that is not ours (python-can 4.1): update node 1 from v1 to v2 over CCP."""
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nodesim_harness import (AREA, CRC_OFF, EXCHANGE_ID, GET_SEED, RES_PGM, UNLOCK, Ccp, check, crc32_stm32,
                             main, node_secret, open_bus, pack_image, pack_with_canfleetctl, show)


def test_update_v1_to_v2(fx):
    image = fx.v2
    tool = os.environ.get("CANFLEETCTL")
    if tool:  # the operator's packer when it is built: it must agree with image.h to the byte
        image = pack_with_canfleetctl(tool, fx.v2, fx.dir)
        check(image == fx.v2, "canfleetctl image pack differs from the layout in canfleet/image.h")
    sim = fx.start(nodes=2)
    bus = open_bus(fx.pty)
    try:
        n1 = Ccp(bus, 1)
        n1.connect()

        devid = n1.device_id()
        uid, hw_id, boot_version = devid[:12], *struct.unpack("<HH", devid[12:16])
        check(hw_id == 0x0001, "hw id 0x%04X" % hw_id)
        check(boot_version == 0x0100, "bootloader version 0x%04X" % boot_version)
        check(uid.hex() == show(fx.state)["ttyCF0-1"]["uid"], "device ID uid differs from the flash file's")
        check(n1.version() == (1, 0, 0), "running %s, expected v1" % (n1.version(),))
        boots_before = struct.unpack("<I", n1.status()[60:64])[0]

        # seed & key computed here from the fleet key, not with our C code
        d = n1.cmd(GET_SEED, bytes([RES_PGM]))
        check(d[0] == 1, "PGM should be protected")
        key = __import__("nodesim_harness").ccp_key(node_secret(fx.fleet_key, uid), d[1:5])
        d = n1.cmd(UNLOCK, key)
        check(d[0] & RES_PGM, "PGM not unlocked")

        n1.clear_c()
        n1.program_image(image)
        want = crc32_stm32(image[:CRC_OFF])
        got = n1.checksum(0, CRC_OFF)
        check(got == want, "BUILD_CHKSUM 0x%08X, image CRC 0x%08X" % (got, want))
        check(n1.checksum(0, AREA) == 0, "CRC over the image with its CRC word should leave residue 0")

        r = n1.disconnect(end=True)
        check(r is not None and r[0] == 0, "DISCONNECT(end) with a valid C: %r" % (r,))

        n1.connect_retry()
        check(n1.version() == (2, 0, 0), "after the update running %s" % (n1.version(),))
        st = n1.status()
        check(st[65] == 1, "last_update %d, expected installed" % st[65])
        check(struct.unpack("<I", st[60:64])[0] > boots_before, "boot count did not advance")

        n2 = Ccp(bus, 2)
        n2.connect()
        check(n2.version() == (1, 0, 0), "node 2 should be untouched")
        n1.cmd(EXCHANGE_ID)  # still talking after all that
    finally:
        bus.shutdown()
    check(sim.stop() == 0, "SIGTERM: exit status")
    check(not os.path.lexists(fx.pty), "pty symlink left behind")
    nodes = show(fx.state)
    check(nodes["ttyCF0-1"]["B"]["version"] == "2.0.0", "--show B of node 1: %s" % nodes["ttyCF0-1"])
    check(nodes["ttyCF0-1"]["C"]["state"] == "erased", "--show C of node 1: %s" % nodes["ttyCF0-1"])
    check(nodes["ttyCF0-2"]["B"]["version"] == "1.0.0", "--show B of node 2: %s" % nodes["ttyCF0-2"])


def wait_trial(node, want, timeout=10.0):
    """Status byte 78 (trial) until it is want; the last status block."""
    import time
    end = time.monotonic() + timeout
    while True:
        st = node.status()
        if st[78] == want or time.monotonic() > end:
            return st
        time.sleep(0.05)


def update(node, image, fleet_key):
    node.unlock(fleet_key=fleet_key)
    node.clear_c()
    node.program_image(image)
    check(node.checksum(0, CRC_OFF) == crc32_stm32(image[:CRC_OFF]), "BUILD_CHKSUM of the staged image")
    r = node.disconnect(end=True)
    check(r is not None and r[0] == 0, "DISCONNECT(end) with a valid image: %r" % (r,))
    node.connect_retry()


def test_dual_bank_two_updates(fx):
    """A dual-bank node (docs/design.md §9) updated twice by python-can: each update goes to the bank
    the node does not run from (the seed's second update wrote the wrong one), boots on trial and is
    confirmed by the application."""
    v2_bank2 = pack_image((2, 0, 0), 2, seed=2, bank=2)
    v3_bank1 = pack_image((3, 0, 0), 3, seed=3, bank=1)
    sim = fx.start(nodes=1, extra=["--layout", "f7-dual-bank"])
    bus = open_bus(fx.pty)
    try:
        n1 = Ccp(bus, 1)
        n1.connect()
        st = n1.status()
        check(st[77] == 1 and st[78] == 0, "factory state: bank %d trial %d" % (st[77], st[78]))
        check(n1.version() == (1, 0, 0), "running %s" % (n1.version(),))

        # staging extension 3 is bank 2's application area: an image linked for bank 1 is refused
        n1.unlock(fleet_key=fx.fleet_key)
        n1.clear_c()
        n1.program_image(fx.v2)
        r = n1.disconnect(end=True)
        check(r is not None and r[0] == 0x33, "an image linked for the running bank: %r" % (r,))
        n1.connect()  # a new session: locked again

        update(n1, v2_bank2, fx.fleet_key)
        check(n1.version() == (2, 0, 0), "after the first update running %s" % (n1.version(),))
        st = wait_trial(n1, 2)
        check(st[77] == 2, "running bank %d, expected 2" % st[77])
        check(st[78] == 2, "trial state %d, expected confirmed (2)" % st[78])
        check(st[65] == 5, "last_update %d, expected swapped (5)" % st[65])

        update(n1, v3_bank1, fx.fleet_key)
        check(n1.version() == (3, 0, 0), "after the second update running %s" % (n1.version(),))
        st = wait_trial(n1, 2)
        check(st[77] == 1 and st[78] == 2, "second update: bank %d trial %d" % (st[77], st[78]))
    finally:
        bus.shutdown()
    check(sim.stop() == 0, "SIGTERM: exit status")
    node = show(fx.state)["ttyCF0-1"]
    check(node["boot_bank"] == 1 and node["bank1"]["version"] == "3.0.0" and node["bank2"]["version"] == "2.0.0",
          "--show: %s" % node)


if __name__ == "__main__":
    main([test_update_v1_to_v2, test_dual_bank_two_updates])
