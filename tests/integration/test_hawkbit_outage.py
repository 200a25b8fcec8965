#!/usr/bin/python3
# Integration (issue 9): the fleet server goes away mid-rollout. The gateway's own work goes on: the
# server's job and a canfleetctl update both finish; the feedback that could not be delivered is kept in
# the outbox and reaches the server, in order and once, when it is back on the same address.
import os
import signal
import sys

import harness
import hawkbit_fixture as hb
from harness import check


def outage(f):
    f.start_bus()
    img1 = f.pack("1.0.0", release=1)
    sim = f.start_sim(["bus0"], 2, install=img1)
    server = hb.Server(f)
    f.write_config(["bus0"], 2, hawkbit=server.config(f), node_lost_timeout_s=8)
    f.start_daemon()
    check(f.ctl("scan", "bus0").rc == 0, "scan")
    cids = hb.controller_ids(f)
    hb.wait_targets(server, cids.values())
    v2 = f.pack("2.0.0", release=2, seed=2)

    # the node frozen, so that its job waits at "connecting" (probing it, node_lost_timeout_s) until the
    # server is gone: the rest of the feedback has nowhere to go
    os.kill(sim.pid, signal.SIGSTOP)
    aid = server.state.deployment(cids["bus0:1"], v2, filename="app.cfb", version="2.0.0")
    hb.wait_feedback(server, aid, lambda m: "connecting" in hb.details(m), "connecting")
    server.stop()
    os.kill(sim.pid, signal.SIGCONT)
    r = f.ctl("update", v2, "--node", "bus0:2")
    check(r.rc == 0, f"canfleetctl update while the fleet server is down: {r}")
    harness.wait_until("every job done", lambda: all(j["state"] == "done" for j in f.jobs()), 60)
    check(len(f.jobs()) == 2, f"two jobs expected: {f.jobs()}")
    outbox = os.path.join(f.state_dir, "hawkbit-outbox")
    check(os.listdir(outbox), f"no feedback kept in the outbox while the server was down: {server.state.action_view(aid)}")
    check(server.state.action_view(aid)["status"] == "running", "the action ended while the server was down?")
    # canfleetctl status says so: unreachable, the last error with its time, the feedback waiting
    def fleet():
        r = f.ctl("status", "--json")
        check(r.rc == 0, f"status --json: {r}")
        return r.json()["fleet_server"]
    harness.wait_until("status: unreachable", lambda: fleet()["state"] == "unreachable", 30)
    st = fleet()
    check(st["feedback_queued"] > 0 and st["last_error"] and st["last_error_us"] and st["last_poll_us"],
          f"status --json while the server is down: {st}")
    r = f.ctl("status")
    check(r.rc == 0 and "): unreachable" in r.out and "last error: " in r.out, f"canfleetctl status: {r}")

    server.start()
    harness.wait_until("status: online again", lambda: fleet()["state"] == "online", 30)
    hb.wait_status(server, [aid], ("finished", "error", "canceled"))
    fb = hb.check_success_history(server, aid)
    closed = [m for m in fb if m["status"]["execution"] == "closed"]
    check(len(closed) == 1, f"one closing feedback expected: {closed}")
    harness.wait_until("the outbox empty", lambda: not os.listdir(outbox), 30)
    # the node canfleetctl updated tells the server its new version too
    harness.wait_until("bus0:2's configData says 2.0.0",
                       lambda: server.state.targets_view()[cids["bus0:2"]]["config_data"].get("version") == "2.0.0",
                       30)

    # canfleetd SIGKILLed mid-rollout (both nodes in the server's job, frozen at connecting) and started
    # again: the resumed job is followed, each action gets exactly one closing feedback
    v3 = f.pack("3.0.0", release=3, seed=3)
    os.kill(sim.pid, signal.SIGSTOP)
    aids = [server.state.deployment(c, v3, filename="app3.cfb", version="3.0.0") for c in cids.values()]
    for a in aids:
        hb.wait_feedback(server, a, lambda m: "connecting" in hb.details(m), "connecting")
    f.daemon.kill(signal.SIGKILL)
    os.kill(sim.pid, signal.SIGCONT)
    f.start_daemon()
    hb.wait_status(server, aids, ("finished", "error", "canceled"))
    for a in aids:
        # the steps while no process was there to see them are not in the history: one line says so
        fb = server.state.action_view(a)["feedback"]
        closed = [m for m in fb if m["status"]["execution"] == "closed"]
        check(len(closed) == 1 and fb[-1] is closed[0] and closed[0]["status"]["result"]["finished"] == "success",
              f"action {a}: one closing feedback, closed/success, expected: {fb}")
        check(any("restarted" in hb.details(m) for m in fb), f"action {a}: the restart is not said: {fb}")
    v3_jobs = [j for j in f.jobs() if j["image"]["version"] == "3.0.0"]
    check(len(v3_jobs) == 1 and len(v3_jobs[0]["nodes"]) == 2, f"the restart started the job again: {f.jobs()}")
    check(v3_jobs[0]["hawkbit_actions"] == sorted(aids), f"the resumed job's action ids: {v3_jobs[0]}")
    r = f.ctl("status")
    check(r.rc == 0 and "fleet server: https://127.0.0.1" in r.out, f"canfleetctl status: {r}")
    server.clean()
    harness.assert_versions(f, {"bus0:1": "3.0.0", "bus0:2": "3.0.0"})
    server.stop()


if __name__ == "__main__":
    sys.exit(harness.main(outage))
