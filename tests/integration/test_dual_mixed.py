#!/usr/bin/python3
# Integration: a mixed fleet in one `canfleetctl update --all` with a bundle per node kind. bus0 carries
# three single-bank STM32F4 nodes (copy layout, hardware id 0x0001), bus1 three dual-bank STM32F767
# nodes (hardware id 0x0002), one canfleet-nodesim per layout. `update f4.cfb f7.cfb --all` starts a
# job per bundle, each with the nodes of its kind: the F4 nodes end "done" through the copy, the F7
# nodes "confirmed" on their other bank; canfleetctl nodes shows the bank only for the F7 nodes.
import sys

import dual_fixture as dual
import harness
from harness import check
from test_ctl_json import Checker

F4 = [f"bus0:{sa}" for sa in range(1, 4)]
F7 = [f"bus1:{sa}" for sa in range(1, 4)]


def dual_mixed(f):
    f.start_bus()
    f4_v1 = f.pack("1.0.0", hw_id=0x0001, release=1)
    f7_v1 = dual.pack_dual(f, "1.0.0", hw_id=0x0002, release=1)
    f.start_sim(["bus0"], 3, install=f4_v1, name="nodesim-f4")
    f.start_sim(["bus1"], 3, extra=dual.sim_extra(0x0002), install=f7_v1, name="nodesim-f7")
    f.write_config(["bus0", "bus1"], 3)
    f.start_daemon()
    harness.wait_probed(f)

    f4_v2 = f.pack("2.0.0", hw_id=0x0001, release=2, seed=2)
    f7_v2 = dual.pack_dual(f, "2.0.0", hw_id=0x0002, release=2, seed=2)
    # a dual-bank bundle alone with --all leaves the single-bank nodes out (other hardware id here)
    r = f.ctl("update", f4_v2, f7_v2, "--all")
    check(r.rc == 0, f"update of a mixed fleet did not exit 0: {r}")
    jobs = f.jobs()
    check(len(jobs) == 2, f"expected a job per bundle: {jobs}")
    by_version = {}
    for j in jobs:
        check(j["state"] == "done", f"job {j['id']} {j['state']}: {j}")
        by_version[j["image"]["hw_id"]] = j
    f4_job, f7_job = by_version[1], by_version[2]
    check(sorted(n["node"] for n in f4_job["nodes"]) == F4, f"the F4 bundle's job has {f4_job['nodes']}")
    check(sorted(n["node"] for n in f7_job["nodes"]) == F7, f"the F7 bundle's job has {f7_job['nodes']}")
    check(all(n["step"] == "done" for n in f4_job["nodes"]), f"F4 nodes: {f4_job['nodes']}")
    check(all(n["step"] == "confirmed" for n in f7_job["nodes"]), f"F7 nodes: {f7_job['nodes']}")
    skipped = {s["node"]: s["reason"] for s in f4_job["skipped"]}
    check(all(skipped.get(n) == "hw 0x0002" for n in F7), f"the F4 job's skipped nodes: {skipped}")

    nodes = f.nodes()
    for name in F4:
        check(nodes[name]["version"] == "2.0.0" and nodes[name]["bank"] is None and nodes[name]["trial"] is None,
              f"{name}: {nodes[name]}")
    for name in F7:
        check(nodes[name]["version"] == "2.0.0" and nodes[name]["bank"] == 2 and nodes[name]["trial"] == "confirmed",
              f"{name}: {nodes[name]}")
    r = f.ctl("nodes", "--full")
    check(r.rc == 0 and "BANK" in r.out and "2 confirmed" in r.out, f"nodes table: {r}")

    # the JSON documents with both node kinds, a dual-bank bundle and a bank-2 link against
    # docs/json-schema/canfleetctl.json
    c = Checker()
    c.validate("nodes", f.ctl("nodes", "--json"))
    c.validate("jobs", f.ctl("jobs", "--json"))
    c.validate("node_document", f.ctl("node", "bus1:1", "--json"))
    b = c.validate("bundle", f.ctl("bundle", "inspect", "--json", f7_v2, bus=False))
    check(b["manifest"]["format"] == "canfleet-bundle-2" and [i["bank"] for i in b["manifest"]["images"]] == [1, 2]
          and b["image"]["bank"] == 1 and b["image2"]["bank"] == 2, f"bundle inspect of the dual-bank bundle: {b}")
    link2 = f.image(f7_v2).replace("-b1.img", "-b2.img")
    i = c.validate("image_inspect", f.ctl("image", "inspect", "--json", link2, bus=False))
    check(i["valid"] and i["link_bank"] == 2, f"image inspect of the bank-2 link: {i}")

    # the same hardware id on both kinds: the dual-bank bundle's --all leaves single-bank nodes out with
    # the reason, and a single image leaves the dual-bank nodes out (checked on what canfleetd knows)
    f4_as_hw2 = f.pack("3.0.0", hw_id=0x0002, release=3, seed=3)
    r = f.ctl("update", f4_as_hw2, "--all")
    check(r.rc != 0 and "dual-bank" in r.err, f"a single image for hw 0x0002 went to dual-bank nodes: {r}")

    harness.stop_sims(f)
    shown = f.sim_show()
    for name in F4:
        check(shown[name]["B"].get("version") == "2.0.0", f"{name} in flash: {shown[name]}")
    for name in F7:
        check(shown[name]["boot_bank"] == 2 and shown[name]["bank2"].get("version") == "2.0.0",
              f"{name} in flash: {shown[name]}")


if __name__ == "__main__":
    sys.exit(harness.main(dual_mixed))
