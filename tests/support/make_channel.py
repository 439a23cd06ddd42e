#!/usr/bin/env python3
"""Builds a small local conda channel for the tests (no conda channel is reachable from CI).

    make_channel.py CHANNEL_DIR WHEEL_DIR

Packages (linux-64, made with conda-package-handling, indexed with py-rattler's index_fs):
- python: this interpreter's own CPython (executable, libpython if shared, standard library
  without tests and caches), as version X.Y.Z of the running interpreter;
- six, idna, packaging, wheel: converted from the wheels in WHEEL_DIR (pip download fills it);
  console scripts become bin/ scripts whose shebang holds conda's prefix placeholder;
- cf-prefix-demo: files with a text placeholder (a script, a config file), a binary placeholder
  (NUL-padded C strings, as conda-build makes them) and activate.d / deactivate.d scripts.
"""

import asyncio
import configparser
import hashlib
import json
import os
import shutil
import sys
import sysconfig
import tempfile
import zipfile
from pathlib import Path

from conda_package_handling import api as cph
from rattler import index

PLACEHOLDER = "/opt/anaconda1anaconda2anaconda3"
# conda-build's binary placeholders are long so that any real prefix fits when conda pads them.
LONG_PLACEHOLDER = "/opt/cf_build_env_" + "placehold_" * 20
PY = f"{sys.version_info.major}.{sys.version_info.minor}"
PY_VERSION = ".".join(map(str, sys.version_info[:3]))
PY_DEP = f"python >={PY},<{sys.version_info.major}.{sys.version_info.minor + 1}"
SKIP_STDLIB = {"site-packages", "dist-packages", "test", "tests", "idlelib", "tkinter", "turtledemo",
               "lib2to3", "ensurepip", "__pycache__", "pydoc_data"}


def sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def build(out_dir, name, version, depends, root, placeholders=None, build="0"):
    """Packs the files under `root` as NAME-VERSION-BUILD.conda with its info/ metadata.
    `placeholders` maps relative paths to (placeholder, "text"|"binary")."""
    placeholders = placeholders or {}
    info = root / "info"
    info.mkdir(exist_ok=True)
    files = sorted(str(p.relative_to(root)) for p in root.rglob("*")
                   if (p.is_file() or p.is_symlink()) and not str(p.relative_to(root)).startswith("info/"))
    paths = []
    for rel in files:
        p = root / rel
        entry = {"_path": rel}
        if p.is_symlink():
            entry.update(path_type="softlink", sha256=hashlib.sha256(os.readlink(p).encode()).hexdigest(),
                         size_in_bytes=len(os.readlink(p)))
        else:
            entry.update(path_type="hardlink", sha256=sha256(p), size_in_bytes=p.stat().st_size)
        if rel in placeholders:
            ph, mode = placeholders[rel]
            entry.update(prefix_placeholder=ph, file_mode=mode)
        paths.append(entry)
    (info / "paths.json").write_text(json.dumps({"paths": paths, "paths_version": 1}, indent=1))
    (info / "files").write_text("".join(f + "\n" for f in files))
    if placeholders:
        (info / "has_prefix").write_text("".join(f"{ph} {mode} {rel}\n" for rel, (ph, mode) in placeholders.items()))
    (info / "index.json").write_text(json.dumps({
        "name": name, "version": version, "build": build, "build_number": 0, "depends": depends,
        "subdir": "linux-64", "platform": "linux", "arch": "x86_64", "license": "MIT",
        "timestamp": 1700000000000,
    }, indent=1))
    out_dir.mkdir(parents=True, exist_ok=True)
    cph.create(str(root), files + [f"info/{f}" for f in os.listdir(info)], f"{name}-{version}-{build}.conda",
               out_folder=str(out_dir))


def relative_runpath(exe, libdir):
    """Points the interpreter's RUNPATH (this machine's LIBDIR, maybe under a home other users
    cannot enter) at the env's own lib/, as conda's python has it: the string rewritten in place,
    NUL-padded, the way conda relocates binaries."""
    old, new = libdir.encode() + b"\0", b"$ORIGIN/../lib"
    data = exe.read_bytes()
    if libdir and old in data and len(new) < len(old):
        exe.write_bytes(data.replace(old, new.ljust(len(old), b"\0"), 1))


