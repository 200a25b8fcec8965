#!/usr/bin/python3
"""Run a command as root inside a QEMU VM with Debian's stock kernel and real SocketCAN (docs/design.md §4).

The VM boots the linux-image-amd64 kernel from /boot with a small initramfs (busybox-static and the
CAN, virtio and 9p modules), mounts the host's / read-only over 9p, chroots into it with its own tmpfs
on /tmp and /run (and devtmpfs, devpts, proc, sysfs), creates vcan0..vcanN-1, runs the command and
powers off. Its output and exit code come back through a writable 9p share; this program prints the
output and exits with that code. COMMAND runs in the current directory, as root: the host's paths are
the guest's.

The guest's own /tmp, /run and /dev hide the host's. So that a checkout or build directory there (CI
clones wherever it likes) is still seen, every --share DIR, the current directory and the command's
directory are shared read-only too, each over its own 9p device, and mounted at their host path after
the guest's own mounts. The command writes to the guest's /tmp or to $VM_RESULT, never to the shares.
Refused, because they cannot work: a path under /proc or /sys (the guest kernel's own), a share that
would hide one of the guest's writable mounts (/tmp or /run themselves: use a subdirectory), and paths
with a newline.

    vmrun.py [--cache-dir DIR] [--vcan N] [--timeout S] [--require] [--share DIR]... COMMAND [ARG...]

Exit 77 (meson's "skipped") when qemu, a kernel with its modules, or busybox-static is missing, unless
--require is given (then that is a failure); exit 2 for a path that cannot be shared. Environment
inside: VM_RESULT=/run/result (a writable directory the host keeps), HOME=/tmp, the host's PATH
directories.
"""

import argparse
import gzip
import hashlib
import io
import lzma
import os
import re
import shlex
import shutil
import struct
import subprocess
import sys
import tempfile
import time

SKIP = 77
# The modules the initramfs loads, dependencies first; vcan pulls can-dev, virtio_pci its helpers.
MODULES = ["can", "can-raw", "vcan", "virtio_ring", "virtio", "virtio_pci", "netfs", "fscache", "9pnet",
           "9pnet_virtio", "9p"]
BUSYBOX_CANDIDATES = ["/bin/busybox", "/usr/bin/busybox"]
QEMU = "qemu-system-x86_64"

INIT = r"""#!/bin/busybox sh
# /init of the canfleet test VM: modules, the host's root over 9p, the command, poweroff.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in $(cat /modules.order); do
        insmod /lib/modules/$m.ko || echo "vm-init: insmod $m failed"
done
H=/host
mkdir -p $H
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=262144,cache=loose hostroot $H || echo "vm-init: no host root"
mount -t tmpfs -o mode=1777 tmp $H/tmp
mount -t tmpfs -o mode=0755 run $H/run
mount -t proc proc $H/proc
mount -t sysfs sys $H/sys
mount -t devtmpfs dev $H/dev
mkdir -p $H/dev/pts $H/dev/shm $H/run/result
mount -t devpts -o newinstance,ptmxmode=0666 devpts $H/dev/pts
mount -t tmpfs -o mode=1777 shm $H/dev/shm
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 result $H/run/result || echo "vm-init: no result share"
# the host directories our own mounts above hid (a checkout under /tmp...): each line "TAG PATH"
ok=1
while IFS= read -r line; do
        tag=${line%% *}
        dir=${line#* }
        mkdir -p "$H$dir" &&
                mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=262144,cache=loose "$tag" "$H$dir" ||
                { echo "vm-init: cannot mount the share of $dir"; ok=0; }
done <$H/run/result/shares
P=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
[ $ok = 1 ] && chroot $H /usr/bin/env -i PATH=$P HOME=/tmp VM_RESULT=/run/result /bin/sh -c '
        [ -r /proc/self/stat ] && [ -d /sys/class/net ] || { echo "vm-init: /proc or /sys is wrong"; exit 125; }
        ip link set lo up
        n=$(cat /run/result/vcan)
        i=0
        while [ $i -lt $n ]; do
                ip link add vcan$i type vcan && ip link set vcan$i up || exit 125
                i=$((i + 1))
        done
        exec /bin/sh /run/result/command.sh
' >$H/run/result/output 2>&1
rc=$?
[ $ok = 1 ] || { echo "vm-init: a share is missing, the command did not run" >$H/run/result/output; rc=125; }
echo $rc >$H/run/result/rc
sync
echo "vm-init: done"
poweroff -f
"""


