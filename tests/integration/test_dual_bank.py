#!/usr/bin/python3
# Integration: dual-bank nodes (docs/design.md §9). A dual-bank bundle updates two simulated STM32F767
# nodes twice: bank 1 → 2, then 2 → 1 (the second update is the one seed 002 writes into the wrong
# bank), then one job takes nodes on different banks, each its own link; each node is sent the link
# for its inactive bank, goes through trial to confirmed, and
# canfleetctl nodes shows the bank and the trial. A single image for these nodes is refused before any
# frame, and a dual-bank bundle for single-bank nodes likewise.
import re
import sys

import dual_fixture as dual
import harness
from harness import check

NODES = ["bus0:1", "bus0:2"]


def update_and_check(f, bundle, version, bank, nodes=NODES):
    r = f.ctl("update", bundle, *(["--all"] if nodes == NODES else ["--node"] + nodes))
    check(r.rc == 0, f"update to {version} did not exit 0: {r}")
    # piped, canfleetctl prints a line per node step: the trial and its confirmation show
    for name in nodes:
        check(re.search(rf"{name}\b.*\btrial\b", r.out) and re.search(rf"{name}\b.*\bconfirmed\b", r.out),
              f"update's progress shows no trial and confirmed step of {name}: {r}")
    job = [j for j in f.jobs() if j["image"]["version"] == version][0]
    check(job["state"] == "done", f"job state {job['state']}: {job}")
    for n in job["nodes"]:
        check(n["step"] == "confirmed" and n["error"] is None, f"node {n} is not confirmed")
        check(n["bytes_total"] > 0 and n["bytes_done"] == n["bytes_total"], f"bytes of {n}")
    shown = f.nodes()
    for name in nodes:
        n = shown[name]
        check(n["version"] == version and n["bank"] == (bank[name] if isinstance(bank, dict) else bank) and n["trial"] == "confirmed",
              f"{name} after the update to {version}: version {n['version']}, bank {n['bank']}, "
              f"trial {n['trial']}; expected bank {bank}, confirmed")
        check(n["last_update_result"] == "confirmed", f"{name}: last_update_result {n['last_update_result']}")
    log = f.daemon.output()
    for name in nodes:
        b = bank[name] if isinstance(bank, dict) else bank
        check(f"{name} runs {version} from bank {b} on trial" in log, f"canfleetd did not log {name}'s trial")
    return job


def dual_bank(f):
    f.start_bus()
    v1 = dual.pack_dual(f, "1.0.0", release=1)
    f.start_sim(["bus0"], 2, extra=dual.sim_extra(), install=v1)
    f.write_config(["bus0"], 2)
    f.start_daemon()
    harness.wait_probed(f)
    nodes = f.nodes()
    for name in NODES:
        check(nodes[name]["bank"] == 1 and nodes[name]["trial"] == "none",
              f"{name} before any update: bank {nodes[name]['bank']}, trial {nodes[name]['trial']}")
    r = f.ctl("nodes")
    check(r.rc == 0 and "BANK" in r.out, f"canfleetctl nodes has no BANK column for dual-bank nodes: {r}")

    v2 = dual.pack_dual(f, "2.0.0", release=2, seed=2)
    update_and_check(f, v2, "2.0.0", 2)
    # the way a job passes: trial, then confirmed, in the saved progress
    v3 = dual.pack_dual(f, "3.0.0", release=3, seed=3)
    update_and_check(f, v3, "3.0.0", 1)
    r = f.ctl("nodes")
    check(r.rc == 0 and "1 confirmed" in r.out, f"canfleetctl nodes does not show '1 confirmed': {r}")
    # nodes of one job on different banks: each gets its own link (a group pass carries one of them)
    v4 = dual.pack_dual(f, "4.0.0", release=4, seed=4)
    update_and_check(f, v4, "4.0.0", 2, nodes=["bus0:1"])
    v5 = dual.pack_dual(f, "5.0.0", release=5, seed=5)
    update_and_check(f, v5, "5.0.0", {"bus0:1": 1, "bus0:2": 2})

    # a single image cannot serve a dual-bank node: refused before any CAN traffic, nothing changes
    single = f.pack("6.0.0", hw_id=0x0002, release=6, seed=6)
    r = f.ctl("update", single, "--all")
    check(r.rc != 0 and "dual-bank" in r.err, f"a single image for dual-bank nodes was not refused: {r}")
    r = f.ctl("update", single, "--node", "bus0:1")
    check(r.rc != 0 and "dual-bank" in r.err, f"a single image for bus0:1 was not refused: {r}")
    # nor a dual-bank bundle's nodes of an unknown kind: the second bundle of the same version is up to date
    r = f.ctl("update", v5, "--all", "--dry-run", "--json")
    check(r.rc == 0 and [n["result"] for n in r.json()["nodes"]] == ["up-to-date", "up-to-date"],
          f"a dry run of the running dual-bank bundle: {r}")
    r = f.ctl("update", v5, "--all", "--json")
    check(r.rc == 0 and all(n["step"] == "up-to-date" for n in r.json()["nodes"]),
          f"the running dual-bank bundle again is not up to date: {r}")

    harness.stop_sims(f)
    shown = f.sim_show()
    for name in NODES:
        s = shown[name]
        check(s["trial"] == "confirmed" and s[f"bank{s['boot_bank']}"].get("version") == "5.0.0",
              f"{name} in flash: {s}")
    check(shown["bus0:1"]["boot_bank"] == 1 and shown["bus0:1"]["bank2"].get("version") == "4.0.0",
          f"bus0:1 in flash: {shown['bus0:1']}")
    check(shown["bus0:2"]["boot_bank"] == 2 and shown["bus0:2"]["bank1"].get("version") == "3.0.0",
          f"bus0:2 in flash: {shown['bus0:2']}")


if __name__ == "__main__":
    sys.exit(harness.main(dual_bank))
