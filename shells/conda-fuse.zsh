# conda-fuse 0.1.0 shell functions for zsh, printed by `conda-fuse shell-hook zsh`.
# Load them from ~/.zshrc with:  eval "$(conda-fuse shell-hook zsh)"
# Each conda-fuse-X function runs `conda-fuse X`; activate, deactivate, unmount and rm also change
# this shell (conda activate / deactivate), which a program cannot do for its parent.

conda-fuse-create() { command conda-fuse create "$@"; }
conda-fuse-commit() { command conda-fuse commit "$@"; }
conda-fuse-env-list() { command conda-fuse env-list "$@"; }
conda-fuse-paths() { command conda-fuse paths "$@"; }
conda-fuse-install() { command conda-fuse install "$@"; }
conda-fuse-remove() { command conda-fuse remove "$@"; }
conda-fuse-run() { command conda-fuse run "$@"; }
conda-fuse-pack() { command conda-fuse pack "$@"; }
conda-fuse-doctor() { command conda-fuse doctor "$@"; }
conda-fuse-status() { command conda-fuse status "$@"; }
conda-fuse-history() { command conda-fuse history "$@"; }
conda-fuse-diff() { command conda-fuse diff "$@"; }
conda-fuse-rollback() { command conda-fuse rollback "$@"; }
conda-fuse-prune() { command conda-fuse prune "$@"; }
conda-fuse-kernel() { command conda-fuse kernel "$@"; }
conda-fuse-rename() { command conda-fuse rename "$@"; }

conda-fuse-activate() {
    local __cf_prefix __cf_code
    __cf_prefix=$(command conda-fuse activate "$@") || return
    [ -n "$__cf_prefix" ] || return 1
    if [ -n "${CONDA_FUSE_ACTIVE_ENV:-}" ]; then
        conda-fuse-deactivate || return
    fi
    if (( $+functions[conda] )); then
        conda activate "$__cf_prefix" || return
        export CONDA_FUSE_ACTIVATED_BY=conda
    else
        __cf_code=$(command conda-fuse activate-script --shell zsh "$__cf_prefix") || return
        eval "$__cf_code" || return
    fi
    export CONDA_FUSE_ACTIVE_ENV="${__cf_prefix##*/}"
}

conda-fuse-deactivate() {
    local __cf_code
    if [ -z "${CONDA_FUSE_ACTIVE_ENV:-}" ]; then
        echo "conda-fuse-deactivate: no conda-fuse environment is active in this shell" >&2
        return 1
    fi
    if [ "${CONDA_FUSE_ACTIVATED_BY:-}" = conda ] && (( $+functions[conda] )); then
        conda deactivate || return
    else
        __cf_code=$(command conda-fuse deactivate-script --shell zsh) || return
        eval "$__cf_code" || return
    fi
    unset CONDA_FUSE_ACTIVE_ENV CONDA_FUSE_ACTIVATED_BY
}

# Leaves the environment named by the first non-option argument if it is the active one here, so
# that this shell does not keep using a mount that is about to go away.
__conda_fuse_leave() {
    local __cf_arg
    for __cf_arg in "$@"; do
        case $__cf_arg in -*) continue ;; esac
        if [ -n "${CONDA_FUSE_ACTIVE_ENV:-}" ] && [ "$__cf_arg" = "$CONDA_FUSE_ACTIVE_ENV" ]; then
            conda-fuse-deactivate
        fi
        return 0
    done
}

conda-fuse-unmount() {
    __conda_fuse_leave "$@"
    command conda-fuse unmount "$@"
}

conda-fuse-rm() {
    case " $* " in
        *" --force "* | *" -f "*) __conda_fuse_leave "$@" ;;
    esac
    command conda-fuse rm "$@"
}

__conda_fuse_env_names() { command conda-fuse env-list --names 2>/dev/null; }

# TAB completion: environment names for the functions, and for `conda-fuse` the subcommands and
# options (clap_complete) plus environment names where a subcommand takes one. Registered now if
# compinit has run, else right before the first prompt (compinit usually runs later in ~/.zshrc).
_conda_fuse_function() {
    local -a options
    case $words[1] in
        conda-fuse-commit) options=(--help) ;;
        conda-fuse-unmount) options=(--discard --lazy --help) ;;
        conda-fuse-status) options=(--json --help) ;;
        conda-fuse-activate) options=(--read-only --steal-lock --help) ;;
        conda-fuse-install) options=(--help) ;;
        conda-fuse-remove) options=(--help) ;;
        conda-fuse-rm) options=(--yes --force --help) ;;
        conda-fuse-rename) options=(--help) ;;
        conda-fuse-history) options=(--help) ;;
        conda-fuse-diff) options=(--help) ;;
        conda-fuse-rollback) options=(--to --help) ;;
        conda-fuse-prune) options=(--keep --help) ;;
        conda-fuse-run) options=(--write --help) ;;
    esac
    if [[ $PREFIX == -* ]]; then
        compadd -- $options
    elif (( CURRENT == 2 )); then
        compadd -- ${(f)"$(__conda_fuse_env_names)"}
    else
        _files
    fi
}

# The words between `conda-fuse` and the one being completed name the command; where that command
# takes an environment name first (clap's tree says which), the names are offered.
_conda_fuse_cli() {
    if [[ $PREFIX != -* ]]; then
        case "${(j: :)words[2,CURRENT-1]}" in
            ('commit'|'unmount'|'status'|'activate'|'install'|'remove'|'rm'|'rename'|'history'|'diff'|'rollback'|'kernel install'|'kernel remove'|'prune'|'run')
                compadd -- ${(f)"$(__conda_fuse_env_names)"}
                return ;;
        esac
    fi
    _conda-fuse "$@"
}