# What the guest mounts of its own over the host's root; the result share sits at /run/result.
GUEST_MOUNTS = ["/tmp", "/run", "/dev", "/dev/pts", "/dev/shm", "/proc", "/sys", "/run/result"]
# Under these the guest's kernel decides what exists: nothing of the host's can be put there.
GUEST_KERNEL = ["/proc", "/sys"]


class Unshareable(Exception):
    pass


def is_under(path, top):
    return path == top or path.startswith(top.rstrip("/") + "/")


def hidden(path):
    """True when the guest's own mounts hide this host path."""
    return any(is_under(path, m) for m in GUEST_MOUNTS)


def plan_shares(explicit, cwd, command):
    """The host directories to share, outermost only, as real paths: every explicit one, and the
    working directory and the command's directory when the guest's mounts would hide them."""
    wanted = [(d, "--share") for d in explicit]
    cmd = os.path.abspath(command)
    for d, why in ((cwd, "the working directory"), (os.path.dirname(cmd), "the command's directory"),
                   (os.path.dirname(os.path.realpath(cmd)), "the command's directory")):
        if hidden(os.path.realpath(d)):
            wanted.append((d, why))
    shares = []
    for d, why in wanted:
        real = os.path.realpath(d)
        if "\n" in real:
            raise Unshareable(f"{why} {real!r} has a newline in its name")
        if not os.path.isdir(real):
            raise Unshareable(f"{why} {real} is not a directory")
        for k in GUEST_KERNEL:
            if is_under(real, k):
                raise Unshareable(f"{why} {real} is under {k}, which the guest's kernel provides itself")
        if real == "/":
            continue  # the host's root is there anyway
        for m in GUEST_MOUNTS:
            if is_under(m, real):
                raise Unshareable(f"{why} {real} would hide the guest's own {m}; use a directory below it")
        shares.append(real)
    outer = []
    for d in sorted(set(shares), key=lambda d: (len(d), d)):
        if not any(is_under(d, o) for o in outer):
            outer.append(d)
    return outer


def qemu_path(path):
    """-virtfs splits its options at commas; a comma inside a value is written twice."""
    return path.replace(",", ",,")


def skip_or_fail(require, why):
    print(f"vmrun: {why}", file=sys.stderr)
    sys.exit(1 if require else SKIP)


def version_key(v):
    return [int(x) if x.isdigit() else x for x in re.split(r"[.\-+~]", v)]


def find_kernel():
    """The newest /boot/vmlinuz-VER whose modules exist: Debian's kernel, not the one this host runs."""
    found = []
    for name in os.listdir("/boot") if os.path.isdir("/boot") else []:
        if name.startswith("vmlinuz-"):
            ver = name[len("vmlinuz-"):]
            if os.path.isfile(f"/lib/modules/{ver}/modules.dep") and os.access(f"/boot/{name}", os.R_OK):
                found.append(ver)
    if not found:
        return None
    ver = max(found, key=version_key)
    return ver, f"/boot/vmlinuz-{ver}"


def is_static_elf(path):
    """True for an x86-64 ELF without a PT_INTERP program header."""
    with open(path, "rb") as f:
        head = f.read(64)
        if head[:4] != b"\x7fELF" or head[4] != 2:
            return False
        phoff, = struct.unpack_from("<Q", head, 32)
        phentsize, phnum = struct.unpack_from("<HH", head, 54)
        f.seek(phoff)
        table = f.read(phentsize * phnum)
    return all(struct.unpack_from("<I", table, i * phentsize)[0] != 3 for i in range(phnum))


