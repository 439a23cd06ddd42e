#!/usr/bin/env python3
"""A small conda-compatible command for the tests, built on py-rattler (solve + install into a
prefix), for machines where conda itself cannot be installed. It understands what conda-fuse
passes through and what the tests use:

    fake_conda.py create|install|remove --prefix PREFIX [-y] [-c CHANNEL]... [--override-channels]
                  [--offline] [-q] SPEC...
    fake_conda.py --version

Channels: the -c arguments, else $FAKE_CONDA_CHANNEL. Packages are cached in $FAKE_CONDA_PKGS.
Like conda it asks "Proceed ([y]/n)?" unless -y, and `create` asks before using an existing
non-empty directory. `shell.*` subcommands are not supported (exit 2), so conda-fuse falls back to
activating by itself, as it must without conda's shell function.
"""

import asyncio
import os
import sys
from pathlib import Path

import rattler

VERSION = "fake-conda 24.1.0 (py-rattler)"


def usage(msg):
    print(f"fake_conda: {msg}", file=sys.stderr)
    sys.exit(2)


def parse(argv):
    opts = {"prefix": None, "yes": False, "channels": [], "specs": []}
    it = iter(argv)
    for a in it:
        if a in ("-p", "--prefix"):
            opts["prefix"] = next(it, None) or usage("--prefix needs a path")
        elif a.startswith("--prefix="):
            opts["prefix"] = a.split("=", 1)[1]
        elif a in ("-y", "--yes"):
            opts["yes"] = True
        elif a in ("-c", "--channel"):
            opts["channels"].append(next(it, None) or usage("-c needs a channel"))
        elif a in ("--override-channels", "--offline", "-q", "--quiet"):
            pass
        elif a.startswith("-"):
            usage(f"unknown option {a}")
        else:
            opts["specs"].append(a)
    if not opts["prefix"]:
        usage("--prefix is required")
    if not opts["channels"]:
        opts["channels"] = [os.environ["FAKE_CONDA_CHANNEL"]]
    opts["channels"] = [str(Path(c).resolve()) if os.path.isdir(c) else c for c in opts["channels"]]
    return opts


def installed(prefix):
    meta = Path(prefix) / "conda-meta"
    return [rattler.PrefixRecord.from_path(p) for p in sorted(meta.glob("*.json"))] if meta.is_dir() else []


def proceed(opts, question="Proceed ([y]/n)? "):
    if opts["yes"]:
        return
    print(question, end="", flush=True)
    answer = sys.stdin.readline().strip().lower()
    if answer not in ("", "y", "yes"):
        print("\nCondaSystemExit: Exiting.")
        sys.exit(1)


async def transact(opts, records, have):
    names = sorted(f"{r.name.normalized}-{r.version}" for r in records)
    print(f"\n## Package Plan ##\n\n  environment location: {opts['prefix']}\n")
    for n in names:
        print(f"    {n}")
    print()
    proceed(opts)
    await rattler.install(records, target_prefix=opts["prefix"], installed_packages=have,
                          cache_dir=os.environ.get("FAKE_CONDA_PKGS"), show_progress=False,
                          execute_link_scripts=False)
    print("done")


async def main(argv):
    if argv[:1] == ["--version"]:
        print(VERSION)
        return
    if not argv or argv[0].startswith("shell."):
        usage(f"unsupported: {' '.join(argv)}")
    cmd, opts = argv[0], parse(argv[1:])
    prefix = Path(opts["prefix"])
    have = installed(prefix)
    if cmd == "create":
        if prefix.exists() and any(prefix.iterdir()) and not (prefix / "conda-meta").is_dir():
            proceed(opts, f"A directory already exists at the target location '{prefix}'\nbut it is not a "
                          "conda environment.\nContinue creating environment (y/[n])? ")
        have = []
    elif cmd in ("install", "remove"):
        if not (prefix / "conda-meta").is_dir():
            print(f"EnvironmentLocationNotFound: Not a conda environment: {prefix}", file=sys.stderr)
            sys.exit(1)
    else:
        usage(f"unknown command {cmd}")
    print("Solving environment: ...working... done")
    if cmd == "remove":
        gone = {s.split("=")[0] for s in opts["specs"]}
        missing = gone - {r.name.normalized for r in have}
        if missing:
            print(f"PackagesNotFoundError: {', '.join(sorted(missing))}", file=sys.stderr)
            sys.exit(1)
        records = [r for r in have if r.name.normalized not in gone]
    else:
        specs = opts["specs"] + [r.name.normalized for r in have]
        try:
            records = await rattler.solve(sources=opts["channels"], specs=specs, platforms=["linux-64", "noarch"],
                                          locked_packages=have,
                                          virtual_packages=rattler.VirtualPackage.detect())
        except Exception as e:  # rattler's solver errors carry the explanation
            print(f"PackagesNotFoundError / UnsatisfiableError: {e}", file=sys.stderr)
            sys.exit(1)
    await transact(opts, records, have)


if __name__ == "__main__":
    code = 0
    try:
        asyncio.run(main(sys.argv[1:]))
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    sys.stdout.flush()
    sys.stderr.flush()
    # py-rattler's runtime threads may still hold the GIL machinery at interpreter shutdown, which
    # can abort the process ("PyGILState_Release ... finalizing"); leave without finalizing.
    os._exit(code)
