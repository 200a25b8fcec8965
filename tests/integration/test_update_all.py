#!/usr/bin/python3
# Integration: one `canfleetctl update IMG --all` brings 8 nodes on 2 buses from v1 to v2.
import sys

import harness
from harness import check

BUSES = ["bus0", "bus1"]


def update_all(f):
    f.start_fleet(BUSES, 4)
    for b in BUSES:
        r = f.ctl("scan", b, "--json")
        check(r.rc == 0, f"scan {b}: {r}")
        found = {n["node"]: n for n in r.json()["nodes"]}
        check(sorted(found) == [f"{b}:{sa}" for sa in range(1, 5)], f"scan {b} found {sorted(found)}")
        for name, n in found.items():
            check(n["version"] == "1.0.0", f"{name} runs {n['version']!r} before the update, expected 1.0.0")

    img2 = f.pack("2.0.0", release=2, seed=2)
    r = f.ctl("update", img2, "--all")
    check(r.rc == 0, f"update --all did not exit 0: {r}")
    check("8 updated" in r.out, f"no summary '8 updated': {r}")
    check("failed" not in r.out, f"a failure reported: {r}")

    jobs = f.jobs()
    check(len(jobs) == 1, f"expected one job, got {jobs}")
    job = jobs[0]
    check(job["state"] == "done", f"job state {job['state']}")
    check(job["image"]["version"] == "2.0.0", f"job image {job['image']}")
    check(sorted(n["node"] for n in job["nodes"]) == harness.all_nodes(BUSES, 4), f"job nodes {job['nodes']}")
    for n in job["nodes"]:
        check(n["step"] == "done" and n["error"] is None, f"node {n}")
        check(n["bytes_total"] > 0 and n["bytes_done"] == n["bytes_total"], f"bytes of {n}")

    harness.assert_versions(f, {n: "2.0.0" for n in harness.all_nodes(BUSES, 4)})


if __name__ == "__main__":
    sys.exit(harness.main(update_all))
