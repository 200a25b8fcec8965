#!/usr/bin/python3
"""bash completion against a real canfleetd: node names for --node (also after a colon), bus names
for scan and job numbers for watch/cancel come from the daemon's answers to canfleetctl --json.

    test_completion_live.py COMPLETION_SCRIPT -- --canfleetctl P --canfleetd P --nodesim P
"""
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

import harness  # noqa: E402
from harness import check  # noqa: E402

SCRIPT = None
BUSES = ["bus0", "bus1"]

DRIVER = r'''
source "$1" || exit 9
while IFS= read -r line; do
        COMP_LINE=$line COMP_POINT=${#line}
        read -ra COMP_WORDS <<<"$line"
        COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
        [[ $line == *" " ]] && COMP_WORDS+=("") && COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
        COMPREPLY=()
        _canfleetctl
        printf '%s\t%s\n' "$line" "${COMPREPLY[*]}"
done
'''


def complete(f, lines):
    bindir = os.path.join(f.dir, "bin")
    os.makedirs(bindir, exist_ok=True)
    link = os.path.join(bindir, "canfleetctl")
    if not os.path.exists(link):
        os.symlink(harness.BINARIES["canfleetctl"], link)
    env = f.env()
    env["PATH"] = bindir + ":" + env["PATH"]
    p = subprocess.run(["bash", "--norc", "--noprofile", "-c", DRIVER, "bash", SCRIPT], input="\n".join(lines) + "\n",
                       capture_output=True, text=True, env=env, timeout=60)
    check(p.returncode == 0 and not p.stderr.strip(), f"completion failed (exit {p.returncode}): {p.stderr}")
    return {k: v.split() for k, v in (l.split("\t", 1) for l in p.stdout.splitlines() if "\t" in l)}


def completion_live(f):
    f.start_fleet(BUSES, 2)
    img2 = f.pack("2.0.0", release=2, seed=2)
    r = f.ctl("update", img2, "--node", "bus0:1", "--no-wait")
    check(r.rc == 0, f"update --no-wait: {r}")
    job = harness.job_id_of(r)
    got = complete(f, ["canfleetctl update app.img --node ", "canfleetctl update app.img --node bus1:",
                       "canfleetctl scan ", "canfleetctl watch ", "canfleetctl cancel "])
    want_nodes = harness.all_nodes(BUSES, 2)
    check(sorted(got["canfleetctl update app.img --node "]) == want_nodes,
          f"--node completes to {got['canfleetctl update app.img --node ']}, the daemon has {want_nodes}")
    # bash splits words at ':', so what it inserts after "bus1:" is the station alone
    check(sorted(got["canfleetctl update app.img --node bus1:"]) == ["1", "2"],
          f"--node bus1: completes to {got['canfleetctl update app.img --node bus1:']}")
    check(sorted(got["canfleetctl scan "]) == BUSES, f"scan completes to {got['canfleetctl scan ']}")
    for c in ("watch", "cancel"):
        check(got[f"canfleetctl {c} "] == [str(job)], f"{c} completes to {got[f'canfleetctl {c} ']}, job {job}")
    r = f.ctl("watch", job)
    check(r.rc == 0, f"the job did not end well: {r}")


def main():
    global SCRIPT
    sep = sys.argv.index("--")
    SCRIPT = os.path.abspath(sys.argv[1])
    sys.argv = [sys.argv[0]] + sys.argv[sep + 1:]
    return harness.main(completion_live)


if __name__ == "__main__":
    sys.exit(main())
