#!/usr/bin/python3
"""The installed users, file modes and D-Bus policy, lived: an operator (a user in group canfleet, not
root) can start an update, and cannot read the fleet key.

Nothing here is assumed from the files' text: systemd-sysusers and systemd-tmpfiles apply
systemd/canfleet.sysusers and canfleet.tmpfiles to a scratch root (plus an operator and an outsider);
in a private mount namespace that root's /etc/passwd and /etc/group stand in for the machine's, so
that setpriv, dbus-daemon and canfleetd's own group check resolve the names the files made. A
dbus-daemon with the default policy of Debian's system.conf and systemd/io.canfleet.Gateway1.conf
carries the calls; canfleetd runs as the unit's User=/Group=/SupplementaryGroups= and reads the key
where tmpfiles left it; the operator runs canfleetctl with the groups the system gives them.

    test_operator_key.py SYSUSERS TMPFILES UNIT.in POLICY -- --canfleetctl P --canfleetd P --nodesim P
"""
import os
import re
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

import harness  # noqa: E402
from harness import check  # noqa: E402

OPERATOR = "cf-operator"
OUTSIDER = "cf-outsider"
BUSES = ["bus0"]
NODES = 3

# The default context of Debian's /usr/share/dbus-1/system.conf: holes for owning names and calling
# methods come only from the service's own policy file.
BUS_CONF = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={sock}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Introspectable"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Properties"/>
  </policy>
  <include>{policy}</include>
