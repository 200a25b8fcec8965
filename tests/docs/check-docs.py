#!/usr/bin/python3
"""Checks of the conventional pieces: the man pages render without a groff warning and name every
command and option the programs' own --help lists; meson install puts pages and completion where
man and bash look; the bash completion loads and completes commands, subcommands and options
(again: every one --help lists); docs/design.md's sections exist wherever the code points at them.

    check-docs.py man BUILDDIR SRCDIR      check-docs.py install BUILDDIR
    check-docs.py completion BUILDDIR SRCDIR      check-docs.py refs SRCDIR
"""
import os
import re
import subprocess
import sys
import tempfile

PAGES = {"canfleetd.8": "daemon/canfleetd", "canfleetctl.1": "client/canfleetctl",
         "canfleet-nodesim.1": "firmware/host/canfleet-nodesim", "canfleetd.conf.5": None}


def fail(msg):
    print(f"FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def run(argv, **kw):
    return subprocess.run(argv, capture_output=True, text=True, **kw)


def options_of(text):
    """The long options a help text shows."""
    return set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", text))


def ctl_commands(builddir):
    """canfleetctl's commands (from --help) with each one's --help text (image/bundle: per subcommand)."""
    ctl = os.path.join(builddir, "client/canfleetctl")
    top = run([ctl, "--help"]).stdout
    if "Commands:" not in top:
        fail(f"{ctl} --help has no 'Commands:' list to check the man page and completion against:\n{top}")
    block = top.split("Commands:", 1)[1].split("\n\n", 1)[0]
    commands = [l.split()[0] for l in block.splitlines() if l.strip()]
    helps = {"": top}
    for c in commands:
        if c == "help":
            continue
        helps[c] = run([ctl, c, "--help"]).stdout
    return commands, helps


def render(page):
    env = dict(os.environ, MANWIDTH="80", LC_ALL="C.UTF-8")
    r = run(["man", "--warnings", "-l", page], env=env)
    return r.returncode, r.stdout, r.stderr


def check_man(builddir, srcdir):
    for page, program in PAGES.items():
        path = os.path.join(builddir, "man", page)
        rc, out, err = render(path)
        if rc != 0 or err.strip():
            fail(f"man --warnings -l {path}: exit {rc}, warnings:\n{err}")
        name = page.rsplit(".", 1)[0]
        for heading in ("NAME", "SYNOPSIS", "DESCRIPTION", "SEE ALSO"):
            if not re.search(rf"^{heading}$", out, re.M):
                fail(f"{page}: no {heading} section")
        if not re.search(rf"^\s+{re.escape(name)}\s+-\s", out, re.M):
            fail(f"{page}: the NAME line does not start with {name}")
        long_lines = [l for l in out.splitlines() if len(l) > 80]
        if long_lines:
            fail(f"{page}: lines wider than 80 columns at MANWIDTH=80: {long_lines[:3]}")
        if program:
            help_text = run([os.path.join(builddir, program), "--help"]).stdout
            missing = options_of(help_text) - options_of(out)
            if missing:
                fail(f"{page}: options of {program} --help not in the page: {sorted(missing)}")
    # canfleetctl(1): every command and every option of every command's --help
    _, ctl_page, _ = render(os.path.join(builddir, "man", "canfleetctl.1"))
    commands, helps = ctl_commands(builddir)
    synopsis = re.search(r"^SYNOPSIS$(.*?)^DESCRIPTION$", ctl_page, re.M | re.S)
    for c in commands:
        if not re.search(rf"\b{c}\b", ctl_page):
            fail(f"canfleetctl(1) does not describe the command {c}")
        if c != "help" and not (synopsis and re.search(rf"^\s+canfleetctl {c}\b", synopsis.group(1), re.M)):
            fail(f"canfleetctl(1): the command {c} is not in the SYNOPSIS")
    for c, text in helps.items():
        # the fleet commands' help fits an 80-column terminal, as their tables do
        if c in ("", "status", "nodes", "node", "scan", "update", "jobs", "watch", "cancel"):
            wide = [l for l in text.splitlines() if len(l) > 79]
            if wide:
                fail(f"canfleetctl {c} --help: lines wider than 79 columns: {wide[:3]}")
        missing = options_of(text) - options_of(ctl_page)
        if missing:
            fail(f"canfleetctl(1): options of 'canfleetctl {c} --help' missing: {sorted(missing)}")
    # canfleetd.conf(5): every key etc/README.md documents
    _, conf_page, _ = render(os.path.join(builddir, "man", "canfleetd.conf.5"))
    with open(os.path.join(srcdir, "etc", "README.md")) as f:
        keys = set(re.findall(r"^\| `([a-z_]+)`(?:, `([a-z_]+)`)?", f.read(), re.M))
    for pair in keys:
        for k in filter(None, pair):
            if not re.search(rf"\b{k}\b", conf_page):
                fail(f"canfleetd.conf(5) does not describe the key {k} of etc/README.md")
    print(f"man ok ({len(PAGES)} pages)")


def check_install(builddir):
    with tempfile.TemporaryDirectory() as dest:
        r = run(["meson", "install", "-C", builddir, "--destdir", dest, "--no-rebuild", "--quiet"])
        if r.returncode != 0:
            fail(f"meson install failed:\n{r.stdout}{r.stderr}")
        found = set()
        for top, _, files in os.walk(dest):
            found.update("/" + os.path.relpath(os.path.join(top, f), dest) for f in files)
        wanted = ["share/man/man8/canfleetd.8", "share/man/man1/canfleetctl.1",
                  "share/man/man1/canfleet-nodesim.1", "share/man/man5/canfleetd.conf.5",
                  "share/bash-completion/completions/canfleetctl"]
        for w in wanted:
            hits = [p for p in found if p.endswith("/" + w)]
            if len(hits) != 1:
                fail(f"meson install: …/{w} installed {len(hits)} times; man pages: "
                     f"{sorted(p for p in found if '/man/' in p or 'completion' in p)}")
            if w.startswith("share/man/"):
                # man finds the page by name in the installed tree
                manroot = dest + hits[0].rsplit("/man/", 1)[0] + "/man"
                name, section = os.path.basename(w).rsplit(".", 1)
                r = run(["man", "-M", manroot, "-w", section, name])
                if r.returncode != 0 or not r.stdout.strip().startswith(manroot):
                    fail(f"man -M {manroot} -w {section} {name} does not find the installed page: {r.stderr}")
                with open(dest + hits[0]) as f:
                    if "@VERSION@" in f.read():
                        fail(f"{hits[0]}: @VERSION@ not filled in")
    print("install ok")


BASH_DRIVER = r'''
source "$1" || exit 9
complete -p canfleetctl || exit 8
t() { # the line up to the cursor, as bash gives it: COMP_LINE/COMP_POINT and the split words
        COMP_LINE=$1 COMP_POINT=${#1}
        read -ra COMP_WORDS <<<"$1"
        COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
        [[ $1 == *" " ]] && COMP_WORDS+=("") && COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
        COMPREPLY=()
        _canfleetctl canfleetctl "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
        printf '%s\t%s\n' "$1" "${COMPREPLY[*]}"
}
while IFS= read -r line; do t "$line"; done
'''


def complete(script, lines, path_dir=None):
    env = dict(os.environ)
    if path_dir:
        env["PATH"] = path_dir + ":" + env["PATH"]
    r = run(["bash", "--norc", "--noprofile", "-c", BASH_DRIVER, "bash", script], input="\n".join(lines) + "\n",
            env=env)
    if r.returncode != 0:
        fail(f"bash could not load {script} (exit {r.returncode}):\n{r.stderr}")
    if r.stderr.strip():
        fail(f"completion printed errors:\n{r.stderr}")
    out = {}
    for l in r.stdout.splitlines():
        if "\t" in l:
            k, v = l.split("\t", 1)
            out[k] = v.split()
    return out


def check_completion(builddir, srcdir):
    script = os.path.join(srcdir, "completion", "canfleetctl")
    commands, helps = ctl_commands(builddir)
    with tempfile.TemporaryDirectory() as tmp:
        # no daemon: canfleetctl fails fast (no bus), names complete to nothing and nothing breaks
        ctl = os.path.join(tmp, "canfleetctl")
        os.symlink(os.path.abspath(os.path.join(builddir, "client/canfleetctl")), ctl)
        os.environ["DBUS_SYSTEM_BUS_ADDRESS"] = f"unix:path={tmp}/no-bus"
        lines = ["canfleetctl ", "canfleetctl up", "canfleetctl image ", "canfleetctl bundle v",
                 "canfleetctl update app.img --node "]
        for c, text in helps.items():
            if c in ("image", "bundle"):
                for sub in re.findall(rf"canfleetctl {c} (\w+)", text):
                    lines.append(f"canfleetctl {c} {sub} --")
            elif c:
                lines.append(f"canfleetctl {c} --")
        got = complete(script, lines, tmp)
    if sorted(got.get("canfleetctl ", [])) != sorted(commands):
        fail(f"commands complete to {got.get('canfleetctl ')}, canfleetctl --help lists {commands}")
    if got.get("canfleetctl up") != ["update"]:
        fail(f"'canfleetctl up' completes to {got.get('canfleetctl up')}")
    if sorted(got.get("canfleetctl image ", [])) != ["inspect", "pack"]:
        fail(f"'canfleetctl image ' completes to {got.get('canfleetctl image ')}")
    if got.get("canfleetctl bundle v") != ["verify"]:
        fail(f"'canfleetctl bundle v' completes to {got.get('canfleetctl bundle v')}")
    if got.get("canfleetctl update app.img --node ") != []:
        fail(f"without a daemon --node completes to {got.get('canfleetctl update app.img --node ')}")
    # every option a command's --help shows is offered (image/bundle: the subcommand's part of it)
    for c, text in helps.items():
        if not c:
            continue
        if c in ("image", "bundle"):
            for sub in re.findall(rf"canfleetctl {c} (\w+)", text):
                section = re.search(rf"(?ms)^{sub} .*?(?=^\w|\Z)", text)
                want = options_of(section.group(0) if section else "") - {"--json"} | (
                    {"--json"} if "--json" in re.findall(rf"canfleetctl {c} {sub}[^\n]*", text)[0] else set())
                have = set(got.get(f"canfleetctl {c} {sub} --", []))
                if not want <= have:
                    fail(f"'canfleetctl {c} {sub} --' offers {sorted(have)}, --help shows {sorted(want)}")
        else:
            want = options_of(text)
            have = set(got.get(f"canfleetctl {c} --", []))
            if not want <= have:
                fail(f"'canfleetctl {c} --' offers {sorted(have)}, its --help shows {sorted(want)}")
    print(f"completion ok ({len(got)} contexts)")


def check_refs(srcdir):
    """Every 'docs/design.md §N' points at a section N of docs/design.md; nothing points at a DESIGN.md."""
    with open(os.path.join(srcdir, "docs", "design.md")) as f:
        sections = set(re.findall(r"^## (\d+)\. ", f.read(), re.M))
    known = set()
    bad = []
    refs = 0
    for top, dirs, files in os.walk(srcdir):
        dirs[:] = [d for d in dirs if not d.startswith((".", "build", "_demo", "subprojects"))]
        for name in files:
            path = os.path.join(top, name)
            rel = os.path.relpath(path, srcdir)
            try:
                with open(path, encoding="utf-8") as f:
                    text = f.read()
            except (UnicodeDecodeError, OSError):
                continue
            if rel == "tests/docs/check-docs.py":
                continue
            if "DESIGN.md" in text and rel not in known:
                bad.append(f"{rel}: refers to DESIGN.md")
            for n in re.findall(r"design\.md §(\d+)", text):
                refs += 1
                if n not in sections:
                    bad.append(f"{rel}: docs/design.md §{n} does not exist")
    if bad:
        fail("references:\n  " + "\n  ".join(bad))
    print(f"refs ok ({refs} references to {len(sections)} sections)")


def main():
    what, args = sys.argv[1], sys.argv[2:]
    {"man": check_man, "install": check_install, "completion": check_completion, "refs": check_refs}[what](*args)


if __name__ == "__main__":
    main()