def module_order(kver):
    """Module files (relative to /lib/modules/kver) of MODULES and their dependencies, each after its deps."""
    deps = {}
    by_name = {}
    with open(f"/lib/modules/{kver}/modules.dep") as f:
        for line in f:
            path, _, rest = line.partition(":")
            deps[path] = rest.split()
            base = os.path.basename(path)
            name = re.sub(r"\.ko(\.(xz|zst|gz))?$", "", base)
            by_name[name] = path
            by_name[name.replace("-", "_")] = path
    order = []

    def visit(path):
        if path in order:
            return
        # modules.dep lists the full closure, the module loaded last first
        for d in reversed(deps.get(path, [])):
            visit(d)
        order.append(path)

    missing = []
    for m in MODULES:
        path = by_name.get(m) or by_name.get(m.replace("-", "_"))
        if path:
            visit(path)
        elif not builtin(kver, m):
            missing.append(m)
    return order, missing


def builtin(kver, name):
    p = f"/lib/modules/{kver}/modules.builtin"
    if not os.path.exists(p):
        return False
    with open(p) as f:
        return any(re.sub(r"\.ko$", "", os.path.basename(l.strip())) in (name, name.replace("-", "_")) for l in f)


def read_module(path):
    """A module's bytes, decompressed: busybox's insmod cannot read .ko.xz/.ko.zst."""
    with open(path, "rb") as f:
        data = f.read()
    if path.endswith(".xz"):
        return lzma.decompress(data)
    if path.endswith(".gz"):
        return gzip.decompress(data)
    if path.endswith(".zst"):
        return subprocess.run(["zstd", "-dc", path], check=True, stdout=subprocess.PIPE).stdout
    return data


class Cpio:
    """A newc cpio archive, written without the cpio tool and without root (devtmpfs makes /dev)."""

    def __init__(self):
        self.out = io.BytesIO()
        self.ino = 1

    def _entry(self, name, mode, data=b""):
        hdr = "070701" + "".join(f"{v:08X}" for v in (
            self.ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(name) + 1, 0))
        self.ino += 1
        self.out.write(hdr.encode() + name.encode() + b"\0")
        self.out.write(b"\0" * (-self.out.tell() % 4))
        self.out.write(data)
        self.out.write(b"\0" * (-self.out.tell() % 4))

    def dir(self, name):
        self._entry(name, 0o040755)

    def file(self, name, data, mode=0o644):
        self._entry(name, 0o100000 | mode, data)

    def finish(self):
        self._entry("TRAILER!!!", 0)
        return self.out.getvalue()


