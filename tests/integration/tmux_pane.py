# A command in a detached tmux pane of a fixed size, read back with capture-pane: what an operator sees.
"""
Pane(fleet, argv, cols=80, rows=24) runs argv (canfleetctl with the fleet's environment) in a new tmux
server of its own (socket in the fleet's directory, no configuration file), then keeps the pane open so
that the last screen can still be read. capture() returns the visible rows; history() how many rows
scrolled off the top; exit_code() canfleetctl's exit status once it has ended (None before).
"""

import os
import shlex
import shutil
import signal
import subprocess

from harness import check, scaled


class Pane:
    def __init__(self, fleet, args, cols=80, rows=24, term="screen", name="pane"):
        check(shutil.which("tmux") is not None, "tmux is needed (scripts/setup installs it)")
        self.sock = os.path.join(fleet.dir, f"tmux-{name}.sock")
        self.exit_file = os.path.join(fleet.dir, f"{name}.exit")
        script = os.path.join(fleet.dir, f"{name}.sh")
        env = fleet.env()
        with open(script, "w") as f:
            f.write("#!/bin/sh\n")
            for k in ("DBUS_SYSTEM_BUS_ADDRESS", "LC_ALL", "PATH"):
                f.write(f"export {k}={shlex.quote(env[k])}\n")
            f.write(f"export TERM={shlex.quote(term)}\n")
            # the shell outlives a Ctrl-C meant for canfleetctl (a trapped signal is reset to the
            # default in the child; an ignored one would stay ignored there)
            f.write("trap : INT\n")
            f.write(f"{shlex.join(fleet.ctl_argv(args))}\n")
            f.write(f"echo $? > {shlex.quote(self.exit_file)}.tmp && mv {shlex.quote(self.exit_file)}.tmp "
                    f"{shlex.quote(self.exit_file)}\n")
            # the pane stays, so that its last screen can be read
            f.write("exec sleep 3600\n")
        os.chmod(script, 0o755)
        self.tmux("-f", "/dev/null", "new-session", "-d", "-x", str(cols), "-y", str(rows), "-s", name, script)
        self.target = name
        fleet.panes = getattr(fleet, "panes", []) + [self]
        self.pid = int(self.tmux("display-message", "-p", "-t", self.target, "#{pane_pid}").strip())

    def tmux(self, *args):
        p = subprocess.run(["tmux", "-S", self.sock] + list(args), capture_output=True, text=True,
                           timeout=scaled(10))
        check(p.returncode == 0, f"tmux {' '.join(args)}: {p.stderr}")
        return p.stdout

    def capture(self, join=False):
        """The pane's rows; join: wrapped lines joined into one (as the program wrote them)."""
        return self.tmux("capture-pane", "-p", *(["-J"] if join else []), "-t", self.target).split("\n")[:-1]

    def history(self):
        """Rows that scrolled off the top of the pane since it started."""
        return int(self.tmux("display-message", "-p", "-t", self.target, "#{history_size}").strip())

    def size(self):
        w, h = self.tmux("display-message", "-p", "-t", self.target, "#{pane_width} #{pane_height}").split()
        return int(w), int(h)

    def exit_code(self):
        try:
            with open(self.exit_file) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    def send_ctrl_c(self):
        self.tmux("send-keys", "-t", self.target, "C-c")

    def close(self):
        subprocess.run(["tmux", "-S", self.sock, "kill-server"], capture_output=True, timeout=scaled(10))
