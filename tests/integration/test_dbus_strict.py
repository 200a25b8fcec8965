#!/usr/bin/python3
# Integration: object paths and node references have one spelling each (no wrap-around, no leading
# zeros, no sign, no spaces), and an unprivileged caller learns nothing about which nodes exist.
import os
import sys

import dbus_wire
import harness
from harness import check

DEST = "io.canfleet.Gateway1"
MANAGER = "/io/canfleet/Gateway1"
MANAGER_IFACE = "io.canfleet.Gateway1.Manager"
JOB_IFACE = "io.canfleet.Gateway1.Job"
PROPS = "org.freedesktop.DBus.Properties"
NOBODY = 65534


def dbus_strict(f):
    f.start_fleet(["bus0"], 2)
    img2 = f.pack("2.0.0", release=2, seed=2)
    r = f.ctl("update", img2, "--node", "bus0:1")
    check(r.rc == 0, f"job 1: {r}")
    conn = dbus_wire.Conn(f.bus_address)

    def job_id(path):
        return conn.call(DEST, path, PROPS, "Get", "ss", [JOB_IFACE, "Id"])

    ok = job_id("/io/canfleet/Gateway1/job/1")
    check(not ok.error and ok.values and ok.values[0][1] == 1, f"job 1 must resolve: {ok}")
    # 4294967297 = 2^32 + 1 and friends (object paths allow [A-Za-z0-9_] only): none of them is job 1
    for alias in ("4294967297", "18446744073709551617", "01", "001", "0", "_31", "1_", "1a"):
        r = job_id(f"/io/canfleet/Gateway1/job/{alias}")
        check(r.error, f"/job/{alias} must not resolve (to job 1): {r}")

    def start_update(nodes):
        fd = os.open(img2, os.O_RDONLY)
        try:
            return conn.call(DEST, MANAGER, MANAGER_IFACE, "StartUpdate", "hasa{sv}", [0, nodes, {}], fds=[fd])
        finally:
            os.close(fd)

    for ref in ("bus0: 1", "bus0:01", "bus0:+1", "bus0:1 ", "bus0:-1", "bus0:0x1", "bus0:4294967297",
                "bus0:65537"):
        r = start_update([ref])
        check(r.error == "org.freedesktop.DBus.Error.InvalidArgs",
              f"node reference {ref!r} must be refused as malformed: {r}")
    check([j["id"] for j in f.jobs()] == [1], f"a refused call made a job: {f.jobs()}")

    # unprivileged: the same refusal for a node that exists, one that does not, a bus that does not
    for ref in ("bus0:1", "bus0:9", "nosuchbus:1", "bus0:01"):
        r = f.ctl("update", img2, "--node", ref, uid=NOBODY)
        check(r.rc == 5 and "permission denied" in r.err.lower(),
              f"update --node {ref} as uid {NOBODY} must be refused for the permission alone: {r}")
        check("no node" not in r.err.lower() and "no bus" not in r.err.lower(),
              f"the refusal for {ref} tells whether it exists: {r.err!r}")
    conn.close()
    check(f.daemon.alive(), "canfleetd died")


if __name__ == "__main__":
    sys.exit(harness.main(dbus_strict))
