#!/usr/bin/python3
# Integration: canfleetctl's node selectors (globs, --bus, nodes BUS:SA...), update --dry-run, and errors
# that name each thing once in the operator's words.
import re
import sys

import harness
from harness import check

BUSES = ["bus0", "gateway-left-02"]  # bus names are at most 15 characters
N = 3


def names(r):
    check(r.rc == 0, f"{' '.join(r.argv[1:])}: {r}")
    return [n["node"] for n in r.json()["nodes"]]


def table_nodes(r):
    check(r.rc == 0, f"{' '.join(r.argv[1:])}: {r}")
    return [l.split()[0] for l in r.out.splitlines()[1:]]


def ctl_select(f):
    ctl = f.ctl
    img1 = f.start_fleet(BUSES, N)  # the very bundle the nodes run
    b1 = BUSES[1]
    for b in BUSES:
        check(ctl("scan", b).rc == 0, f"scan {b}")

    # nodes: every node, a glob, names, --bus; tables sized to their content, under 80 columns
    check(len(names(ctl("nodes", "--json"))) == 2 * N, "nodes --json")
    check(names(ctl("nodes", "bus0:*", "--json")) == ["bus0:1", "bus0:2", "bus0:3"], "nodes 'bus0:*'")
    check(names(ctl("nodes", "--bus", b1, "--json")) == [f"{b1}:{i}" for i in range(1, N + 1)], "nodes --bus")
    check(names(ctl("nodes", "bus0:2", f"{b1}:[12]", "--json")) == ["bus0:2", f"{b1}:1", f"{b1}:2"],
          "nodes with a name and a bracket glob")
    r = ctl("nodes")
    check(table_nodes(r) == harness.all_nodes(BUSES, N), f"nodes table: {r}")
    check(all(len(l) < 80 for l in r.out.splitlines()), f"nodes table wider than 79 columns: {r.out}")
    header = r.out.splitlines()[0]
    check(header.index("STATE") == len(f"{b1}:1") + 2, f"NODE column not sized to the longest bus name: {r.out}")
    r = ctl("nodes", "--full")
    check("UID" in r.out.splitlines()[0], f"nodes --full shows every column: {r.out}")
    r = ctl("nodes", "bus9:*")
    check(r.rc == 5 and r.err == "canfleetctl: no node matches 'bus9:*'\n", f"a glob that matches nothing: {r}")
    r = ctl("nodes", "--bus", "bus9")
    check(r.rc == 5 and r.err.startswith("canfleetctl: no bus bus9"), f"an unknown bus: {r}")
    r = ctl("nodes", "bus0:9")
    check(r.rc == 5 and r.err == "canfleetctl: no node bus0:9\n", f"an unknown node: {r}")

    # update --dry-run: the target set and the checks, nothing started, nothing changed
    img2 = f.pack("2.0.0", release=2, seed=2, size=8 * 1024)
    r = ctl("update", img2, "--all", "--dry-run")
    check(r.rc == 0, f"dry run --all: {r}")
    rows = {l.split()[0]: l for l in r.out.splitlines()[2:] if l.startswith(("bus0:", b1))}
    check(sorted(rows) == sorted(harness.all_nodes(BUSES, N)) and all(" update" in l for l in rows.values()),
          f"dry run rows: {r.out}")
    check("6 of 6 nodes would be updated" in r.out and "nothing is changed" in r.out, f"dry run summary: {r.out}")
    # canfleetd checked the signature with its keyring (canfleetctl cannot read it)
    check(r.out.splitlines()[1] == "signature: bundle signed by CN=canfleet test CA release key, trusted by the "
          "keyring", f"dry run signature line: {r.out}")
    r = ctl("update", img2, "--node", "bus0:*", "--dry-run", "--json")
    check(r.rc == 0 and [(n["node"], n["result"]) for n in r.json()["nodes"]] ==
          [("bus0:1", "update"), ("bus0:2", "update"), ("bus0:3", "update")], f"dry run of a glob: {r}")
    other = f.pack("2.0.0", hw_id=0x0407, release=2, seed=2, size=8 * 1024)
    r = ctl("update", other, "--all", "--dry-run")
    check(r.rc == 5 and r.out.count(" skip ") == 2 * N and "skip    hw 0x0001" in r.out,
          f"dry run with another hardware id: {r}")
    check("canfleetd would refuse this update: every node has another hardware id than the image's 0x0407"
          in r.err, f"dry run refusal: {r}")
    r = ctl("update", other, "--node", "bus0:1", "--dry-run", "--json")
    check(r.rc == 5 and r.json()["nodes"][0]["result"] == "refuse" and not r.json()["would_start"],
          f"dry run naming a node of other hardware: {r}")
    # up to date: canfleetd compares the running trailer and CRC with the image's (a repack is not)
    r = ctl("update", img1, "--bus", "bus0", "--dry-run", "--json")
    check(r.rc == 0 and {n["result"] for n in r.json()["nodes"]} == {"up-to-date"}, f"dry run up to date: {r}")
    junk = f.dir + "/junk.img"
    with open(junk, "wb") as out:
        out.write(b"\0" * 100)
    r = ctl("update", junk, "--all", "--dry-run")
    check(r.rc == 5 and "not a packed 256 KB area image" in r.out and "canfleetd would refuse" in r.err,
          f"dry run of a junk image: {r}")
    check(f.jobs() == [], f"a dry run started a job: {f.jobs()}")
    check({n["version"] for n in f.nodes().values()} == {"1.0.0"}, "a dry run changed a node")

    # update with a glob and --bus: exactly those nodes
    r = ctl("update", img2, "--node", f"{b1}:[23]", "--bus", "bus0")
    check(r.rc == 0, f"update of a glob and a bus: {r}")
    job = f.job(1)
    check(sorted(n["node"] for n in job["nodes"]) == sorted(["bus0:1", "bus0:2", "bus0:3", f"{b1}:2", f"{b1}:3"]),
          f"job 1's nodes: {job['nodes']}")

    # anti-rollback: the dry run gets StartUpdate's refusal (exit 5) naming the node, then the real one
    r = ctl("update", img1, "--node", "bus0:1", "--node", f"{b1}:1", "--dry-run", "--json")
    check(r.rc == 5 and [n["result"] for n in r.json()["nodes"]] == ["refuse", "refuse"] and
          r.json()["refusal"].startswith("anti-rollback: bus0:1 runs release 2, the bundle has release 1"),
          f"dry run predicting the anti-rollback: {r}")
    # canfleetd knows bus0:1's release: it refuses the whole update up front (exit 5), naming the node once
    r = ctl("update", img1, "--node", "bus0:1")
    check(r.rc == 5, f"rollback update: {r}")
    failed = [l for l in r.err.splitlines() if "bus0:1" in l]
    check(len(failed) == 1 and failed[0].count("bus0:1") == 1 and
          failed[0].startswith("canfleetctl: update refused: anti-rollback: bus0:1 runs release 2, the bundle has "
                               "release 1"),
          f"the refused node is not named exactly once: {r.err!r}")

    # the dry run's target set is the one update --all then takes: bus0:* and b1:[23] are up to date
    # with img2, b1:1 is not; nothing made job 2 before the real update
    r = ctl("update", img2, "--all", "--dry-run", "--json")
    check(r.rc == 0, f"dry run --all: {r}")
    plan = {n["node"]: n["result"] for n in r.json()["nodes"]}
    check(plan == {**{n: "up-to-date" for n in harness.all_nodes(BUSES, N)}, f"{b1}:1": "update"},
          f"dry run --all after job 1: {plan}")
    check(len(f.jobs()) == 1, f"a dry run made a job: {f.jobs()}")
    r = ctl("update", img2, "--all")
    check(r.rc == 0, f"update --all: {r}")
    job = f.job(2)
    check(sorted(n["node"] for n in job["nodes"]) == sorted(plan), f"job 2's nodes: {job['nodes']}")
    check({n["node"]: n["step"] for n in job["nodes"]} ==
          {n: ("done" if v == "update" else v) for n, v in plan.items()}, f"job 2's results: {job['nodes']}")

    # D-Bus errors in words
    for args, want in ((["watch", "99"], "canfleetctl: no job 99\n"), (["cancel", "99"], "canfleetctl: no job 99\n"),
                       (["scan", "bus9"], "canfleetctl: no bus bus9 is configured\n"),
                       (["cancel", "1"], "canfleetctl: cannot cancel: job 1 is done\n")):
        r = ctl(*args)
        check(r.rc == 5 and r.err == want, f"{' '.join(args)}: expected {want!r}: {r}")
        check("Unknown object" not in r.err and "/io/canfleet" not in r.err, f"raw D-Bus error: {r}")
    r = ctl("update", img2, "--node", "bus7:1")
    check(r.rc == 5 and r.err == "canfleetctl: no node bus7:1\n", f"update of an unknown node: {r}")


if __name__ == "__main__":
    sys.exit(harness.main(ctl_select))
