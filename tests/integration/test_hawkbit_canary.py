#!/usr/bin/python3
# Integration (issue 9): a hawkBit rollout in groups halts at its canaries. 12 nodes on 3 buses, a rollout
# of 3 groups whose first is 2 canaries (success threshold 100 %, error threshold 0 %: any failure pauses,
# as an operator sets up a canary group). Canary bus0:2 cannot install (the simulator's flash fault: its
# bootloader gives up copying the new image): its action is closed/failure, the server pauses the rollout,
# and the other 10 nodes are never touched: no action on the server, no job, still 1.0.0. Resumed, the
# rollout goes on group by group (each started by the previous one's success) and updates those 10.
import sys

import harness
import hawkbit_fixture as hb
from harness import check

BUSES = ["bus0", "bus1", "bus2"]
PER_BUS = 4
CANARIES = ["bus0:1", "bus0:2"]


def canary(f):
    f.start_bus()
    img1 = f.pack("1.0.0", release=1)
    for b in BUSES:
        extra = ["--flash-fault", "install:2"] if b == "bus0" else []
        f.start_sim([b], PER_BUS, extra=extra, install=img1, name=f"nodesim-{b}")
    server = hb.Server(f)
    f.write_config(BUSES, PER_BUS, hawkbit=server.config(f))
    f.start_daemon()
    for b in BUSES:
        check(f.ctl("scan", b).rc == 0, f"scan {b}")
    cids = hb.controller_ids(f)
    check(len(cids) == 12, f"12 identified nodes expected: {sorted(cids)}")
    hb.wait_targets(server, cids.values())

    rest = [n for n in sorted(cids) if n not in CANARIES]
    groups = [CANARIES, rest[:5], rest[5:]]
    v2 = f.pack("2.0.0", release=2, seed=2)
    rid = server.state.rollout([[cids[n] for n in g] for g in groups], v2, filename="app-2.0.0.cfb",
                               version="2.0.0", success_threshold=100, error_threshold=0)
    harness.wait_until("the rollout paused",
                       lambda: server.state.rollout_view(rid)["status"] != "running", 90)
    view = server.state.rollout_view(rid)
    check(view["status"] == "paused" and [g["status"] for g in view["groups"]] == ["error", "scheduled", "scheduled"],
          f"the canary failure must pause the rollout before its second group: {view}")
    acts = view["groups"][0]["actions"]
    ok, bad = acts[cids["bus0:1"]], acts[cids["bus0:2"]]
    hb.wait_status(server, [ok, bad], ("finished", "error"))
    hb.check_success_history(server, ok)
    hb.check_failure(server, bad, ["gave up", "install"])
    check(all(not g["actions"] for g in view["groups"][1:]), f"actions for the held groups: {view}")

    # the server keeps answering the other 10 targets' polls (two more rounds each) with nothing to do
    polls = {n: server.state.targets_view()[cids[n]]["polls"] for n in rest}
    harness.wait_until("two more polls of every held target",
                       lambda: all(server.state.targets_view()[cids[n]]["polls"] >= polls[n] + 2 for n in rest), 30)
    view = server.state.rollout_view(rid)
    check(view["status"] == "paused" and all(not g["actions"] for g in view["groups"][1:]),
          f"the paused rollout went on: {view}")
    held = {cids[n] for n in rest}
    touched = [q for q in server.state.log_view()["requests"]
               if q["controller_id"] in held and q["kind"] not in ("root", "configData")]
    check(not touched, f"the held targets were sent deployments or sent feedback: {touched}")

    jobs = f.jobs()
    in_jobs = {n["node"] for j in jobs for n in j["nodes"]}
    check(in_jobs == set(CANARIES), f"only the canaries may be in a job: {jobs}")
    marks = sorted(a for j in jobs for a in j["hawkbit_actions"])
    check(marks == sorted([ok, bad]), f"the canary job(s) must be marked with actions {ok}, {bad}: {jobs}")
    nodes = f.nodes()
    check(nodes["bus0:1"]["version"] == "2.0.0", f"the good canary: {nodes['bus0:1']}")
    check(nodes["bus0:2"]["last_update_result"] == "failed", f"the failed canary: {nodes['bus0:2']}")
    for n in rest:
        check(nodes[n]["version"] == "1.0.0" and not nodes[n]["last_update_job"],
              f"{n} was touched by the halted rollout: {nodes[n]}")
    # the operator resumes the rollout (the faulty canary set aside): the second group starts, its success
    # (100 %) starts the third, and the rollout finishes with all 10 on 2.0.0
    check(server.state.rollout_resume(rid) == "running", "resume")
    harness.wait_until("the rollout finished", lambda: server.state.rollout_view(rid)["status"] == "finished", 120)
    view = server.state.rollout_view(rid)
    check([g["status"] for g in view["groups"]] == ["error", "finished", "finished"], f"after the resume: {view}")
    for g in view["groups"][1:]:
        for a in g["actions"].values():
            hb.check_success_history(server, a)
    server.clean()
    f.daemon.stop()
    harness.assert_versions(f, {**{n: "2.0.0" for n in rest}, "bus0:1": "2.0.0"}, via_daemon=False)
    server.stop()


if __name__ == "__main__":
    sys.exit(harness.main(canary))