# clap_complete's script as it generated it; it ends by registering itself with compdef, so it is
# evaluated once compinit has run (the hook's own registrations then take conda-fuse over).
__conda_fuse_clap_completion='#compdef conda-fuse

autoload -U is-at-least

_conda-fuse() {
    typeset -A opt_args
    typeset -a _arguments_options
    local ret=1

    if is-at-least 5.2; then
        _arguments_options=(-s -S -C)
    else
        _arguments_options=(-s -C)
    fi

    local context curcontext="$curcontext" state line
    _arguments "${_arguments_options[@]}" : \
'\''-h[Print help]'\'' \
'\''--help[Print help]'\'' \
'\''-V[Print version]'\'' \
'\''--version[Print version]'\'' \
":: :_conda-fuse_commands" \
"*::: :->conda-fuse" \
&& ret=0
    case $state in
    (conda-fuse)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:conda-fuse-command-$line[1]:"
        case $line[1] in
            (pack)
_arguments "${_arguments_options[@]}" : \
'\''(--prefix-dir)--name=[Make it the environment NAME\: \$CONDA_FUSE_ARCHIVE_PATH/NAME.zip with the files under NAME/ \[default without --output\: the directory'\''\'\'''\''s name\]]:NAME:_default'\'' \
'\''-o+[Archive to write instead (written beside as NAME.tmp-*, renamed in when complete)]:OUTPUT:_files'\'' \
'\''--output=[Archive to write instead (written beside as NAME.tmp-*, renamed in when complete)]:OUTPUT:_files'\'' \
'\''--from-prefix=[The prefix the environment was installed at, if not DIR itself (it was moved); recorded so that mounts serve its files rewritten for their own]:PATH:_files'\'' \
'\''--prefix-dir=[Put entries under NAME/ inside the archive (the layout of environments by name)]:NAME:_default'\'' \
'\''--compression=[Compression method\: deflate (readable by every zip tool), zstd, or store]:COMPRESSION:(deflate zstd store)'\'' \
'\''--level=[Compression level (deflate 1-9, default 9; zstd 1-22, default 3)]:LEVEL:_default'\'' \
'\''--threads=[Compression workers (default\: cores + 2)]:THREADS:_default'\'' \
'\''--force[Replace the output archive if it exists]'\'' \
'\''-h[Print help]'\'' \
'\''--help[Print help]'\'' \
'\'':dir -- Directory to pack:_files'\'' \
&& ret=0
;;
(mount)
_arguments "${_arguments_options[@]}" : \
'\''--upper-dir=[Where writable mounts keep changes until saved \[default\: \$CONDA_FUSE_UPPER_DIR, else ~/.local/state/conda-fuse/upper\]]:DIR:_files'\'' \
'\''--compression=[How saves compress new data\: deflate (level 6; readable by every zip tool), zstd, or store]:COMPRESSION:(deflate zstd store)'\'' \
'\''--cache-size=[Memory for decompressed entries, in MiB]:MIB:_default'\'' \
'\''--spill-size=[Disk for decompressed large entries (in TMPDIR), in MiB]:MIB:_default'\'' \
'\''--threads=[Threads serving requests (default\: 2 per core, at least 4)]:THREADS:_default'\'' \
'\''--read-only[Serve the archive read-only (no writer lock\: any number of these, on any host)]'\'' \
'\''--foreground[Stay in the foreground (logs to the terminal; Ctrl-C unmounts)]'\'' \
'\''--allow-other[Let other users of this host use the mount (non-root users need user_allow_other in /etc/fuse.conf); group- and other-writable bits of archive entries are then not served]'\'' \
'\''--keep-owners[Serve the owners the archive records instead of showing every entry as yours (always so for root)]'\'' \
'\''(--read-only)--steal-lock[Take the writer lock even though its holder (on another node) looks alive\: for a node that is down but whose heartbeat has not gone stale yet. The holder, if it still runs, stops accepting changes at its next heartbeat]'\'' \
'\''-h[Print help]'\'' \
'\''--help[Print help]'\'' \
'\'':archive -- Archive to serve:_files'\'' \
'\'':mountpoint -- Empty directory to mount it on:_files'\'' \
&& ret=0
;;
(commit)
_arguments "${_arguments_options[@]}" : \
'\''-h[Print help]'\'' \
'\''--help[Print help]'\'' \
'\'':target -- Environment name, or mount point:_default'\'' \
&& ret=0
;;
(unmount)
_arguments "${_arguments_options[@]}" : \
'\''--discard[Throw away the changes made since the last save instead of saving them]'\'' \
'\''--lazy[Detach even if busy; the daemon exits once the last user is gone]'\'' \
'\''-h[Print help]'\'' \
'\''--help[Print help]'\'' \
'\'':target -- Environment name, or mount point:_default'\'' \
&& ret=0
;;
(status)
_arguments "${_arguments_options[@]}" : \
'\''--json[Print JSON]'\'' \
'\''-h[Print help]'\'' \
'\''--help[Print help]'\'' \
'\'':target -- Environment name, or mount point:_default'\'' \
&& ret=0
;;
(create)
_arguments "${_arguments_options[@]}" : \
'\''-h[Print help]'\'' \
'\''--help[Print help]'\'' \
'\'':name -- Name of the new environment (letters, digits and . _ + -):_default'\'' \
'\''*::conda_args -- Arguments for `conda create`, passed through exactly as given (packages, -c CHANNEL, -y, ...):_default'\'' \
&& ret=0
;;
(activate)
_arguments "${_arguments_options[@]}" : \
'\''--read-only[Mount read-only even if the writer lock is free]'\'' \
'\''(--read-only)--steal-lock[Take the writer lock from a holder on another node that looks alive (see conda-fuse mount --help)]'\'' \
'\''-h[Print help]'\'' \
'\''--help[Print help]'\'' \
'\'':name -- Environment to mount (if needed) and activate:_default'\'' \
&& ret=0
;;
(install)
_arguments "${_arguments_options[@]}" : \
'\''-h[Print help]'\'' \
'\''--help[Print help]'\'' \
'\'':name -- Environment name:_default'\'' \
'\''*::conda_args -- Arguments for conda, passed through exactly as given (packages, -c CHANNEL, -y, ...):_default'\'' \
&& ret=0
;;
(remove)
_arguments "${_arguments_options[@]}" : \
'\''-h[Print help]'\'' \
'\''--help[Print help]'\'' \
'\'':name -- Environment name:_default'\'' \
'\''*::conda_args -- Arguments for conda, passed through exactly as given (packages, -c CHANNEL, -y, ...):_default'\'' \
&& ret=0
;;
(rm)
_arguments "${_arguments_options[@]}" : \
'\''-y[Do not ask (needed when there is no terminal to ask on)]'\'' \
'\''--yes[Do not ask (needed when there is no terminal to ask on)]'\'' \
'\''-f[Delete even while mounted\: unmount first, throwing unsaved changes away]'\'' \
'\''--force[Delete even while mounted\: unmount first, throwing unsaved changes away]'\'' \
'\''-h[Print help]'\'' \
'\''--help[Print help]'\'' \
'\'':name -- Environment to delete:_default'\'' \
&& ret=0
;;
(rename)
_arguments "${_arguments_options[@]}" : \
'\''-h[Print help]'\'' \
'\''--help[Print help]'\'' \
'\'':old -- Environment to rename:_default'\'' \
'\'':new -- Its new name:_default'\'' \
&& ret=0
;;
(history)
_arguments "${_arguments_options[@]}" : \
'\''-h[Print help]'\'' \
'\''--help[Print help]'\'' \
'\'':name -- Environment name:_default'\'' \
&& ret=0
;;
(diff)
_arguments "${_arguments_options[@]}" : \
'\''-h[Print help]'\'' \
'\''--help[Print help]'\'' \
'\'':name -- Environment name:_default'\'' \
'\''::snapshot -- Snapshot to compare with the current version (1 = the newest):_default'\'' \
&& ret=0
;;
(rollback)
_arguments "${_arguments_options[@]}" : \
'\''--to=[Snapshot to make current (1 = the newest, the version before the last save)]:TO:_default'\'' \
'\''-h[Print help]'\'' \
'\''--help[Print help]'\'' \
'\'':name -- Environment name:_default'\'' \
&& ret=0
;;
(kernel)
_arguments "${_arguments_options[@]}" : \
'\''-h[Print help]'\'' \
'\''--help[Print help]'\'' \
":: :_conda-fuse__subcmd__kernel_commands" \
"*::: :->kernel" \
&& ret=0

    case $state in
    (kernel)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:conda-fuse-kernel-command-$line[1]:"
        case $line[1] in
            (install)
_arguments "${_arguments_options[@]}" : \
'\''--display-name=[The name Jupyter shows \[default\: "Python (NAME via conda-fuse)"\]]:DISPLAY_NAME:_default'\'' \
'\''--prefix=[Install into Jupyter'\''\'\'''\''s data directory under DIR (DIR/share/jupyter/kernels), e.g. a JupyterHub'\''\'\'''\''s sys.prefix, instead of your own (~/.local/share/jupyter, or \$JUPYTER_DATA_DIR)]:DIR:_files'\'' \
'\''(--prefix)--user[Your own Jupyter data directory (the default)]'\'' \
'\''-h[Print help]'\'' \
'\''--help[Print help]'\'' \
'\'':name -- Environment name:_default'\'' \
&& ret=0
;;
(list)
_arguments "${_arguments_options[@]}" : \
'\''--prefix=[Install into Jupyter'\''\'\'''\''s data directory under DIR (DIR/share/jupyter/kernels), e.g. a JupyterHub'\''\'\'''\''s sys.prefix, instead of your own (~/.local/share/jupyter, or \$JUPYTER_DATA_DIR)]:DIR:_files'\'' \
'\''(--prefix)--user[Your own Jupyter data directory (the default)]'\'' \
'\''-h[Print help]'\'' \
'\''--help[Print help]'\'' \
&& ret=0
;;
(remove)
_arguments "${_arguments_options[@]}" : \
'\''--prefix=[Install into Jupyter'\''\'\'''\''s data directory under DIR (DIR/share/jupyter/kernels), e.g. a JupyterHub'\''\'\'''\''s sys.prefix, instead of your own (~/.local/share/jupyter, or \$JUPYTER_DATA_DIR)]:DIR:_files'\'' \
'\''(--prefix)--user[Your own Jupyter data directory (the default)]'\'' \
'\''-h[Print help]'\'' \
'\''--help[Print help]'\'' \
'\'':name -- Environment name:_default'\'' \
&& ret=0
;;
(launch)
_arguments "${_arguments_options[@]}" : \
'\''-h[Print help]'\'' \
'\''--help[Print help]'\'' \
'\'':name:_default'\'' \
'\'':connection_file:_default'\'' \
&& ret=0
;;
(help)
_arguments "${_arguments_options[@]}" : \
":: :_conda-fuse__subcmd__kernel__subcmd__help_commands" \
"*::: :->help" \
&& ret=0

    case $state in
    (help)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:conda-fuse-kernel-help-command-$line[1]:"
        case $line[1] in
            (install)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(list)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(remove)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(launch)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(help)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
        esac
    ;;
esac
;;
        esac
    ;;
esac
;;
(prune)
_arguments "${_arguments_options[@]}" : \
'\''--keep=[Snapshots to keep (the newest)]:KEEP:_default'\'' \
'\''-h[Print help]'\'' \
'\''--help[Print help]'\'' \
'\'':name -- Environment name:_default'\'' \
&& ret=0
;;
(env-list)
_arguments "${_arguments_options[@]}" : \
'\''(--json)--names[Print only the names, one per line (for scripts and TAB completion)]'\'' \
'\''--json[Print JSON]'\'' \
'\''-h[Print help]'\'' \
'\''--help[Print help]'\'' \
&& ret=0
;;
(paths)
_arguments "${_arguments_options[@]}" : \
'\''-h[Print help]'\'' \
'\''--help[Print help]'\'' \
&& ret=0
;;
(run)
_arguments "${_arguments_options[@]}" : \
'\''--write[Mount writable (the writer lock must be free) and save the changes when CMD ends]'\'' \
'\''-h[Print help]'\'' \
'\''--help[Print help]'\'' \
'\'':name -- Environment to run in (NAME@N\: its snapshot N, read-only):_default'\'' \
'\''*::command -- The command and its arguments:_default'\'' \
&& ret=0
;;
(doctor)
_arguments "${_arguments_options[@]}" : \
'\''-h[Print help]'\'' \
'\''--help[Print help]'\'' \
&& ret=0
;;
(shell-hook)
_arguments "${_arguments_options[@]}" : \
'\''--rc-file[Print the path of the shell'\''\'\'''\''s rc file (where the hook line goes) instead]'\'' \
'\''(--rc-file)--add-to-rc[Add the hook line to the shell'\''\'\'''\''s rc file, unless it is there already]'\'' \
'\''-h[Print help]'\'' \
'\''--help[Print help]'\'' \
'\'':shell:(bash zsh fish)'\'' \
&& ret=0
;;
(activate-script)
_arguments "${_arguments_options[@]}" : \
'\''--shell=[Shell to write code for]:SHELL:(bash zsh fish)'\'' \
'\''-h[Print help]'\'' \
'\''--help[Print help]'\'' \
'\'':prefix -- Prefix of the environment:_files'\'' \
&& ret=0
;;
(deactivate-script)
_arguments "${_arguments_options[@]}" : \
'\''--shell=[Shell to write code for]:SHELL:(bash zsh fish)'\'' \
'\''-h[Print help]'\'' \
'\''--help[Print help]'\'' \
&& ret=0
;;
(help)
_arguments "${_arguments_options[@]}" : \
":: :_conda-fuse__subcmd__help_commands" \
"*::: :->help" \
&& ret=0

    case $state in
    (help)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:conda-fuse-help-command-$line[1]:"
        case $line[1] in
            (pack)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(mount)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(commit)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(unmount)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(status)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(create)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(activate)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(install)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(remove)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(rm)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(rename)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(history)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(diff)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(rollback)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(kernel)
_arguments "${_arguments_options[@]}" : \
":: :_conda-fuse__subcmd__help__subcmd__kernel_commands" \
"*::: :->kernel" \
&& ret=0

    case $state in
    (kernel)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:conda-fuse-help-kernel-command-$line[1]:"
        case $line[1] in
            (install)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(list)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(remove)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(launch)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
        esac
    ;;
esac
;;
(prune)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(env-list)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(paths)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(run)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(doctor)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(shell-hook)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(activate-script)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(deactivate-script)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(help)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
        esac
    ;;
esac
;;
        esac
    ;;
esac
}

