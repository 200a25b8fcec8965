#!/usr/bin/python3
# Integration (issue 9): canfleetd as a hawkBit gateway against tests/hawkbit/ddi_server.py on loopback TLS.
# 8 nodes on 2 buses: one deployment is one download (cut mid-file and resumed) and one job, marked with
# its 8 action ids in canfleetctl jobs, each action's feedback proceeding… then closed/success after the
# node confirmed; a bundle signed by an unknown key is closed/failure for every node, a tampered one, one
# for other hardware and an older release with the reason, all with no CAN frame; a closed maintenance
# window downloads only ("downloaded", the action in progress in canfleetctl status), the install follows
# when it opens. canfleetctl status and jobs --json are checked against the committed schema.
import json
import sys

import harness
import hawkbit_fixture as hb
import test_ctl_json
from harness import check

BUSES = ["bus0", "bus1"]
PER_BUS = 4


def rollout(f):
    f.start_bus()
    img1 = f.pack("1.0.0", release=1)
    sims = {b: f.start_sim([b], PER_BUS, extra=["--log-frames"], install=img1, name=f"nodesim-{b}")
            for b in BUSES}
    server = hb.Server(f)
    f.write_config(BUSES, PER_BUS, hawkbit=server.config(f))
    f.start_daemon()
    r = harness.run([harness.BINARIES["canfleetd"], "--config", f.config_path, "--check"], f.env(), 30)
    check(r.rc == 0, f"canfleetd --check with a hawkbit block: {r}")
    with open(f.config_path) as fh:
        conf = json.load(fh)
    conf["hawkbit"]["gateway_token_file"] = f"{f.dir}/missing.token"
    with open(f"{f.dir}/bad.conf", "w") as fh:
        json.dump(conf, fh)
    r = harness.run([harness.BINARIES["canfleetd"], "--config", f"{f.dir}/bad.conf", "--check"], f.env(), 30)
    check(r.rc != 0 and "hawkbit.gateway_token_file" in r.err and "missing.token" in r.err,
          f"--check with a missing token file must fail naming the key: {r}")
    for b in BUSES:
        r = f.ctl("scan", b)
        check(r.rc == 0, f"scan {b}: {r}")
    cids = hb.controller_ids(f)
    check(len(cids) == 8, f"8 identified nodes expected: {cids}")
    hb.wait_targets(server, cids.values())
    cfg = server.state.targets_view()[cids["bus1:2"]]["config_data"]
    check(cfg.get("bus") == "bus1" and cfg.get("station") == "2" and cfg.get("version") == "1.0.0",
          f"configData of bus1:2: {cfg}")

    schema = test_ctl_json.Checker()
    st = schema.validate("status", f.ctl("status", "--json"))["fleet_server"]
    check(st["url"] == server.url and st["tenant"] == "DEFAULT" and st["state"] == "online"
          and st["targets"] == 8 and st["last_poll_us"] and st["last_error"] is None
          and st["actions_in_progress"] == [], f"status --json fleet_server before any deployment: {st}")

    # 1. one deployment for all 8: one download (cut after 100000 bytes, resumed), one job, all on 2.0.0
    v2 = f.pack("2.0.0", release=2, seed=2)
    server.srv.add_file_fault({"cut_after": 100000, "times": 1})
    aids = {n: server.state.deployment(c, v2, filename="app-2.0.0.cfb", version="2.0.0") for n, c in cids.items()}
    hb.wait_status(server, aids.values(), ("finished", "error"))
    for n, a in aids.items():
        hb.check_success_history(server, a)
    gets = [q for q in server.state.log_view()["requests"] if q["kind"] == "artifact"]
    check(len(gets) == 2 and gets[0]["path"] == gets[1]["path"],
          f"one download expected (the cut request and its resumption, one URL): {gets}")
    jobs = schema.validate("jobs", f.ctl("jobs", "--json"))["jobs"]
    check(len(jobs) == 1 and len(jobs[0]["nodes"]) == 8, f"one job of 8 nodes expected: {jobs}")
    check(sorted(jobs[0]["hawkbit_actions"]) == sorted(aids.values()),
          f"the job is not marked with its actions {sorted(aids.values())}: {jobs[0]}")
    lo, hi = min(aids.values()), max(aids.values())
    r = f.ctl("jobs", "--full")
    check(r.rc == 0 and "HAWKBIT" in r.out and f"{lo}-{hi}" in r.out, f"jobs table without the action ids: {r}")
    nodes = f.nodes()
    for n in cids:
        check(nodes[n]["version"] == "2.0.0", f"{n}: {nodes[n]}")
    harness.wait_until("configData says 2.0.0",
                       lambda: server.state.targets_view()[cids["bus0:1"]]["config_data"].get("version") == "2.0.0",
                       30)

    # 2. refused before any CAN frame, each action closed/failure with the reason: a bundle signed by a key
    # nobody trusts, a tampered one, one for other hardware, an older release (anti-rollback)
    before = {b: hb.frames(s) for b, s in sims.items()}
    other = harness.make_ca(f.dir, name="other", cn="a key nobody trusts")
    v3 = f.pack("3.0.0", release=3, seed=3)
    bad = f.bundle(f.image(v3), cert=other["cert"], key=other["key"], out=f"{f.dir}/untrusted.cfb")
    with open(v3, "rb") as fh:
        tampered = bytearray(fh.read())
    tampered[1000] ^= 0x01  # one bit of the image: the signature still checks, the manifest's sha256 not
    with open(f"{f.dir}/tampered.cfb", "wb") as fh:
        fh.write(tampered)
    bad_ids = [server.state.deployment(c, bad, filename="untrusted.cfb", version="3.0.0") for c in cids.values()]
    hb.wait_status(server, bad_ids, ("finished", "error"))
    for a in bad_ids:
        hb.check_failure(server, a, ["refused", "trust"])
    bad_ids = [server.state.deployment(cids["bus1:2"], f"{f.dir}/tampered.cfb", filename="tampered.cfb",
                                       version="3.0.0")]
    other_hw = f.pack("3.0.0", hw_id=0x0002, release=3, seed=3)
    hw_id = server.state.deployment(cids["bus0:2"], other_hw, filename="other-hw.cfb", version="3.0.0")
    old_id = server.state.deployment(cids["bus0:2"], img1, filename="v1.cfb", version="1.0.0")
    hb.wait_status(server, bad_ids + [hw_id], ("finished", "error"))
    for a in bad_ids:
        hb.check_failure(server, a, ["refused", "trust"])
    hb.check_failure(server, hw_id, ["hardware"])
    hb.wait_status(server, [old_id], ("finished", "error"))
    hb.check_failure(server, old_id, ["rollback"])
    check({b: hb.frames(s) for b, s in sims.items()} == before, "CAN frames were sent for a refused bundle")
    check(len(f.jobs()) == 1, f"a refused bundle made a job: {f.jobs()}")
    st = schema.validate("status", f.ctl("status", "--json"))["fleet_server"]
    check(st["actions_in_progress"] == [] and st["feedback_queued"] == 0, f"all closed and delivered: {st}")

    # 3. maintenance window unavailable: downloaded and verified only, installed when it opens
    aid = server.state.deployment(cids["bus0:2"], v3, filename="app-3.0.0.cfb", version="3.0.0",
                                  maintenance_window="unavailable")
    hb.wait_feedback(server, aid, lambda m: m["status"]["execution"] == "downloaded", "downloaded")
    check(len(f.jobs()) == 1 and f.nodes()["bus0:2"]["version"] == "2.0.0",
          f"installed while the window was closed: {f.jobs()}")
    st = schema.validate("status", f.ctl("status", "--json"))["fleet_server"]
    check(st["actions_in_progress"] == [aid], f"the waiting action is in progress: {st}")
    r = f.ctl("status")
    check(r.rc == 0 and f"fleet server: {server.url} (tenant DEFAULT): online" in r.out
          and f"actions in progress: {aid}" in r.out, f"canfleetctl status: {r}")
    server.state.maintenance(aid, "available")
    hb.wait_status(server, [aid], ("finished", "error"))
    fb = server.state.action_view(aid)["feedback"]
    execs = [m["status"]["execution"] for m in fb]
    check(execs.index("downloaded") < len(execs) - 1 and execs[-1] == "closed"
          and fb[-1]["status"]["result"]["finished"] == "success", f"window action history: {execs}")
    check(f.nodes()["bus0:2"]["version"] == "3.0.0", f"bus0:2 after the window: {f.nodes()['bus0:2']}")
    # 4. download: skip: nothing is fetched; a cancel meanwhile is accepted at once
    gets = len([q for q in server.state.log_view()["requests"] if q["kind"] == "artifact"])
    aid = server.state.deployment(cids["bus1:2"], v3, filename="app-3.0.0.cfb", version="3.0.0", download="skip")
    hb.wait_feedback(server, aid, lambda m: "skip" in hb.details(m), "download: skip acknowledged")
    server.state.cancel(aid)
    hb.wait_status(server, [aid], ("canceled",))
    cf = server.state.action_view(aid)["cancel_feedback"]
    check(len(cf) == 1 and cf[0]["status"]["execution"] == "closed", f"cancel of a skipped download: {cf}")
    check(len([q for q in server.state.log_view()["requests"] if q["kind"] == "artifact"]) == gets,
          "an artifact was fetched for download: skip")

    # 5. the same artifact again, for another node long after its first actions ended: not downloaded
    # again (the gateway's cache, by sha256), verified again, installed
    aid = server.state.deployment(cids["bus1:1"], v3, filename="app-3.0.0.cfb", version="3.0.0")
    hb.wait_status(server, [aid], ("finished", "error"))
    hb.check_success_history(server, aid)
    check(len([q for q in server.state.log_view()["requests"] if q["kind"] == "artifact"]) == gets,
          "an artifact verified before was downloaded again")

    server.clean()
    want = {n: "2.0.0" for n in cids}
    want["bus0:2"] = want["bus1:1"] = "3.0.0"
    harness.assert_versions(f, want, via_daemon=False)
    server.stop()


if __name__ == "__main__":
    sys.exit(harness.main(rollout))
