#!/usr/bin/python3
# Integration: malformed D-Bus calls get D-Bus errors naming the problem, and canfleetd stays alive.
import os
import sys

import dbus_wire
import harness
from harness import check

DEST = "io.canfleet.Gateway1"
MANAGER = "/io/canfleet/Gateway1"
MANAGER_IFACE = "io.canfleet.Gateway1.Manager"


def malformed_calls(f):
    f.start_fleet(["bus0"], 2)
    img2 = f.pack("2.0.0", release=2, seed=2)
    junk = os.path.join(f.dir, "junk.img")
    with open(junk, "wb") as out:
        out.write(b"this is not an image\n" * 100)
    conn = dbus_wire.Conn(f.bus_address)

    def start_update(path, nodes, options, sig="hasa{sv}"):
        fd = os.open(path, os.O_RDONLY)
        try:
            return conn.call(DEST, MANAGER, MANAGER_IFACE, "StartUpdate", sig, [0, nodes, options], fds=[fd])
        finally:
            os.close(fd)

    def refused(what, reply, names=None, words=()):
        check(reply.error, f"{what}: accepted ({reply})")
        if names:
            check(reply.error in names, f"{what}: error {reply.error}, expected one of {names}")
        check(reply.message, f"{what}: the error has no message: {reply}")
        for w in words:
            check(w.lower() in reply.message.lower(), f"{what}: message {reply.message!r} does not mention {w!r}")
        check(f.daemon.alive(), f"canfleetd died after: {what}")

    invalid = "org.freedesktop.DBus.Error.InvalidArgs"
    no_node = "io.canfleet.Gateway1.Error.NoSuchNode"
    no_bus = "io.canfleet.Gateway1.Error.NoSuchBus"
    refused("bad node string", start_update(img2, ["nonsense"], {}), [invalid, no_node], ["nonsense"])
    refused("station out of range", start_update(img2, ["bus0:99999"], {}), [invalid, no_node])
    refused("empty station", start_update(img2, ["bus0:"], {}), [invalid, no_node])
    refused("unconfigured station", start_update(img2, ["bus0:9"], {}), [no_node], ["bus0:9"])
    refused("unknown bus", start_update(img2, ["bus7:1"], {}), [no_bus, no_node], ["bus7"])
    refused("unknown node path", start_update(img2, ["/io/canfleet/Gateway1/node/nope_1"], {}), [invalid, no_node])
    refused("empty node list without all", start_update(img2, [], {}), [invalid])
    refused("all=false with an empty list", start_update(img2, [], {"all": ("b", False)}), [invalid])
    refused("option of the wrong type", start_update(img2, [], {"all": ("s", "yes")}), [invalid], ["all"])
    refused("unknown option", start_update(img2, [], {"all": ("b", True), "colour": ("s", "red")}), [invalid],
            ["colour"])
    refused("not an image", start_update(junk, [], {"all": ("b", True)}), ["io.canfleet.Gateway1.Error.InvalidImage"])
    empty = os.path.join(f.dir, "empty.img")
    open(empty, "wb").close()
    refused("empty file", start_update(empty, [], {"all": ("b", True)}), ["io.canfleet.Gateway1.Error.InvalidImage"])
    # a device is never read (/dev/zero would never end, a tty would block): refused by its kind
    refused("a character device", start_update("/dev/null", [], {"all": ("b", True)}), [invalid], ["device"])
    refused("a directory", start_update(f.dir, [], {"all": ("b", True)}), [invalid], ["directory"])
    refused("wrong signature", conn.call(DEST, MANAGER, MANAGER_IFACE, "StartUpdate", "sas", ["x", ["bus0:1"]]))
    refused("fd index out of range",
            conn.call(DEST, MANAGER, MANAGER_IFACE, "StartUpdate", "hasa{sv}", [3, ["bus0:1"], {}]))
    refused("scan an unknown bus", conn.call(DEST, MANAGER, MANAGER_IFACE, "Scan", "s", ["nosuchbus"]), [no_bus],
            ["nosuchbus"])
    refused("scan with an empty name", conn.call(DEST, MANAGER, MANAGER_IFACE, "Scan", "s", [""]),
            [no_bus, invalid])
    refused("cancel a job that does not exist",
            conn.call(DEST, "/io/canfleet/Gateway1/job/999", "io.canfleet.Gateway1.Job", "Cancel"))
    refused("unknown method", conn.call(DEST, MANAGER, MANAGER_IFACE, "SelfDestruct"))
    conn.close()

    check(f.jobs() == [], "a refused call created a job")
    # still serving, and still able to do its job
    r = f.ctl("status")
    check(r.rc == 0, f"status after the malformed calls: {r}")
    r = f.ctl("update", img2, "--node", "bus0:1")
    check(r.rc == 0, f"a good update after the malformed calls: {r}")
    r = f.ctl("scan", "bus0")
    check(r.rc == 0, f"scan: {r}")
    harness.assert_versions(f, {"bus0:1": "2.0.0", "bus0:2": "1.0.0"})


if __name__ == "__main__":
    sys.exit(harness.main(malformed_calls))