(( $+functions[_conda-fuse_commands] )) ||
_conda-fuse_commands() {
    local commands; commands=(
'\''pack:Pack a directory (an environment) into a zip archive'\'' \
'\''mount:Mount an archive at a directory, writable unless --read-only (a background daemon serves it)'\'' \
'\''commit:Save the changes of a writable mount into its archive now; it stays mounted'\'' \
'\''unmount:Save (or --discard) the changes, unmount, and wait for the daemon to exit'\'' \
'\''status:Show what a mount serves\: archive, mode, daemon pid, unsaved changes, cache and memory use'\'' \
'\''create:Create an environment\: a new archive, mounted, \`conda create --prefix\`, saved'\'' \
'\''activate:Mount an environment if needed (writable if the writer lock is free) and print its prefix; the shell function conda-fuse-activate then activates it'\'' \
'\''install:Run \`conda install --prefix\` in an environment, then save it'\'' \
'\''remove:Run \`conda remove --prefix\` in an environment, then save it'\'' \
'\''rm:Delete an environment\: its archive, unsaved changes, lock and mount point'\'' \
'\''rename:Rename an environment\: its archive, snapshots and Jupyter kernelspecs (files stay as they are\: a mount serves them rewritten for the new prefix)'\'' \
'\''history:List an environment'\''\'\'''\''s versions\: now and the snapshots saves kept, with package changes'\'' \
'\''diff:Show the package changes between a snapshot (default 1) and the current version'\'' \
'\''rollback:Make a snapshot the current version again (the replaced one is kept as a snapshot)'\'' \
'\''kernel:Jupyter kernels from environments\: install, list, remove'\'' \
'\''prune:Delete an environment'\''\'\'''\''s snapshots (all, or all but the newest --keep N)'\'' \
'\''env-list:List the environments\: size, entries, mounted (rw/ro, pid), unsaved changes'\'' \
'\''paths:Show where archives, mounts, state, upper layers and temporary files live'\'' \
'\''run:Run a command in an environment (batch jobs)\: mounted read-only and shared while needed'\'' \
'\''doctor:Check FUSE, conda, free space, stale mounts and locks, and the shell hook'\'' \
'\''shell-hook:Print the shell functions (conda-fuse-*) and TAB completion for a shell'\'' \
'\''activate-script:Shell code activating PREFIX without conda'\''\'\'''\''s shell function (used by conda-fuse-activate)'\'' \
'\''deactivate-script:Shell code deactivating the active environment (used by conda-fuse-deactivate)'\'' \
'\''help:Print this message or the help of the given subcommand(s)'\'' \
    )
    _describe -t commands '\''conda-fuse commands'\'' commands "$@"
}
(( $+functions[_conda-fuse__subcmd__activate_commands] )) ||
_conda-fuse__subcmd__activate_commands() {
    local commands; commands=()
    _describe -t commands '\''conda-fuse activate commands'\'' commands "$@"
}
(( $+functions[_conda-fuse__subcmd__activate-script_commands] )) ||
_conda-fuse__subcmd__activate-script_commands() {
    local commands; commands=()
    _describe -t commands '\''conda-fuse activate-script commands'\'' commands "$@"
}
(( $+functions[_conda-fuse__subcmd__commit_commands] )) ||
_conda-fuse__subcmd__commit_commands() {
    local commands; commands=()
    _describe -t commands '\''conda-fuse commit commands'\'' commands "$@"
}
(( $+functions[_conda-fuse__subcmd__create_commands] )) ||
_conda-fuse__subcmd__create_commands() {
    local commands; commands=()
    _describe -t commands '\''conda-fuse create commands'\'' commands "$@"
}
(( $+functions[_conda-fuse__subcmd__deactivate-script_commands] )) ||
_conda-fuse__subcmd__deactivate-script_commands() {
    local commands; commands=()
    _describe -t commands '\''conda-fuse deactivate-script commands'\'' commands "$@"
}
(( $+functions[_conda-fuse__subcmd__diff_commands] )) ||
_conda-fuse__subcmd__diff_commands() {
    local commands; commands=()
    _describe -t commands '\''conda-fuse diff commands'\'' commands "$@"
}
(( $+functions[_conda-fuse__subcmd__doctor_commands] )) ||
_conda-fuse__subcmd__doctor_commands() {
    local commands; commands=()
    _describe -t commands '\''conda-fuse doctor commands'\'' commands "$@"
}
(( $+functions[_conda-fuse__subcmd__env-list_commands] )) ||
_conda-fuse__subcmd__env-list_commands() {
    local commands; commands=()
    _describe -t commands '\''conda-fuse env-list commands'\'' commands "$@"
}
(( $+functions[_conda-fuse__subcmd__help_commands] )) ||
_conda-fuse__subcmd__help_commands() {
    local commands; commands=(
'\''pack:Pack a directory (an environment) into a zip archive'\'' \
'\''mount:Mount an archive at a directory, writable unless --read-only (a background daemon serves it)'\'' \
'\''commit:Save the changes of a writable mount into its archive now; it stays mounted'\'' \
'\''unmount:Save (or --discard) the changes, unmount, and wait for the daemon to exit'\'' \
'\''status:Show what a mount serves\: archive, mode, daemon pid, unsaved changes, cache and memory use'\'' \
'\''create:Create an environment\: a new archive, mounted, \`conda create --prefix\`, saved'\'' \
'\''activate:Mount an environment if needed (writable if the writer lock is free) and print its prefix; the shell function conda-fuse-activate then activates it'\'' \
'\''install:Run \`conda install --prefix\` in an environment, then save it'\'' \
'\''remove:Run \`conda remove --prefix\` in an environment, then save it'\'' \
'\''rm:Delete an environment\: its archive, unsaved changes, lock and mount point'\'' \
'\''rename:Rename an environment\: its archive, snapshots and Jupyter kernelspecs (files stay as they are\: a mount serves them rewritten for the new prefix)'\'' \
'\''history:List an environment'\''\'\'''\''s versions\: now and the snapshots saves kept, with package changes'\'' \
'\''diff:Show the package changes between a snapshot (default 1) and the current version'\'' \
'\''rollback:Make a snapshot the current version again (the replaced one is kept as a snapshot)'\'' \
'\''kernel:Jupyter kernels from environments\: install, list, remove'\'' \
'\''prune:Delete an environment'\''\'\'''\''s snapshots (all, or all but the newest --keep N)'\'' \
'\''env-list:List the environments\: size, entries, mounted (rw/ro, pid), unsaved changes'\'' \
'\''paths:Show where archives, mounts, state, upper layers and temporary files live'\'' \
'\''run:Run a command in an environment (batch jobs)\: mounted read-only and shared while needed'\'' \
'\''doctor:Check FUSE, conda, free space, stale mounts and locks, and the shell hook'\'' \
'\''shell-hook:Print the shell functions (conda-fuse-*) and TAB completion for a shell'\'' \
'\''activate-script:Shell code activating PREFIX without conda'\''\'\'''\''s shell function (used by conda-fuse-activate)'\'' \
'\''deactivate-script:Shell code deactivating the active environment (used by conda-fuse-deactivate)'\'' \
'\''help:Print this message or the help of the given subcommand(s)'\'' \
    )
    _describe -t commands '\''conda-fuse help commands'\'' commands "$@"
}
(( $+functions[_conda-fuse__subcmd__help__subcmd__activate_commands] )) ||
_conda-fuse__subcmd__help__subcmd__activate_commands() {
    local commands; commands=()
    _describe -t commands '\''conda-fuse help activate commands'\'' commands "$@"
}
(( $+functions[_conda-fuse__subcmd__help__subcmd__activate-script_commands] )) ||
_conda-fuse__subcmd__help__subcmd__activate-script_commands() {
    local commands; commands=()
    _describe -t commands '\''conda-fuse help activate-script commands'\'' commands "$@"
}
(( $+functions[_conda-fuse__subcmd__help__subcmd__commit_commands] )) ||
_conda-fuse__subcmd__help__subcmd__commit_commands() {
    local commands; commands=()
    _describe -t commands '\''conda-fuse help commit commands'\'' commands "$@"
}
(( $+functions[_conda-fuse__subcmd__help__subcmd__create_commands] )) ||
_conda-fuse__subcmd__help__subcmd__create_commands() {
    local commands; commands=()
    _describe -t commands '\''conda-fuse help create commands'\'' commands "$@"
}
(( $+functions[_conda-fuse__subcmd__help__subcmd__deactivate-script_commands] )) ||
_conda-fuse__subcmd__help__subcmd__deactivate-script_commands() {
    local commands; commands=()
    _describe -t commands '\''conda-fuse help deactivate-script commands'\'' commands "$@"
}
(( $+functions[_conda-fuse__subcmd__help__subcmd__diff_commands] )) ||
_conda-fuse__subcmd__help__subcmd__diff_commands() {
    local commands; commands=()
    _describe -t commands '\''conda-fuse help diff commands'\'' commands "$@"
}
(( $+functions[_conda-fuse__subcmd__help__subcmd__doctor_commands] )) ||
_conda-fuse__subcmd__help__subcmd__doctor_commands() {
    local commands; commands=()
    _describe -t commands '\''conda-fuse help doctor commands'\'' commands "$@"
}
(( $+functions[_conda-fuse__subcmd__help__subcmd__env-list_commands] )) ||
_conda-fuse__subcmd__help__subcmd__env-list_commands() {
    local commands; commands=()
    _describe -t commands '\''conda-fuse help env-list commands'\'' commands "$@"
}
(( $+functions[_conda-fuse__subcmd__help__subcmd__help_commands] )) ||
_conda-fuse__subcmd__help__subcmd__help_commands() {
    local commands; commands=()
    _describe -t commands '\''conda-fuse help help commands'\'' commands "$@"
}
(( $+functions[_conda-fuse__subcmd__help__subcmd__history_commands] )) ||
_conda-fuse__subcmd__help__subcmd__history_commands() {
    local commands; commands=()
    _describe -t commands '\''conda-fuse help history commands'\'' commands "$@"
}
(( $+functions[_conda-fuse__subcmd__help__subcmd__install_commands] )) ||
_conda-fuse__subcmd__help__subcmd__install_commands() {
    local commands; commands=()
    _describe -t commands '\''conda-fuse help install commands'\'' commands "$@"
}
(( $+functions[_conda-fuse__subcmd__help__subcmd__kernel_commands] )) ||
_conda-fuse__subcmd__help__subcmd__kernel_commands() {
    local commands; commands=(
'\''install:Write a kernelspec that starts the env'\''\'\'''\''s Python kernel through conda-fuse'\'' \
'\''list:List the kernels conda-fuse installed'\'' \
'\''remove:Remove the kernel of an environment'\'' \
'\''launch:What a kernelspec runs\: mount read-only (shared), activate, run ipykernel'\'' \
    )
    _describe -t commands '\''conda-fuse help kernel commands'\'' commands "$@"
}
(( $+functions[_conda-fuse__subcmd__help__subcmd__kernel__subcmd__install_commands] )) ||
_conda-fuse__subcmd__help__subcmd__kernel__subcmd__install_commands() {
    local commands; commands=()
    _describe -t commands '\''conda-fuse help kernel install commands'\'' commands "$@"
}
(( $+functions[_conda-fuse__subcmd__help__subcmd__kernel__subcmd__launch_commands] )) ||
_conda-fuse__subcmd__help__subcmd__kernel__subcmd__launch_commands() {
    local commands; commands=()
    _describe -t commands '\''conda-fuse help kernel launch commands'\'' commands "$@"
}
(( $+functions[_conda-fuse__subcmd__help__subcmd__kernel__subcmd__list_commands] )) ||
_conda-fuse__subcmd__help__subcmd__kernel__subcmd__list_commands() {
    local commands; commands=()
    _describe -t commands '\''conda-fuse help kernel list commands'\'' commands "$@"
}
(( $+functions[_conda-fuse__subcmd__help__subcmd__kernel__subcmd__remove_commands] )) ||
_conda-fuse__subcmd__help__subcmd__kernel__subcmd__remove_commands() {
    local commands; commands=()
    _describe -t commands '\''conda-fuse help kernel remove commands'\'' commands "$@"
}
(( $+functions[_conda-fuse__subcmd__help__subcmd__mount_commands] )) ||
_conda-fuse__subcmd__help__subcmd__mount_commands() {
    local commands; commands=()
    _describe -t commands '\''conda-fuse help mount commands'\'' commands "$@"
}
(( $+functions[_conda-fuse__subcmd__help__subcmd__pack_commands] )) ||
_conda-fuse__subcmd__help__subcmd__pack_commands() {
    local commands; commands=()
    _describe -t commands '\''conda-fuse help pack commands'\'' commands "$@"
}
(( $+functions[_conda-fuse__subcmd__help__subcmd__paths_commands] )) ||
_conda-fuse__subcmd__help__subcmd__paths_commands() {
    local commands; commands=()
    _describe -t commands '\''conda-fuse help paths commands'\'' commands "$@"
}
(( $+functions[_conda-fuse__subcmd__help__subcmd__prune_commands] )) ||
_conda-fuse__subcmd__help__subcmd__prune_commands() {
    local commands; commands=()
    _describe -t commands '\''conda-fuse help prune commands'\'' commands "$@"
}
(( $+functions[_conda-fuse__subcmd__help__subcmd__remove_commands] )) ||
_conda-fuse__subcmd__help__subcmd__remove_commands() {
    local commands; commands=()
    _describe -t commands '\''conda-fuse help remove commands'\'' commands "$@"
}
(( $+functions[_conda-fuse__subcmd__help__subcmd__rename_commands] )) ||
_conda-fuse__subcmd__help__subcmd__rename_commands() {
    local commands; commands=()
    _describe -t commands '\''conda-fuse help rename commands'\'' commands "$@"
}
(( $+functions[_conda-fuse__subcmd__help__subcmd__rm_commands] )) ||
_conda-fuse__subcmd__help__subcmd__rm_commands() {
    local commands; commands=()
    _describe -t commands '\''conda-fuse help rm commands'\'' commands "$@"
}
(( $+functions[_conda-fuse__subcmd__help__subcmd__rollback_commands] )) ||
_conda-fuse__subcmd__help__subcmd__rollback_commands() {
    local commands; commands=()
    _describe -t commands '\''conda-fuse help rollback commands'\'' commands "$@"
}
(( $+functions[_conda-fuse__subcmd__help__subcmd__run_commands] )) ||
_conda-fuse__subcmd__help__subcmd__run_commands() {
    local commands; commands=()
    _describe -t commands '\''conda-fuse help run commands'\'' commands "$@"
}
(( $+functions[_conda-fuse__subcmd__help__subcmd__shell-hook_commands] )) ||
_conda-fuse__subcmd__help__subcmd__shell-hook_commands() {
    local commands; commands=()
    _describe -t commands '\''conda-fuse help shell-hook commands'\'' commands "$@"
}
(( $+functions[_conda-fuse__subcmd__help__subcmd__status_commands] )) ||
_conda-fuse__subcmd__help__subcmd__status_commands() {
    local commands; commands=()
    _describe -t commands '\''conda-fuse help status commands'\'' commands "$@"
}
(( $+functions[_conda-fuse__subcmd__help__subcmd__unmount_commands] )) ||
_conda-fuse__subcmd__help__subcmd__unmount_commands() {
    local commands; commands=()
    _describe -t commands '\''conda-fuse help unmount commands'\'' commands "$@"
}
(( $+functions[_conda-fuse__subcmd__history_commands] )) ||
_conda-fuse__subcmd__history_commands() {
    local commands; commands=()
    _describe -t commands '\''conda-fuse history commands'\'' commands "$@"
}
(( $+functions[_conda-fuse__subcmd__install_commands] )) ||
_conda-fuse__subcmd__install_commands() {
    local commands; commands=()
    _describe -t commands '\''conda-fuse install commands'\'' commands "$@"
}
(( $+functions[_conda-fuse__subcmd__kernel_commands] )) ||
_conda-fuse__subcmd__kernel_commands() {
    local commands; commands=(
'\''install:Write a kernelspec that starts the env'\''\'\'''\''s Python kernel through conda-fuse'\'' \
'\''list:List the kernels conda-fuse installed'\'' \
'\''remove:Remove the kernel of an environment'\'' \
'\''launch:What a kernelspec runs\: mount read-only (shared), activate, run ipykernel'\'' \
'\''help:Print this message or the help of the given subcommand(s)'\'' \
    )
    _describe -t commands '\''conda-fuse kernel commands'\'' commands "$@"
}
(( $+functions[_conda-fuse__subcmd__kernel__subcmd__help_commands] )) ||
_conda-fuse__subcmd__kernel__subcmd__help_commands() {
    local commands; commands=(
'\''install:Write a kernelspec that starts the env'\''\'\'''\''s Python kernel through conda-fuse'\'' \
'\''list:List the kernels conda-fuse installed'\'' \
'\''remove:Remove the kernel of an environment'\'' \
'\''launch:What a kernelspec runs\: mount read-only (shared), activate, run ipykernel'\'' \
'\''help:Print this message or the help of the given subcommand(s)'\'' \
    )
    _describe -t commands '\''conda-fuse kernel help commands'\'' commands "$@"
}
(( $+functions[_conda-fuse__subcmd__kernel__subcmd__help__subcmd__help_commands] )) ||
_conda-fuse__subcmd__kernel__subcmd__help__subcmd__help_commands() {
    local commands; commands=()
    _describe -t commands '\''conda-fuse kernel help help commands'\'' commands "$@"
}
(( $+functions[_conda-fuse__subcmd__kernel__subcmd__help__subcmd__install_commands] )) ||
_conda-fuse__subcmd__kernel__subcmd__help__subcmd__install_commands() {
    local commands; commands=()
    _describe -t commands '\''conda-fuse kernel help install commands'\'' commands "$@"
}
(( $+functions[_conda-fuse__subcmd__kernel__subcmd__help__subcmd__launch_commands] )) ||
_conda-fuse__subcmd__kernel__subcmd__help__subcmd__launch_commands() {
    local commands; commands=()
    _describe -t commands '\''conda-fuse kernel help launch commands'\'' commands "$@"
}
(( $+functions[_conda-fuse__subcmd__kernel__subcmd__help__subcmd__list_commands] )) ||
_conda-fuse__subcmd__kernel__subcmd__help__subcmd__list_commands() {
    local commands; commands=()
    _describe -t commands '\''conda-fuse kernel help list commands'\'' commands "$@"
}
(( $+functions[_conda-fuse__subcmd__kernel__subcmd__help__subcmd__remove_commands] )) ||
_conda-fuse__subcmd__kernel__subcmd__help__subcmd__remove_commands() {
    local commands; commands=()
    _describe -t commands '\''conda-fuse kernel help remove commands'\'' commands "$@"
}
(( $+functions[_conda-fuse__subcmd__kernel__subcmd__install_commands] )) ||
_conda-fuse__subcmd__kernel__subcmd__install_commands() {
    local commands; commands=()
    _describe -t commands '\''conda-fuse kernel install commands'\'' commands "$@"
}
(( $+functions[_conda-fuse__subcmd__kernel__subcmd__launch_commands] )) ||
_conda-fuse__subcmd__kernel__subcmd__launch_commands() {
    local commands; commands=()
    _describe -t commands '\''conda-fuse kernel launch commands'\'' commands "$@"
}
(( $+functions[_conda-fuse__subcmd__kernel__subcmd__list_commands] )) ||
_conda-fuse__subcmd__kernel__subcmd__list_commands() {
    local commands; commands=()
    _describe -t commands '\''conda-fuse kernel list commands'\'' commands "$@"
}
(( $+functions[_conda-fuse__subcmd__kernel__subcmd__remove_commands] )) ||
_conda-fuse__subcmd__kernel__subcmd__remove_commands() {
    local commands; commands=()
    _describe -t commands '\''conda-fuse kernel remove commands'\'' commands "$@"
}
(( $+functions[_conda-fuse__subcmd__mount_commands] )) ||
_conda-fuse__subcmd__mount_commands() {
    local commands; commands=()
    _describe -t commands '\''conda-fuse mount commands'\'' commands "$@"
}
(( $+functions[_conda-fuse__subcmd__pack_commands] )) ||
_conda-fuse__subcmd__pack_commands() {
    local commands; commands=()
    _describe -t commands '\''conda-fuse pack commands'\'' commands "$@"
}
(( $+functions[_conda-fuse__subcmd__paths_commands] )) ||
_conda-fuse__subcmd__paths_commands() {
    local commands; commands=()
    _describe -t commands '\''conda-fuse paths commands'\'' commands "$@"
}
(( $+functions[_conda-fuse__subcmd__prune_commands] )) ||
_conda-fuse__subcmd__prune_commands() {
    local commands; commands=()
    _describe -t commands '\''conda-fuse prune commands'\'' commands "$@"
}
(( $+functions[_conda-fuse__subcmd__remove_commands] )) ||
_conda-fuse__subcmd__remove_commands() {
    local commands; commands=()
    _describe -t commands '\''conda-fuse remove commands'\'' commands "$@"
}
(( $+functions[_conda-fuse__subcmd__rename_commands] )) ||
_conda-fuse__subcmd__rename_commands() {
    local commands; commands=()
    _describe -t commands '\''conda-fuse rename commands'\'' commands "$@"
}
(( $+functions[_conda-fuse__subcmd__rm_commands] )) ||
_conda-fuse__subcmd__rm_commands() {
    local commands; commands=()
    _describe -t commands '\''conda-fuse rm commands'\'' commands "$@"
}
(( $+functions[_conda-fuse__subcmd__rollback_commands] )) ||
_conda-fuse__subcmd__rollback_commands() {
    local commands; commands=()
    _describe -t commands '\''conda-fuse rollback commands'\'' commands "$@"
}
(( $+functions[_conda-fuse__subcmd__run_commands] )) ||
_conda-fuse__subcmd__run_commands() {
    local commands; commands=()
    _describe -t commands '\''conda-fuse run commands'\'' commands "$@"
}
(( $+functions[_conda-fuse__subcmd__shell-hook_commands] )) ||
_conda-fuse__subcmd__shell-hook_commands() {
    local commands; commands=()
    _describe -t commands '\''conda-fuse shell-hook commands'\'' commands "$@"
}
(( $+functions[_conda-fuse__subcmd__status_commands] )) ||
_conda-fuse__subcmd__status_commands() {
    local commands; commands=()
    _describe -t commands '\''conda-fuse status commands'\'' commands "$@"
}
(( $+functions[_conda-fuse__subcmd__unmount_commands] )) ||
_conda-fuse__subcmd__unmount_commands() {
    local commands; commands=()
    _describe -t commands '\''conda-fuse unmount commands'\'' commands "$@"
}

if [ "$funcstack[1]" = "_conda-fuse" ]; then
    _conda-fuse "$@"
else
    compdef _conda-fuse conda-fuse
fi'

__conda_fuse_register_completion() {
    (( $+functions[compdef] )) || return 1
    eval "$__conda_fuse_clap_completion"
    compdef _conda_fuse_function conda-fuse-commit conda-fuse-unmount conda-fuse-status conda-fuse-activate conda-fuse-install conda-fuse-remove conda-fuse-rm conda-fuse-rename conda-fuse-history conda-fuse-diff conda-fuse-rollback conda-fuse-prune conda-fuse-run
    compdef _conda_fuse_cli conda-fuse
    precmd_functions=(${precmd_functions:#__conda_fuse_register_completion})
}
__conda_fuse_register_completion || precmd_functions+=(__conda_fuse_register_completion)
