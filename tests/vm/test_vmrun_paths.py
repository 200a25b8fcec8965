#!/usr/bin/python3
"""vmrun.py on the host: a command, working directory and --share directory hidden in the guest by its
own /tmp and /dev/shm are still seen there at their host paths (read-only, with a space and a comma in
their names), the guest's /tmp stays its own and writable, and what cannot work is refused with a
message instead of booting a VM.

    test_vmrun_paths.py VMRUN.py [vmrun options...]
"""

import os
import secrets
import shutil
import subprocess
import sys
import tempfile

SKIP = 77

PROBE = r"""#!/usr/bin/python3
# runs in the guest: what does it see of the host's directories?
import errno, os, sys
print("cwd=" + os.getcwd())
print("here=" + open("data").read())
print("shared=" + open(os.path.join(sys.argv[1], "data")).read())
try:
    open("written", "w")
    print("cwd-writable=yes")
except OSError as e:
    print("cwd-writable=" + errno.errorcode.get(e.errno, str(e.errno)))
with open("/tmp/guest-file", "w") as f:
    f.write("x")
print("tmp-writable=yes")
print("host-marker-visible=" + ("yes" if os.path.exists(sys.argv[2]) else "no"))
"""


def fail(msg):
    print(f"FAIL: {msg}")
    sys.exit(1)


def vmrun(vm, args, cwd):
    p = subprocess.run([sys.executable, vm[0]] + vm[1:] + args, cwd=cwd, stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=110)
    return p.returncode, p.stdout, p.stderr


def refusals(vm, scratch):
    """Paths that cannot work are refused (exit 2) with a message naming them, before any VM starts."""
    cases = [
        ("/proc", ["/bin/true"], "/proc"),
        (scratch, ["--share", "/tmp", "/bin/true"], "would hide the guest's own /tmp"),
        (scratch, ["--share", "/run", "/bin/true"], "would hide the guest's own /run"),
        (scratch, ["--share", "/sys/kernel", "/bin/true"], "under /sys"),
        (scratch, ["--share", os.path.join(scratch, "no-such-dir"), "/bin/true"], "is not a directory"),
    ]
    for cwd, args, words in cases:
        rc, out, err = vmrun(vm, args, cwd)
        if rc != 2 or words not in err:
            fail(f"vmrun {args} in {cwd}: expected exit 2 saying {words!r}, got {rc}:\n{out}{err}")
    print(f"refusals: {len(cases)} ok")


def main():
    vm = sys.argv[1:]
    # /tmp itself, not TMPDIR: /tmp is what the guest hides
    tmp_dir = tempfile.mkdtemp(prefix="vmrun paths,tmp ", dir="/tmp")
    shm_dir = tempfile.mkdtemp(prefix="vmrun paths,shm ", dir="/dev/shm")
    try:
        refusals(vm, tmp_dir)
        here, shared = secrets.token_hex(8), secrets.token_hex(8)
        with open(os.path.join(tmp_dir, "data"), "w") as f:
            f.write(here)
        with open(os.path.join(shm_dir, "data"), "w") as f:
            f.write(shared)
        probe = os.path.join(tmp_dir, "probe")
        with open(probe, "w") as f:
            f.write(PROBE)
        os.chmod(probe, 0o755)
        # a file of the host's /tmp outside every share: the guest must not see it
        marker = tmp_dir + "-marker"
        open(marker, "w").close()
        try:
            rc, out, err = vmrun(vm, ["--share", shm_dir, probe, shm_dir, marker], tmp_dir)
        finally:
            os.unlink(marker)
        if rc == SKIP:
            print(err, end="")
            return SKIP
        sys.stdout.write(out)
        want = [f"cwd={tmp_dir}", f"here={here}", f"shared={shared}", "cwd-writable=EROFS", "tmp-writable=yes",
                "host-marker-visible=no"]
        lines = out.splitlines()
        for w in want:
            if w not in lines:
                fail(f"the guest did not print {w!r} (exit {rc}):\n{out}{err}")
        if rc != 0:
            fail(f"vmrun exited {rc}:\n{err}")
        if os.path.exists(os.path.join(tmp_dir, "written")):
            fail("the guest wrote into a read-only share")
        print("shares under /tmp and /dev/shm: ok")
        return 0
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        shutil.rmtree(shm_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
