#!/usr/bin/python3
# Integration: what canfleetd knows of its serial nodes (docs/design.md §8) survives its restarts. A
# simulated LPC1768 and ADuCM360 are updated; canfleetd is SIGKILLed, then stopped cleanly, and each time
# started again with isp_entry "manual", so that nothing talks to the chips (each chip counts its resets,
# and the gateway opening its line would reset it): `nodes --json` shows the same protocol, identity,
# version, release and sha256 as before, marked as what canfleetd flashed (version_source "flashed") and
# not met since the start (state "unknown"); `update --dry-run` says up to date from what canfleetd last
# flashed and verified, and so does the job, which reads the chip's identity first and sends nothing.
# Then each chip is swapped for another part (a blank chip from the simulator started with another
# --part): the next session notices it, the identity is updated and the old chip's version forgotten
# (kept so across one more restart), and a bundle for the old part is refused before anything is erased.
import os
import re
import signal
import sys

import harness
import serial_fixture as sf
from harness import check

SIZE = 8 * 1024
CHIPS = {"lpc0": ("lpc-isp", "LPC1768 0x26013F37, boot code ", "LPC1769", "LPC1769 0x26113F37, boot code "),
         "adi0": ("adi-uart", "ADuCM360", "ADuCM361", "ADuCM361")}
KEPT = ("protocol", "identity", "version", "release", "running_sha256", "last_update_result", "last_update_job",
        "last_update_time_us", "last_seen_us", "version_source")


