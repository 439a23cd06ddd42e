//! What a user does, end to end, in real bash, zsh and fish: load the hook, create an environment
//! with (a py-rattler based) conda, activate it, install into it, deactivate, list, save and
//! unmount, run a batch command, convert an existing environment, use an archive made by the old
//! bash tool (fuse-zip), and TAB-complete environment names. The mount root has quotes and `$` in
//! its name, so every path the shells see must be quoted right.

mod common;

use std::process::Command;

use common::conda::{EnvWorld, Sh};

/// Quotes and a dollar sign: what breaks unquoted shell code (spaces would break conda's shebangs).
const AWKWARD_ROOT: &str = "mnt'root\"$HOME";

/// An environment directory made by conda outside conda-fuse (with a console script from a wheel).
fn plain_env(w: &EnvWorld) -> std::path::PathBuf {
    // Beside the shared home: conda's own installer cannot write on every network filesystem.
    let prefix = w.world.local_path("miniforge/envs/tools");
    w.create_demo(&prefix, &["wheel"]);
    prefix
}

fn story(w: &EnvWorld, shell: Sh) {
    w.old_tool_archive();
    let plain = plain_env(w);
    let pack = format!("conda-fuse pack '{}' --name tools", plain.display());
    let binary_check = "python -c \"import os; d = open(os.environ['CONDA_PREFIX'] + '/lib/libcfdemo.bin', 'rb').read(); print('binary=' + d.split(b'\\0')[1].decode())\"";
    let steps = [
        "conda-fuse-create demo python cf-prefix-demo -y",
        "conda-fuse-env-list",
        "conda-fuse-activate demo",
        "echo \"active=$CONDA_FUSE_ACTIVE_ENV demo=$CF_DEMO_ACTIVE\"",
        "python -c \"import sys; print('sys.prefix=' + sys.prefix)\"",
        "cf-hello",
        "conda-fuse-install demo six -y",
        "python -c \"import six; print('six=' + six.__version__)\"",
        "echo notes > \"$CONDA_PREFIX/notes.txt\"",
        "conda-fuse-commit demo",
        "conda-fuse-env-list",
        "conda-fuse-deactivate",
        "echo \"after=$(printenv CONDA_PREFIX) demo-after=$(printenv CF_DEMO_ACTIVE)\"",
        "conda-fuse-unmount demo",
        "conda-fuse-env-list",
        "conda-fuse run demo -- python -c \"import six, os; print('run=' + six.__version__ + ' ' + os.environ['CF_DEMO_ACTIVE'])\"",
        &pack,
        "conda-fuse-activate tools",
        "cf-hello",
        "wheel version",
        binary_check,
        "conda-fuse-unmount tools",
        "conda-fuse-activate old",
        "cf-hello",
        "conda-fuse-unmount old",
        "conda-fuse-env-list",
    ];
    let (ok, out) = w.shell(shell, &steps);
    assert!(ok, "{shell:?} story failed:\n{out}");
    let prefix = |name: &str| w.mounts.join(name).join(name).display().to_string();
    let expect = [
        "created 'demo'".to_string(),
        "active=demo demo=yes".to_string(),
        format!("sys.prefix={}", prefix("demo")),
        format!("hello from {}", prefix("demo")),
        "six=1.17.0".to_string(),
        "rw (pid".to_string(),
        "after= demo-after=".to_string(),
        "run=1.17.0 yes".to_string(),
        format!("hello from {}", prefix("tools")),
        "wheel 0.45.1".to_string(),
        format!("binary={}/lib", prefix("tools")),
        format!("hello from {}", prefix("old")),
    ];
    let mut at = 0;
    for e in &expect {
        match out[at..].find(e.as_str()) {
            Some(i) => at += i + e.len(),
            None => panic!("{shell:?}: expected {e:?} (in this order) in:\n{out}"),
        }
    }
    // Everything is saved and unmounted. The mount points stay, empty (on a shared home another
    // node may have a mount on one of them).
    let list = w.cf(&["env-list", "--json"]).output().unwrap();
    let rows: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    let names: Vec<_> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["demo", "old", "tools"]);
    assert!(
        rows.as_array()
            .unwrap()
            .iter()
            .all(|r| r["mounted"].is_null() && r["unsaved_changes"] == 0),
        "{rows:#}"
    );
    for point in std::fs::read_dir(&w.mounts).unwrap() {
        let point = point.unwrap().path();
        assert!(
            !common::is_mounted(&point),
            "{} still mounted",
            point.display()
        );
        assert!(
            std::fs::read_dir(&point).unwrap().next().is_none(),
            "{} is not empty",
            point.display()
        );
    }
    // pack keeps the files as they are: the archive holds the prefix the env was installed at,
    // and its mount served them rewritten (the story ran them).
    let packed = Command::new("unzip")
        .arg("-p")
        .arg(w.archives.join("tools.zip"))
        .arg("tools/etc/cf-prefix-demo/prefix.txt")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&packed.stdout),
        format!("prefix={0}\nlib={0}/lib\n", plain.display())
    );
    let listing = Command::new("unzip")
        .arg("-l")
        .arg(w.archives.join("demo.zip"))
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout);
    assert!(
        listing.contains("demo/lib/python3")
            && listing.contains("/site-packages/six.py")
            && listing.contains("demo/notes.txt"),
        "{listing}"
    );

    // A batch job that changes the env, a remove, the hook added to the rc file; then rm takes
    // the archive and its snapshots (the mount point stays), and nothing is left in the upper
    // layers (a clean unmount leaves no inode there, on a network filesystem too).
    let hook = format!("conda-fuse shell-hook {} --add-to-rc", shell.name());
    let (ok, out) = w.shell(
        shell,
        &[
            "conda-fuse run --write demo -- python -c \"import os; open(os.environ['CONDA_PREFIX'] + '/job.txt', 'w').write('job')\"",
            "conda-fuse-remove demo six -y",
            "conda-fuse run demo -- python -c \"import os; print('job=' + open(os.environ['CONDA_PREFIX'] + '/job.txt').read())\"",
            "conda-fuse-history demo",
            &hook,
            "conda-fuse-rm demo --yes",
            "conda-fuse-env-list",
        ],
    );
    assert!(ok, "{shell:?}: {out}");
    for expected in ["job=job", "-six 1.17.0", "deleted 'demo'"] {
        assert!(
            out.contains(expected),
            "{shell:?}: want {expected:?} in:\n{out}"
        );
    }
    assert!(!w.archives.join("demo.zip").exists());
    assert!(!w.archives.join(".snapshots/demo.zip").exists());
    let upper = w.world.state_dir().join("upper");
    let left: Vec<_> = std::fs::read_dir(&upper)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(
        left.is_empty(),
        "{shell:?}: left in {}: {left:?}",
        upper.display()
    );
}

