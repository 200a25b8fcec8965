#!/usr/bin/python3
# Integration (issue 9): SIGHUP reconfigures the hawkBit gateway. A rotated gateway token (same file, new
# contents) takes effect (unauthorized -> online); a reload while an action's job runs keeps that action:
# it ends with exactly one closed/success; the url moved to another fleet server: the nodes register there
# and its deployment is installed; the block removed: no fleet server in canfleetctl status; a block whose
# token file is missing is refused naming the key, the configuration in use stays; added again: online.
import os
import signal
import sys

import harness
import hawkbit_fixture as hb
from harness import check, wait_until

LOST = dict(node_lost_timeout_s=60)


def fleet(f):
    r = f.ctl("status", "--json")
    check(r.rc == 0, f"status --json: {r}")
    return r.json()["fleet_server"]


def hup(f):
    os.kill(f.daemon.pid, signal.SIGHUP)


def wait_fleet(f, what, pred, timeout=30):
    wait_until(what, lambda: pred(fleet(f)), timeout)
    return fleet(f)


def reload(f):
    f.start_bus()
    img1 = f.pack("1.0.0", release=1)
    sim = f.start_sim(["bus0"], 2, install=img1)
    server = hb.Server(f)
    conf1 = server.config(f)
    f.write_config(["bus0"], 2, hawkbit=conf1, **LOST)
    f.start_daemon()
    check(f.ctl("scan", "bus0").rc == 0, "scan")
    cids = hb.controller_ids(f)
    hb.wait_targets(server, cids.values())
    wait_fleet(f, "online", lambda s: s["state"] == "online")

    # 1. the server rotates the gateway token: refused until the new one is in the file and reloaded
    server.state.tenants["DEFAULT"] = "gw-rotated"
    wait_fleet(f, "unauthorized", lambda s: s and s["state"] == "unauthorized")
    with open(conf1["gateway_token_file"], "w") as fh:
        fh.write("gw-rotated\n")
    hup(f)
    st = wait_fleet(f, "online again with the rotated token", lambda s: s["state"] == "online")
    check(st["url"] == server.url, f"after the token reload: {st}")

    # 2. a reload (poll_max_s changed: the client restarts) while an action's job waits at connecting
    v2 = f.pack("2.0.0", release=2, seed=2)
    os.kill(sim.pid, signal.SIGSTOP)
    aid = server.state.deployment(cids["bus0:1"], v2, filename="app.cfb", version="2.0.0")
    hb.wait_feedback(server, aid, lambda m: "connecting" in hb.details(m), "connecting")
    restarts = f.daemon.output().count("hawkBit: reconfigured")
    f.write_config(["bus0"], 2, hawkbit=dict(conf1, poll_max_s=1), **LOST)
    hup(f)
    wait_until("the client restarted", lambda: f.daemon.output().count("hawkBit: reconfigured") > restarts, 30)
    check("tenant DEFAULT; 1 action(s) in progress kept" in f.daemon.output(),
          "the reload must keep the action in progress")
    check(fleet(f)["actions_in_progress"] == [aid], f"the action after the reload: {fleet(f)}")
    os.kill(sim.pid, signal.SIGCONT)
    hb.wait_status(server, [aid], ("finished", "error", "canceled"))
    fb = hb.check_success_history(server, aid)
    closed = [m for m in fb if m["status"]["execution"] == "closed"]
    check(len(closed) == 1, f"one closing feedback expected: {closed}")
    jobs = f.jobs()
    check(len(jobs) == 1 and jobs[0]["hawkbit_actions"] == [aid], f"one job for the action: {jobs}")

    # 3. the gateway moves to another fleet server: the nodes register there, its deployment installs
    other = hb.Server(f, name="ddi2")
    f.write_config(["bus0"], 2, hawkbit=other.config(f), **LOST)
    hup(f)
    hb.wait_targets(other, cids.values())
    st = wait_fleet(f, "the new server online", lambda s: s["url"] == other.url and s["state"] == "online")
    v3 = f.pack("3.0.0", release=3, seed=3)
    aid3 = other.state.deployment(cids["bus0:2"], v3, filename="app3.cfb", version="3.0.0")
    hb.wait_status(other, [aid3], ("finished", "error", "canceled"))
    hb.check_success_history(other, aid3)

    # 4. the block removed: no fleet server
    f.write_config(["bus0"], 2, **LOST)
    hup(f)
    wait_fleet(f, "no fleet server", lambda s: s is None)
    r = f.ctl("status")
    check(r.rc == 0 and "fleet server" not in r.out, f"status without a fleet server: {r}")

    # 5. a block with a missing token file is refused, naming the key; nothing changes
    f.write_config(["bus0"], 2, hawkbit=dict(conf1, gateway_token_file=f"{f.dir}/missing.token"), **LOST)
    hup(f)
    f.wait_status(r"Reload refused: .*hawkbit\.gateway_token_file: .*missing\.token", timeout=30)
    check(fleet(f) is None, f"a refused reload started a fleet server: {fleet(f)}")

    # 6. back to the first server (its token file was rewritten for the second one: the rotated token again)
    with open(conf1["gateway_token_file"], "w") as fh:
        fh.write("gw-rotated\n")
    f.write_config(["bus0"], 2, hawkbit=conf1, **LOST)
    hup(f)
    st = wait_fleet(f, "the first server again", lambda s: s and s["url"] == server.url and s["state"] == "online")
    check(st["actions_in_progress"] == [] and st["feedback_queued"] == 0, f"nothing left over: {st}")

    server.clean()
    other.clean()
    harness.assert_versions(f, {"bus0:1": "2.0.0", "bus0:2": "3.0.0"})
    server.stop()
    other.stop()


if __name__ == "__main__":
    sys.exit(harness.main(reload))