def python_package(out_dir, work):
    root = work / "python"
    base = Path(sys.base_prefix)
    exe = Path(os.path.realpath(sys._base_executable))
    (root / "bin").mkdir(parents=True)
    shutil.copy2(exe, root / "bin" / f"python{PY}")
    relative_runpath(root / "bin" / f"python{PY}", sysconfig.get_config_var("LIBDIR") or "")
    os.symlink(f"python{PY}", root / "bin" / "python3")
    os.symlink(f"python{PY}", root / "bin" / "python")
    lib = sysconfig.get_config_var("INSTSONAME") or ""
    if sysconfig.get_config_var("Py_ENABLE_SHARED") and (base / "lib" / lib).exists():
        (root / "lib").mkdir(exist_ok=True)
        shutil.copy2(base / "lib" / lib, root / "lib" / lib)
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    dest = root / "lib" / f"python{PY}"
    for dirpath, dirnames, filenames in os.walk(stdlib):
        dirnames[:] = [d for d in dirnames if d not in SKIP_STDLIB and not d.startswith("config-")]
        rel = Path(dirpath).relative_to(stdlib)
        (dest / rel).mkdir(parents=True, exist_ok=True)
        for f in filenames:
            if not f.endswith((".pyc", ".exe")):
                shutil.copy2(Path(dirpath) / f, dest / rel / f, follow_symlinks=True)
    dynload = Path(sysconfig.get_config_var("DESTSHARED") or "")
    if dynload.is_dir() and not str(dynload).startswith(str(stdlib)):
        shutil.copytree(dynload, dest / "lib-dynload", dirs_exist_ok=True)
    (dest / "site-packages").mkdir(exist_ok=True)
    build(out_dir, "python", PY_VERSION, [], root)


def wheel_package(out_dir, work, wheel):
    name, version = wheel.name.split("-")[:2]
    name = name.lower().replace("_", "-")
    root = work / name
    site = root / "lib" / f"python{PY}" / "site-packages"
    site.mkdir(parents=True)
    with zipfile.ZipFile(wheel) as z:
        z.extractall(site)
    placeholders = {}
    for ep in site.glob("*.dist-info/entry_points.txt"):
        cfg = configparser.ConfigParser()
        cfg.read(ep)
        if cfg.has_section("console_scripts"):
            (root / "bin").mkdir(exist_ok=True)
            for script, target in cfg.items("console_scripts"):
                module, func = target.split(":")
                path = root / "bin" / script
                path.write_text(f"#!{PLACEHOLDER}/bin/python{PY}\nimport sys\nfrom {module} import {func}\n"
                                f"sys.exit({func.split('.')[0]}())\n")
                path.chmod(0o755)
                placeholders[f"bin/{script}"] = (PLACEHOLDER, "text")
    build(out_dir, name, version, [PY_DEP], root, placeholders)


def demo_package(out_dir, work):
    root = work / "cf-prefix-demo"
    (root / "bin").mkdir(parents=True)
    hello = root / "bin" / "cf-hello"
    hello.write_text(f"#!{PLACEHOLDER}/bin/python{PY}\nimport sys\nprint('hello from', sys.prefix)\n")
    hello.chmod(0o755)
    (root / "etc" / "cf-prefix-demo").mkdir(parents=True)
    (root / "etc" / "cf-prefix-demo" / "prefix.txt").write_text(f"prefix={PLACEHOLDER}\nlib={PLACEHOLDER}/lib\n")
    (root / "lib").mkdir()
    # A binary with NUL-terminated strings holding the (long) placeholder, like a compiled RPATH.
    (root / "lib" / "libcfdemo.bin").write_bytes(
        b"\x7fELF\x02\x01\x01\0" + LONG_PLACEHOLDER.encode() + b"/lib\0" + b"\0" * 8
        + LONG_PLACEHOLDER.encode() + b"/share/data\0tail\0")
    for kind, sh, fish in [("activate", "export CF_DEMO_ACTIVE=yes\n", "set -gx CF_DEMO_ACTIVE yes\n"),
                           ("deactivate", "unset CF_DEMO_ACTIVE\n", "set -e CF_DEMO_ACTIVE\n")]:
        d = root / "etc" / "conda" / f"{kind}.d"
        d.mkdir(parents=True)
        (d / "cf-demo.sh").write_text(sh)
        (d / "cf-demo.fish").write_text(fish)
    build(out_dir, "cf-prefix-demo", "1.0", [PY_DEP], root, {
        "bin/cf-hello": (PLACEHOLDER, "text"),
        "etc/cf-prefix-demo/prefix.txt": (PLACEHOLDER, "text"),
        "lib/libcfdemo.bin": (LONG_PLACEHOLDER, "binary"),
    })


def main():
    channel, wheels = Path(sys.argv[1]), Path(sys.argv[2])
    subdir = channel / "linux-64"
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        python_package(subdir, work)
        for wheel in sorted(wheels.glob("*.whl")):
            wheel_package(subdir, work, wheel)
        demo_package(subdir, work)
    (channel / "noarch").mkdir(exist_ok=True)
    asyncio.run(index.index_fs(channel))
    for sub in (subdir, channel / "noarch"):
        if not (sub / "repodata.json").is_file():
            sys.exit(f"make_channel.py: index_fs wrote no {sub / 'repodata.json'}")
    print(f"channel {channel}: {sorted(p.name for p in subdir.glob('*.conda'))}", flush=True)


if __name__ == "__main__":
    main()
    # The channel is complete and checked. Interpreter shutdown is skipped: with py-rattler's
    # runtime threads still around it once ended this process with a failure status after the
    # line above (CI, no stderr), which failed every conda test for a channel that was fine.
    os._exit(0)