#[test]
fn bash_story() {
    if common::skip_without_mounts() {
        return;
    }
    story(&EnvWorld::new(AWKWARD_ROOT), Sh::Bash);
}

#[test]
fn zsh_story() {
    if common::skip_without_mounts() {
        return;
    }
    story(&EnvWorld::new(AWKWARD_ROOT), Sh::Zsh);
}

#[test]
fn fish_story() {
    if common::skip_without_mounts() {
        return;
    }
    story(&EnvWorld::new(AWKWARD_ROOT), Sh::Fish);
}

/// The same story with the home directory (archives, state, mount root) on a network filesystem.
#[test]
fn bash_story_with_the_home_on_a_network_filesystem() {
    if common::skip_without_mounts() {
        return;
    }
    let Some(world) = common::World::on_netfs() else {
        return;
    };
    story(&EnvWorld::in_world(world, AWKWARD_ROOT), Sh::Bash);
}

/// Environment names complete on TAB for the functions and for `conda-fuse` subcommands that take
/// one; subcommands and options complete from clap's scripts.
#[test]
fn tab_completion_in_every_shell() {
    if common::skip_without_mounts() {
        return;
    }
    let w = EnvWorld::new("envs");
    std::fs::create_dir_all(&w.archives).unwrap();
    let empty = w.world.path("empty");
    std::fs::create_dir_all(&empty).unwrap();
    for n in ["data", "dev", "ml"] {
        let out = w
            .cf(&["pack", empty.to_str().unwrap(), "--name", n])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let bash = [
        "f=$(complete -p conda-fuse-activate | sed -E 's/.*-F ([^ ]+).*/\\1/')",
        "COMP_WORDS=(conda-fuse-activate d); COMP_CWORD=1; $f conda-fuse-activate d conda-fuse-activate; echo \"C1=${COMPREPLY[*]}\"",
        "COMP_WORDS=(conda-fuse-unmount ml --d); COMP_CWORD=2; $f conda-fuse-unmount --d ml; echo \"C2=${COMPREPLY[*]}\"",
        "g=$(complete -p conda-fuse | sed -E 's/.*-F ([^ ]+).*/\\1/')",
        "COMP_WORDS=(conda-fuse run ''); COMP_CWORD=2; $g conda-fuse '' run; echo \"C3=${COMPREPLY[*]}\"",
        "COMP_WORDS=(conda-fuse env-l); COMP_CWORD=1; $g conda-fuse env-l conda-fuse; echo \"C4=${COMPREPLY[*]}\"",
        "COMP_WORDS=(conda-fuse unmount ml --di); COMP_CWORD=3; $g conda-fuse --di ml; echo \"C5=${COMPREPLY[*]}\"",
        "COMP_WORDS=(conda-fuse rollback m); COMP_CWORD=2; $g conda-fuse m rollback; echo \"C6=${COMPREPLY[*]}\"",
        "COMP_WORDS=(conda-fuse history ''); COMP_CWORD=2; $g conda-fuse '' history; echo \"C7=${COMPREPLY[*]}\"",
        "COMP_WORDS=(conda-fuse kernel install d); COMP_CWORD=3; $g conda-fuse d install; echo \"C8=${COMPREPLY[*]}\"",
    ];
    let (ok, out) = w.shell(Sh::Bash, &bash);
    assert!(ok, "{out}");
    for want in [
        "C1=data dev\n",
        "C2=--discard\n",
        "C3=data dev ml\n",
        "C4=env-list\n",
        "C5=--discard\n",
        "C6=ml\n",
        "C7=data dev ml\n",
        "C8=data dev\n",
    ] {
        assert!(out.contains(want), "bash: want {want:?} in:\n{out}");
    }
    // zsh: the registrations compinit made, and our completers with compadd recording candidates.
    let zsh = [
        "echo \"R1=$_comps[conda-fuse-activate] R2=$_comps[conda-fuse]\"",
        "compadd() { print -r -- \"ADD ${(j: :)@[2,-1]}\" }",
        "words=(conda-fuse-activate d); CURRENT=2; PREFIX=d; _conda_fuse_function",
        "words=(conda-fuse-unmount ml --); CURRENT=3; PREFIX=--; _conda_fuse_function",
        "words=(conda-fuse status ''); CURRENT=3; PREFIX=''; _conda_fuse_cli",
        "words=(conda-fuse diff ''); CURRENT=3; PREFIX=''; _conda_fuse_cli",
        "words=(conda-fuse kernel install ''); CURRENT=4; PREFIX=''; _conda_fuse_cli",
    ];
    let (ok, out) = w.shell(Sh::Zsh, &zsh);
    assert!(ok, "{out}");
    for want in [
        "R1=_conda_fuse_function R2=_conda_fuse_cli",
        "ADD data dev ml\n",
        "ADD --discard --lazy --help\n",
    ] {
        assert!(out.contains(want), "zsh: want {want:?} in:\n{out}");
    }
    assert_eq!(out.matches("ADD data dev ml").count(), 4, "{out}");
    // fish: its own completion engine.
    let fish = [
        "complete -C 'conda-fuse-activate d' | string join ' ' | string replace -r '^' 'F1='",
        "complete -C 'conda-fuse rm ' | string join ' ' | string replace -r '^' 'F2='",
        "complete -C 'conda-fuse env-l' | string replace -r '\\t.*' '' | string replace -r '^' 'F3='",
        "complete -C 'conda-fuse-unmount ml --di' | string replace -r '\\t.*' '' | string replace -r '^' 'F4='",
        "complete -C 'conda-fuse prune d' | string join ' ' | string replace -r '^' 'F5='",
        "complete -C 'conda-fuse kernel remove m' | string join ' ' | string replace -r '^' 'F6='",
    ];
    let (ok, out) = w.shell(Sh::Fish, &fish);
    assert!(ok, "{out}");
    for want in [
        "F1=data dev\n",
        "F2=data dev ml\n",
        "F3=env-list\n",
        "F4=--discard\n",
        "F5=data dev\n",
        "F6=ml\n",
    ] {
        assert!(out.contains(want), "fish: want {want:?} in:\n{out}");
    }
}