</busconfig>
"""

ARGS = {}


def unit_setting(unit, key):
    with open(unit) as f:
        for line in f:
            m = re.match(rf"^{key}=(.*)$", line.strip())
            if m:
                return m.group(1).strip()
    return None


def make_root(f):
    """A scratch root with the machine's users plus those of the sysusers file, an operator in group
    canfleet and an outsider; the fleet key written as an administrator would, then tmpfiles."""
    root = os.path.join(f.dir, "root")
    os.makedirs(os.path.join(root, "etc"))
    os.chmod(root, 0o755)
    for name in ("passwd", "group"):
        shutil.copy(f"/etc/{name}", os.path.join(root, "etc", name))
    people = os.path.join(f.dir, "people.sysusers")
    with open(people, "w") as fh:
        fh.write(f'u {OPERATOR} - "fleet operator"\nm {OPERATOR} canfleet\nu {OUTSIDER} - "someone else"\n')
    r = harness.run(["systemd-sysusers", f"--root={root}", ARGS["sysusers"], people], f.env(), 30)
    check(r.rc == 0, f"systemd-sysusers: {r}")
    # the administrator's steps of README's "Installing on a gateway", umask 022 and all
    etc = os.path.join(root, "etc", "canfleet")
    os.makedirs(etc, exist_ok=True)
    key = os.path.join(etc, "fleet.key")
    with open(key, "w") as fh:
        fh.write(harness.FLEET_KEY + "\n")
    os.chmod(key, 0o644)
    r = harness.run(["systemd-tmpfiles", f"--root={root}", "--create", ARGS["tmpfiles"]], f.env(), 30)
    check(r.rc == 0, f"systemd-tmpfiles: {r}")
    return root, key


def bind_users(root):
    """This process's mount namespace (private: see main) sees the scratch root's users."""
    for name in ("passwd", "group"):
        subprocess.run(["mount", "--bind", os.path.join(root, "etc", name), f"/etc/{name}"], check=True)


def start_policed_bus(f):
    sock = os.path.join(f.dir, "bus")
    conf = os.path.join(f.dir, "bus.conf")
    with open(conf, "w") as fh:
        fh.write(BUS_CONF.format(sock=sock, policy=os.path.abspath(ARGS["policy"])))
    rfd, wfd = os.pipe()
    try:
        f.dbus = harness.Proc(f, "dbus-daemon", ["dbus-daemon", "--config-file", conf, "--nofork",
                                                 f"--print-address={wfd}"], pass_fds=(wfd,))
    finally:
        os.close(wfd)
    try:
        line = harness.read_line(rfd, harness.scaled(10), "dbus-daemon's address", f.dbus)
    finally:
        os.close(rfd)
    f.bus_address = line.strip()


def as_user(user, argv):
    """argv as user with the supplementary groups the (namespace's) group file gives them."""
    return ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups"] + list(argv)


def operator_key(f):
    check(os.getuid() == 0, "this test sets users up and must start as root")
    check(shutil.which("setpriv") is not None, "setpriv (util-linux) is needed to run as another user")
    unit = ARGS["unit"]
    user, group = unit_setting(unit, "User"), unit_setting(unit, "Group")
    extra = unit_setting(unit, "SupplementaryGroups") or ""
    check(user and group, f"{unit} names no User= and Group=")

    root, key = make_root(f)
    bind_users(root)
    import grp
    import pwd
    daemon_pw = pwd.getpwnam(user)
    operator_groups = {g.gr_name for g in grp.getgrall() if OPERATOR in g.gr_mem}
    check("canfleet" in operator_groups, f"{OPERATOR} is not in group canfleet: {operator_groups}")

    start_policed_bus(f)
    img1 = f.pack("1.0.0", release=1)
    img2 = f.pack("2.0.0", release=2, seed=2)
    f.start_sim(BUSES, NODES, install=img1)
    # SLCAN adapters are root:dialout 0660 (udev); the simulator's pty is made to look the same
    for b in BUSES:
        pts = os.path.realpath(f.pty(b))
        os.chown(pts, 0, grp.getgrnam("dialout").gr_gid)
        os.chmod(pts, 0o660)
    # what StateDirectory=/CacheDirectory= would hand the daemon
    for d in (f.state_dir, f.cache_dir):
        os.makedirs(d, mode=0o750)
        os.chown(d, daemon_pw.pw_uid, daemon_pw.pw_gid)
    f.write_config(BUSES, NODES, fleet_key_file=key)
    os.chmod(f.config_path, 0o644)
    # canfleetd's NOTIFY_SOCKET is ours (harness.Notify); the daemon's user must be able to send to it
    f.notifier = harness.Notify(os.path.join(f.dir, "notify"))
    f.notify, f.notify_path = f.notifier.sock, f.notifier.path
    os.chmod(f.notify_path, 0o666)
    f.wrapper = ["setpriv", f"--reuid={user}", f"--regid={group}"] + \
        ([f"--groups={extra.replace(' ', ',')}"] if extra else ["--clear-groups"])
    f.start_daemon()

    # the operator: reads the fleet, starts an update, and it completes
    r = harness.run(as_user(OPERATOR, f.ctl_argv(["nodes", "--json"])), f.env(), harness.scaled(60))
    check(r.rc == 0 and len(r.json()["nodes"]) == NODES, f"nodes as {OPERATOR}: {r}")
    r = harness.run(as_user(OPERATOR, f.ctl_argv(["update", img2, "--all"])), f.env(), harness.scaled(120))
    check(r.rc == 0, f"update as {OPERATOR} (in group canfleet) should succeed: {r}")
    harness.stop_sims(f)
    harness.assert_versions(f, {n: "2.0.0" for n in harness.all_nodes(BUSES, NODES)})

    # ... and cannot read the key, nor list the directory it is in
    for argv in (["cat", key], ["ls", os.path.dirname(key)]):
        r = harness.run(as_user(OPERATOR, argv), f.env(), 30)
        check(r.rc != 0 and "Permission denied" in r.err,
              f"{OPERATOR} (groups {sorted(operator_groups)}) must not read {argv[-1]}: {r}")
    # the daemon's user can (the update above derived every node's key from it, too)
    r = harness.run(["setpriv", f"--reuid={user}", f"--regid={group}", "--clear-groups", "cat", key], f.env(), 30)
    check(r.rc == 0 and r.out.strip() == harness.FLEET_KEY, f"{user} cannot read the key: {r}")

    # someone in neither group is stopped by the policy, and canfleetctl says so with exit 5
    r = harness.run(as_user(OUTSIDER, f.ctl_argv(["update", img1, "--all"])), f.env(), harness.scaled(60))
    check(r.rc == 5 and "denied" in r.err.lower(), f"update as {OUTSIDER} should be refused with exit 5: {r}")
    r = harness.run(as_user(OUTSIDER, ["cat", key]), f.env(), 30)
    check(r.rc != 0, f"{OUTSIDER} read the key: {r}")


def main():
    # a private mount namespace, so that the bind mounts over /etc/passwd and /etc/group are ours alone
    if os.environ.get("CANFLEET_TEST_MOUNT_NS") != "1":
        env = dict(os.environ, CANFLEET_TEST_MOUNT_NS="1")
        os.execvpe("unshare", ["unshare", "--mount", "--propagation", "private", sys.executable] + sys.argv, env)
    sep = sys.argv.index("--")
    ARGS.update(zip(("sysusers", "tmpfiles", "unit", "policy"), map(os.path.abspath, sys.argv[1:sep])))
    sys.argv = [sys.argv[0]] + sys.argv[sep + 1:]
    return harness.main(operator_key, timeout_scale=1.0)


if __name__ == "__main__":
    sys.exit(main())