def build_initramfs(cache_dir, kver, busybox):
    order, missing = module_order(kver)
    if missing:
        return None, f"kernel {kver} has no module {', '.join(missing)}"
    key = hashlib.sha256()
    for part in [INIT, kver, busybox, str(os.stat(busybox).st_mtime_ns)] + order:
        key.update(part.encode() + b"\0")
    os.makedirs(cache_dir, exist_ok=True)
    path = os.path.join(cache_dir, f"initramfs-{kver}-{key.hexdigest()[:12]}.cpio.gz")
    if os.path.exists(path):
        return path, None
    c = Cpio()
    for d in ("bin", "dev", "proc", "sys", "lib", "lib/modules"):
        c.dir(d)
    with open(busybox, "rb") as f:
        c.file("bin/busybox", f.read(), 0o755)
    names = []
    for rel in order:
        name = re.sub(r"\.ko(\.(xz|zst|gz))?$", "", os.path.basename(rel))
        c.file(f"lib/modules/{name}.ko", read_module(f"/lib/modules/{kver}/{rel}"))
        names.append(name)
    c.file("modules.order", ("\n".join(names) + "\n").encode())
    c.file("init", INIT.encode(), 0o755)
    fd, tmp = tempfile.mkstemp(dir=cache_dir)
    with os.fdopen(fd, "wb") as f:
        f.write(gzip.compress(c.finish(), compresslevel=1))
    os.replace(tmp, path)  # two tests may build it at once: last one wins, both are identical
    return path, None


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache-dir", default=os.path.join(tempfile.gettempdir(), "canfleet-vm"))
    ap.add_argument("--vcan", type=int, default=2, help="vcan interfaces to create (default 2)")
    ap.add_argument("--timeout", type=float, default=300, help="seconds before the VM is killed")
    ap.add_argument("--memory", default="1024")
    ap.add_argument("--require", action="store_true", help="missing qemu/kernel is a failure, not a skip")
    ap.add_argument("--log", help="write the serial console here (default: CACHE_DIR/last-console.log)")
    ap.add_argument("--share", action="append", default=[], metavar="DIR",
                    help="a host directory the command needs, seen read-only at the same path (repeatable)")
    ap.add_argument("command", help="an executable of the host's file system")
    ap.add_argument("args", nargs=argparse.REMAINDER)
    a = ap.parse_args()

    try:
        shares = plan_shares(a.share, os.getcwd(), a.command)
    except Unshareable as e:
        print(f"vmrun: {e}", file=sys.stderr)
        return 2

    qemu = shutil.which(QEMU)
    if not qemu:
        skip_or_fail(a.require, f"{QEMU} not found (Debian package qemu-system-x86)")
    kernel = find_kernel()
    if not kernel:
        skip_or_fail(a.require, "no readable /boot/vmlinuz-* with /lib/modules (Debian package linux-image-amd64)")
    kver, vmlinuz = kernel
    busybox = next((b for b in BUSYBOX_CANDIDATES if os.path.exists(b) and is_static_elf(b)), None)
    if not busybox:
        skip_or_fail(a.require, "no static busybox (Debian package busybox-static)")
    initrd, why = build_initramfs(a.cache_dir, kver, busybox)
    if not initrd:
        skip_or_fail(a.require, why)

    with tempfile.TemporaryDirectory(prefix="vmrun-") as result:
        # the host's / is the guest's /: the same paths name the same files in there
        with open(os.path.join(result, "command.sh"), "w") as f:
            f.write(f"cd {shlex.quote(os.getcwd())} || exit 125\n")
            f.write(f"exec {shlex.join([os.path.abspath(a.command)] + a.args)}\n")
        with open(os.path.join(result, "vcan"), "w") as f:
            f.write(str(a.vcan))
        with open(os.path.join(result, "shares"), "w") as f:
            f.writelines(f"share{i} {d}\n" for i, d in enumerate(shares))
        log = a.log or os.path.join(a.cache_dir, "last-console.log")
        # multidevs=remap: the host's / spans several file systems (/, /proc, /sys...) whose inode
        # numbers collide; without it the guest's 9p takes /proc and /sys for the same directory
        cmd = [qemu, "-machine", "accel=tcg", "-m", a.memory, "-smp", "1", "-nodefaults", "-no-reboot",
               "-display", "none", "-serial", "stdio", "-monitor", "none",
               "-kernel", vmlinuz, "-initrd", initrd,
               "-append", "console=ttyS0 quiet panic=-1 rdinit=/init",
               "-virtfs", "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap",
               "-virtfs", f"local,path={qemu_path(result)},mount_tag=result,security_model=none"]
        for i, d in enumerate(shares):
            cmd += ["-virtfs", f"local,path={qemu_path(d)},mount_tag=share{i},security_model=none,readonly=on,"
                               "multidevs=remap"]
        start = time.monotonic()
        with open(log, "wb") as console:
            try:
                subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=console, stderr=subprocess.STDOUT,
                               timeout=a.timeout, check=False)
            except subprocess.TimeoutExpired:
                print(f"vmrun: the VM did not power off within {a.timeout:.0f} s (console: {log})",
                      file=sys.stderr)
                return 1
        elapsed = time.monotonic() - start
        out = os.path.join(result, "output")
        if os.path.exists(out):
            with open(out, errors="replace") as f:
                sys.stdout.write(f.read())
        try:
            with open(os.path.join(result, "rc")) as f:
                rc = int(f.read().strip())
        except (OSError, ValueError):
            with open(log, errors="replace") as f:
                sys.stderr.write(f.read()[-4000:])
            print(f"vmrun: the command left no exit code (console above, {log})", file=sys.stderr)
            return 1
        print(f"vmrun: kernel {kver}, exit {rc}, {elapsed:.1f} s from qemu start to poweroff", file=sys.stderr)
        return rc


if __name__ == "__main__":
    sys.exit(main())