def serial_restart(f):
    # each chip resets into its loader when the gateway opens its line: a job meets it there without
    # anyone pressing a button, and a line opened by a probe would show in its boot count
    f.start_bus()
    chips = {bus: sf.start_chip(f, bus, proto, ["--reset-on-open"]) for bus, (proto, *_) in CHIPS.items()}
    sf.write_config(f, None, 0, [sf.serial_bus(f, "lpc0", "lpc-isp", crystal_khz=12000, isp_entry="manual"),
                                 sf.serial_bus(f, "adi0", "adi-uart", isp_entry="manual")])
    f.start_daemon()
    lpc, lpc_raw = sf.serial_bundle(f, "lpc-isp", "3.1.0", 4, sf.lpc_app(SIZE, seed=3))
    adi, adi_raw = sf.serial_bundle(f, "adi-uart", "2.0.0", 2, sf.adi_app(SIZE, seed=4))
    bundles = {"lpc0": lpc, "adi0": adi}
    r = f.ctl("update", lpc, adi, "--all")
    check(r.rc == 0, f"update LPC ADI --all: {r}")
    check(sf.flash(f, "lpc0")[:SIZE] == lpc_raw and sf.flash(f, "adi0")[:SIZE] == adi_raw, "flash after the update")
    before = f.nodes()
    for bus, (proto, ident, *_) in CHIPS.items():
        n = before[f"{bus}:1"]
        check(n["protocol"] == proto and (n["identity"] or "").startswith(ident) and n["state"] == "online"
              and n["last_update_result"] == "done" and n["version_source"] == "flashed"
              and re.fullmatch(r"[0-9a-f]{64}", n["running_sha256"] or ""), f"{bus} after its update: {n}")
    check(before["lpc0:1"]["version"] == "3.1.0" and before["lpc0:1"]["release"] == 4
          and before["adi0:1"]["version"] == "2.0.0" and before["adi0:1"]["release"] == 2, f"versions: {before}")

    for how in (signal.SIGKILL, signal.SIGTERM):
        boots = {bus: sf.chip_state(f, bus)["boots"] for bus in CHIPS}
        f.daemon.kill(how)
        f.start_daemon()
        after = f.nodes()
        for bus in CHIPS:
            a, b = after[f"{bus}:1"], before[f"{bus}:1"]
            check({k: a[k] for k in KEPT} == {k: b[k] for k in KEPT},
                  f"{bus} after a {how.name} restart: {a}, before: {b}")
            check(a["state"] == "unknown", f"{bus} is not marked as not met since the start: {a}")
        # the table and the node view say where the version comes from
        r = f.ctl("nodes", "--full")
        check(r.rc == 0 and re.search(r"lpc0:1\s+unknown\s+lpc-isp\s+3\.1\.0 \(flashed\)", r.out)
              and "LPC1768 0x26013F37" in r.out, f"nodes after a {how.name} restart: {r}")
        r = f.ctl("node", "lpc0:1")
        check(r.rc == 0 and "flashed:      3.1.0" in r.out and "not met since canfleetd started" in r.out
              and "last flashed and verified by canfleetd" in r.out, f"node lpc0:1: {r}")
        # up to date from what canfleetd last flashed and verified, said as such; nothing reached a chip
        for bus, bundle in bundles.items():
            r = f.ctl("update", bundle, "--node", f"{bus}:1", "--dry-run", "--json")
            check(r.rc == 0, f"dry run for {bus}: {r}")
            plan = r.json()["nodes"]
            check(len(plan) == 1 and plan[0]["result"] == "up-to-date"
                  and "canfleetd last flashed and verified this image" in plan[0]["reason"]
                  and "cannot report what runs" in plan[0]["reason"], f"dry run for {bus}: {plan}")
        check({bus: sf.chip_state(f, bus)["boots"] for bus in CHIPS} == boots,
              f"a chip was reset (its line opened) after a {how.name} restart: "
              f"{[sf.chip_state(f, b) for b in CHIPS]} vs {boots}")

    # the job decides as the dry run did, once the chip's identity is read again: nothing erased or sent
    ops = {bus: sf.chip_state(f, bus)["flash_ops"] for bus in CHIPS}
    r = f.ctl("update", lpc, adi, "--all")
    check(r.rc == 0, f"update of up-to-date serial nodes: {r}")
    for bus in CHIPS:
        j = [x for x in f.jobs() if any(n["node"] == f"{bus}:1" for n in x["nodes"])][-1]
        check(j["nodes"][0]["step"] == "up-to-date", f"{bus} in its job: {j}")
        harness.wait_until(f"{bus} running its application", lambda: sf.chip_state(f, bus)["state"] == "running", 10)
    check({bus: sf.chip_state(f, bus)["flash_ops"] for bus in CHIPS} == ops, "an up-to-date chip was flashed")
    check(f.nodes()["lpc0:1"]["last_update_result"] == "up-to-date", f"after the job: {f.nodes()['lpc0:1']}")

    # another part on each line: a blank chip from the factory
    for bus, (proto, _, other, _) in CHIPS.items():
        chips[bus].stop()
        for ext in (".bin", ".json"):
            os.unlink(os.path.join(sf.state_dir(f), bus + ext))
        chips[bus] = sf.start_chip(f, bus, proto, ["--reset-on-open", "--part", other])
    # the first update still believes the old part (nothing met the new chip): its session reads the
    # identity, updates it and fails the node before any erase
    for bus, (proto, old, other, new) in CHIPS.items():
        r = f.ctl("update", bundles[bus], "--node", f"{bus}:1")
        check(r.rc == 1, f"the old part's bundle on the swapped {bus}: {r}")
        err = f.jobs()[-1]["nodes"][0]["error"] or ""
        check(f"the chip is {new}" in err and "nothing erased" in err, f"{bus}: the swapped chip's error: {err!r}")
        check(sf.chip_state(f, bus)["flash_ops"] == 0, f"{bus} was flashed: {sf.chip_state(f, bus)}")
        n = f.nodes()[f"{bus}:1"]
        check(n["identity"].startswith(new) and n["version"] is None and n["running_sha256"] is None
              and n["version_source"] is None and n["release"] is None, f"{bus} after the swap: {n}")
    # known now, across a restart too: StartUpdate refuses the old part's bundle, naming the chip
    f.daemon.kill(signal.SIGKILL)
    f.start_daemon()
    for bus, (proto, old, other, new) in CHIPS.items():
        n = f.nodes()[f"{bus}:1"]
        check(n["identity"].startswith(new) and n["version"] is None, f"{bus} after the swap and a restart: {n}")
        r = f.ctl("update", bundles[bus], "--node", f"{bus}:1")
        check(r.rc == 5 and f"{bus}:1 is {new}" in r.err and "the bundle is for part" in r.err
              and "(nothing erased)" in r.err, f"the old part's bundle, the swap known: {r}")
        check(sf.chip_state(f, bus)["flash_ops"] == 0, f"{bus} was flashed: {sf.chip_state(f, bus)}")


if __name__ == "__main__":
    sys.exit(harness.main(serial_restart))
