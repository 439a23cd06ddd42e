# conda-fuse 0.1.0 shell functions for fish, printed by `conda-fuse shell-hook fish`.
# Load them from ~/.config/fish/config.fish with:  conda-fuse shell-hook fish | source
# Each conda-fuse-X function runs `conda-fuse X`; activate, deactivate, unmount and rm also change
# this shell (conda activate / deactivate), which a program cannot do for its parent.

function conda-fuse-create --description "Create an environment: a new archive, mounted, `conda create --prefix`, saved"
    command conda-fuse create $argv
end

function conda-fuse-commit --description "Save the changes of a writable mount into its archive now; it stays mounted"
    command conda-fuse commit $argv
end

function conda-fuse-env-list --description "List the environments: size, entries, mounted (rw/ro, pid), unsaved changes"
    command conda-fuse env-list $argv
end

function conda-fuse-paths --description "Show where archives, mounts, state, upper layers and temporary files live"
    command conda-fuse paths $argv
end

function conda-fuse-install --description "Run `conda install --prefix` in an environment, then save it"
    command conda-fuse install $argv
end

function conda-fuse-remove --description "Run `conda remove --prefix` in an environment, then save it"
    command conda-fuse remove $argv
end

function conda-fuse-run --description "Run a command in an environment (batch jobs): mounted read-only and shared while needed"
    command conda-fuse run $argv
end

function conda-fuse-pack --description "Pack a directory (an environment) into a zip archive"
    command conda-fuse pack $argv
end

function conda-fuse-doctor --description "Check FUSE, conda, free space, stale mounts and locks, and the shell hook"
    command conda-fuse doctor $argv
end

function conda-fuse-status --description "Show what a mount serves: archive, mode, daemon pid, unsaved changes, cache and memory use"
    command conda-fuse status $argv
end

function conda-fuse-history --description "List an environment's versions: now and the snapshots saves kept, with package changes"
    command conda-fuse history $argv
end

function conda-fuse-diff --description "Show the package changes between a snapshot (default 1) and the current version"
    command conda-fuse diff $argv
end

function conda-fuse-rollback --description "Make a snapshot the current version again (the replaced one is kept as a snapshot)"
    command conda-fuse rollback $argv
end

function conda-fuse-prune --description "Delete an environment's snapshots (all, or all but the newest --keep N)"
    command conda-fuse prune $argv
end

function conda-fuse-kernel --description "Jupyter kernels from environments: install, list, remove"
    command conda-fuse kernel $argv
end

function conda-fuse-rename --description "Rename an environment: its archive, snapshots and Jupyter kernelspecs (files stay as they are: a mount serves them rewritten for the new prefix)"
    command conda-fuse rename $argv
end

function conda-fuse-activate --description "Mount a conda-fuse environment if needed and activate it in this shell"
    set -l prefix (command conda-fuse activate $argv); or return
    test -n "$prefix"; or return 1
    if test -n "$CONDA_FUSE_ACTIVE_ENV"
        conda-fuse-deactivate; or return
    end
    if functions -q conda
        conda activate $prefix; or return
        set -gx CONDA_FUSE_ACTIVATED_BY conda
    else
        set -l code (command conda-fuse activate-script --shell fish $prefix); or return
        # `set` keeps the previous status, so the status of `source` says nothing here.
        string join \n -- $code | source
    end
    set -gx CONDA_FUSE_ACTIVE_ENV (string replace -r '.*/' '' -- $prefix)
end

function conda-fuse-deactivate --description "Leave the conda-fuse environment active in this shell (it stays mounted)"
    if test -z "$CONDA_FUSE_ACTIVE_ENV"
        echo "conda-fuse-deactivate: no conda-fuse environment is active in this shell" >&2
        return 1
    end
    if test "$CONDA_FUSE_ACTIVATED_BY" = conda; and functions -q conda
        conda deactivate; or return
    else
        set -l code (command conda-fuse deactivate-script --shell fish); or return
        string join \n -- $code | source
    end
    set -e CONDA_FUSE_ACTIVE_ENV CONDA_FUSE_ACTIVATED_BY
end

# Leaves the environment named by the first non-option argument if it is the active one here, so
# that this shell does not keep using a mount that is about to go away.
function __conda_fuse_leave
    for arg in $argv
        string match -q -- '-*' $arg; and continue
        if test -n "$CONDA_FUSE_ACTIVE_ENV"; and test "$arg" = "$CONDA_FUSE_ACTIVE_ENV"
            conda-fuse-deactivate
        end
        return 0
    end
end

function conda-fuse-unmount --description "Save (or --discard) the changes, unmount, and wait for the daemon to exit"
    __conda_fuse_leave $argv
    command conda-fuse unmount $argv
end

function conda-fuse-rm --description "Delete an environment: its archive, unsaved changes, lock and mount point"
    if contains -- --force $argv; or contains -- -f $argv
        __conda_fuse_leave $argv
    end
    command conda-fuse rm $argv
end

function __conda_fuse_env_names
    command conda-fuse env-list --names 2>/dev/null
end

# TAB completion: environment names for the functions, and for `conda-fuse` the subcommands and
# options (clap_complete) plus environment names where a subcommand takes one.
complete -c conda-fuse-commit -f -n "test (count (commandline -opc)) -eq 1" -a "(__conda_fuse_env_names)"
complete -c conda-fuse-commit -l help
complete -c conda-fuse-unmount -f -n "test (count (commandline -opc)) -eq 1" -a "(__conda_fuse_env_names)"
complete -c conda-fuse-unmount -l discard
complete -c conda-fuse-unmount -l lazy
complete -c conda-fuse-unmount -l help
complete -c conda-fuse-status -f -n "test (count (commandline -opc)) -eq 1" -a "(__conda_fuse_env_names)"
complete -c conda-fuse-status -l json
complete -c conda-fuse-status -l help
complete -c conda-fuse-activate -f -n "test (count (commandline -opc)) -eq 1" -a "(__conda_fuse_env_names)"
complete -c conda-fuse-activate -l read-only
complete -c conda-fuse-activate -l steal-lock
complete -c conda-fuse-activate -l help
complete -c conda-fuse-install -f -n "test (count (commandline -opc)) -eq 1" -a "(__conda_fuse_env_names)"
complete -c conda-fuse-install -l help
complete -c conda-fuse-remove -f -n "test (count (commandline -opc)) -eq 1" -a "(__conda_fuse_env_names)"
complete -c conda-fuse-remove -l help
complete -c conda-fuse-rm -f -n "test (count (commandline -opc)) -eq 1" -a "(__conda_fuse_env_names)"
complete -c conda-fuse-rm -l yes
complete -c conda-fuse-rm -l force
complete -c conda-fuse-rm -l help
complete -c conda-fuse-rename -f -n "test (count (commandline -opc)) -eq 1" -a "(__conda_fuse_env_names)"
complete -c conda-fuse-rename -l help
complete -c conda-fuse-history -f -n "test (count (commandline -opc)) -eq 1" -a "(__conda_fuse_env_names)"
complete -c conda-fuse-history -l help
complete -c conda-fuse-diff -f -n "test (count (commandline -opc)) -eq 1" -a "(__conda_fuse_env_names)"
complete -c conda-fuse-diff -l help
complete -c conda-fuse-rollback -f -n "test (count (commandline -opc)) -eq 1" -a "(__conda_fuse_env_names)"
complete -c conda-fuse-rollback -l to
complete -c conda-fuse-rollback -l help
complete -c conda-fuse-prune -f -n "test (count (commandline -opc)) -eq 1" -a "(__conda_fuse_env_names)"
complete -c conda-fuse-prune -l keep
complete -c conda-fuse-prune -l help
complete -c conda-fuse-run -f -n "test (count (commandline -opc)) -eq 1" -a "(__conda_fuse_env_names)"
complete -c conda-fuse-run -l write
complete -c conda-fuse-run -l help

# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_conda_fuse_global_optspecs
    string join \n h/help V/version
end

function __fish_conda_fuse_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_conda_fuse_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_conda_fuse_using_subcommand
    set -l cmd (__fish_conda_fuse_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c conda-fuse -n "__fish_conda_fuse_needs_command" -s h -l help -d 'Print help'
complete -c conda-fuse -n "__fish_conda_fuse_needs_command" -s V -l version -d 'Print version'
complete -c conda-fuse -n "__fish_conda_fuse_needs_command" -f -a "pack" -d 'Pack a directory (an environment) into a zip archive'
complete -c conda-fuse -n "__fish_conda_fuse_needs_command" -f -a "mount" -d 'Mount an archive at a directory, writable unless --read-only (a background daemon serves it)'
complete -c conda-fuse -n "__fish_conda_fuse_needs_command" -f -a "commit" -d 'Save the changes of a writable mount into its archive now; it stays mounted'
complete -c conda-fuse -n "__fish_conda_fuse_needs_command" -f -a "unmount" -d 'Save (or --discard) the changes, unmount, and wait for the daemon to exit'
complete -c conda-fuse -n "__fish_conda_fuse_needs_command" -f -a "status" -d 'Show what a mount serves: archive, mode, daemon pid, unsaved changes, cache and memory use'
complete -c conda-fuse -n "__fish_conda_fuse_needs_command" -f -a "create" -d 'Create an environment: a new archive, mounted, `conda create --prefix`, saved'
complete -c conda-fuse -n "__fish_conda_fuse_needs_command" -f -a "activate" -d 'Mount an environment if needed (writable if the writer lock is free) and print its prefix; the shell function conda-fuse-activate then activates it'
complete -c conda-fuse -n "__fish_conda_fuse_needs_command" -f -a "install" -d 'Run `conda install --prefix` in an environment, then save it'
complete -c conda-fuse -n "__fish_conda_fuse_needs_command" -f -a "remove" -d 'Run `conda remove --prefix` in an environment, then save it'
complete -c conda-fuse -n "__fish_conda_fuse_needs_command" -f -a "rm" -d 'Delete an environment: its archive, unsaved changes, lock and mount point'
complete -c conda-fuse -n "__fish_conda_fuse_needs_command" -f -a "rename" -d 'Rename an environment: its archive, snapshots and Jupyter kernelspecs (files stay as they are: a mount serves them rewritten for the new prefix)'
complete -c conda-fuse -n "__fish_conda_fuse_needs_command" -f -a "history" -d 'List an environment\'s versions: now and the snapshots saves kept, with package changes'
complete -c conda-fuse -n "__fish_conda_fuse_needs_command" -f -a "diff" -d 'Show the package changes between a snapshot (default 1) and the current version'
complete -c conda-fuse -n "__fish_conda_fuse_needs_command" -f -a "rollback" -d 'Make a snapshot the current version again (the replaced one is kept as a snapshot)'
complete -c conda-fuse -n "__fish_conda_fuse_needs_command" -f -a "kernel" -d 'Jupyter kernels from environments: install, list, remove'
complete -c conda-fuse -n "__fish_conda_fuse_needs_command" -f -a "prune" -d 'Delete an environment\'s snapshots (all, or all but the newest --keep N)'
complete -c conda-fuse -n "__fish_conda_fuse_needs_command" -f -a "env-list" -d 'List the environments: size, entries, mounted (rw/ro, pid), unsaved changes'
complete -c conda-fuse -n "__fish_conda_fuse_needs_command" -f -a "paths" -d 'Show where archives, mounts, state, upper layers and temporary files live'
complete -c conda-fuse -n "__fish_conda_fuse_needs_command" -f -a "run" -d 'Run a command in an environment (batch jobs): mounted read-only and shared while needed'
complete -c conda-fuse -n "__fish_conda_fuse_needs_command" -f -a "doctor" -d 'Check FUSE, conda, free space, stale mounts and locks, and the shell hook'
complete -c conda-fuse -n "__fish_conda_fuse_needs_command" -f -a "shell-hook" -d 'Print the shell functions (conda-fuse-*) and TAB completion for a shell'
complete -c conda-fuse -n "__fish_conda_fuse_needs_command" -f -a "activate-script" -d 'Shell code activating PREFIX without conda\'s shell function (used by conda-fuse-activate)'
complete -c conda-fuse -n "__fish_conda_fuse_needs_command" -f -a "deactivate-script" -d 'Shell code deactivating the active environment (used by conda-fuse-deactivate)'
complete -c conda-fuse -n "__fish_conda_fuse_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c conda-fuse -n "__fish_conda_fuse_using_subcommand pack" -l name -d 'Make it the environment NAME: $CONDA_FUSE_ARCHIVE_PATH/NAME.zip with the files under NAME/ [default without --output: the directory\'s name]' -r
complete -c conda-fuse -n "__fish_conda_fuse_using_subcommand pack" -s o -l output -d 'Archive to write instead (written beside as NAME.tmp-*, renamed in when complete)' -r -F
complete -c conda-fuse -n "__fish_conda_fuse_using_subcommand pack" -l from-prefix -d 'The prefix the environment was installed at, if not DIR itself (it was moved); recorded so that mounts serve its files rewritten for their own' -r -F
complete -c conda-fuse -n "__fish_conda_fuse_using_subcommand pack" -l prefix-dir -d 'Put entries under NAME/ inside the archive (the layout of environments by name)' -r
complete -c conda-fuse -n "__fish_conda_fuse_using_subcommand pack" -l compression -d 'Compression method: deflate (readable by every zip tool), zstd, or store' -r -f -a "deflate\t''
zstd\t''
store\t''"
complete -c conda-fuse -n "__fish_conda_fuse_using_subcommand pack" -l level -d 'Compression level (deflate 1-9, default 9; zstd 1-22, default 3)' -r
complete -c conda-fuse -n "__fish_conda_fuse_using_subcommand pack" -l threads -d 'Compression workers (default: cores + 2)' -r
complete -c conda-fuse -n "__fish_conda_fuse_using_subcommand pack" -l force -d 'Replace the output archive if it exists'
complete -c conda-fuse -n "__fish_conda_fuse_using_subcommand pack" -s h -l help -d 'Print help'
complete -c conda-fuse -n "__fish_conda_fuse_using_subcommand mount" -l upper-dir -d 'Where writable mounts keep changes until saved [default: $CONDA_FUSE_UPPER_DIR, else ~/.local/state/conda-fuse/upper]' -r -F
complete -c conda-fuse -n "__fish_conda_fuse_using_subcommand mount" -l compression -d 'How saves compress new data: deflate (level 6; readable by every zip tool), zstd, or store' -r -f -a "deflate\t''
zstd\t''
store\t''"
complete -c conda-fuse -n "__fish_conda_fuse_using_subcommand mount" -l cache-size -d 'Memory for decompressed entries, in MiB' -r
complete -c conda-fuse -n "__fish_conda_fuse_using_subcommand mount" -l spill-size -d 'Disk for decompressed large entries (in TMPDIR), in MiB' -r
complete -c conda-fuse -n "__fish_conda_fuse_using_subcommand mount" -l threads -d 'Threads serving requests (default: 2 per core, at least 4)' -r
complete -c conda-fuse -n "__fish_conda_fuse_using_subcommand mount" -l read-only -d 'Serve the archive read-only (no writer lock: any number of these, on any host)'
complete -c conda-fuse -n "__fish_conda_fuse_using_subcommand mount" -l foreground -d 'Stay in the foreground (logs to the terminal; Ctrl-C unmounts)'
complete -c conda-fuse -n "__fish_conda_fuse_using_subcommand mount" -l allow-other -d 'Let other users of this host use the mount (non-root users need user_allow_other in /etc/fuse.conf); group- and other-writable bits of archive entries are then not served'
complete -c conda-fuse -n "__fish_conda_fuse_using_subcommand mount" -l keep-owners -d 'Serve the owners the archive records instead of showing every entry as yours (always so for root)'
complete -c conda-fuse -n "__fish_conda_fuse_using_subcommand mount" -l steal-lock -d 'Take the writer lock even though its holder (on another node) looks alive: for a node that is down but whose heartbeat has not gone stale yet. The holder, if it still runs, stops accepting changes at its next heartbeat'
complete -c conda-fuse -n "__fish_conda_fuse_using_subcommand mount" -s h -l help -d 'Print help'
complete -c conda-fuse -n "__fish_conda_fuse_using_subcommand commit" -s h -l help -d 'Print help'
complete -c conda-fuse -n "__fish_conda_fuse_using_subcommand unmount" -l discard -d 'Throw away the changes made since the last save instead of saving them'
complete -c conda-fuse -n "__fish_conda_fuse_using_subcommand unmount" -l lazy -d 'Detach even if busy; the daemon exits once the last user is gone'
complete -c conda-fuse -n "__fish_conda_fuse_using_subcommand unmount" -s h -l help -d 'Print help'
complete -c conda-fuse -n "__fish_conda_fuse_using_subcommand status" -l json -d 'Print JSON'
complete -c conda-fuse -n "__fish_conda_fuse_using_subcommand status" -s h -l help -d 'Print help'
complete -c conda-fuse -n "__fish_conda_fuse_using_subcommand create" -s h -l help -d 'Print help'
complete -c conda-fuse -n "__fish_conda_fuse_using_subcommand activate" -l read-only -d 'Mount read-only even if the writer lock is free'
complete -c conda-fuse -n "__fish_conda_fuse_using_subcommand activate" -l steal-lock -d 'Take the writer lock from a holder on another node that looks alive (see conda-fuse mount --help)'
complete -c conda-fuse -n "__fish_conda_fuse_using_subcommand activate" -s h -l help -d 'Print help'
complete -c conda-fuse -n "__fish_conda_fuse_using_subcommand install" -s h -l help -d 'Print help'
complete -c conda-fuse -n "__fish_conda_fuse_using_subcommand remove" -s h -l help -d 'Print help'
complete -c conda-fuse -n "__fish_conda_fuse_using_subcommand rm" -s y -l yes -d 'Do not ask (needed when there is no terminal to ask on)'
complete -c conda-fuse -n "__fish_conda_fuse_using_subcommand rm" -s f -l force -d 'Delete even while mounted: unmount first, throwing unsaved changes away'
complete -c conda-fuse -n "__fish_conda_fuse_using_subcommand rm" -s h -l help -d 'Print help'
complete -c conda-fuse -n "__fish_conda_fuse_using_subcommand rename" -s h -l help -d 'Print help'
complete -c conda-fuse -n "__fish_conda_fuse_using_subcommand history" -s h -l help -d 'Print help'
complete -c conda-fuse -n "__fish_conda_fuse_using_subcommand diff" -s h -l help -d 'Print help'
complete -c conda-fuse -n "__fish_conda_fuse_using_subcommand rollback" -l to -d 'Snapshot to make current (1 = the newest, the version before the last save)' -r
complete -c conda-fuse -n "__fish_conda_fuse_using_subcommand rollback" -s h -l help -d 'Print help'
complete -c conda-fuse -n "__fish_conda_fuse_using_subcommand kernel; and not __fish_seen_subcommand_from install list remove launch help" -s h -l help -d 'Print help'
complete -c conda-fuse -n "__fish_conda_fuse_using_subcommand kernel; and not __fish_seen_subcommand_from install list remove launch help" -f -a "install" -d 'Write a kernelspec that starts the env\'s Python kernel through conda-fuse'
complete -c conda-fuse -n "__fish_conda_fuse_using_subcommand kernel; and not __fish_seen_subcommand_from install list remove launch help" -f -a "list" -d 'List the kernels conda-fuse installed'
complete -c conda-fuse -n "__fish_conda_fuse_using_subcommand kernel; and not __fish_seen_subcommand_from install list remove launch help" -f -a "remove" -d 'Remove the kernel of an environment'
complete -c conda-fuse -n "__fish_conda_fuse_using_subcommand kernel; and not __fish_seen_subcommand_from install list remove launch help" -f -a "launch" -d 'What a kernelspec runs: mount read-only (shared), activate, run ipykernel'
complete -c conda-fuse -n "__fish_conda_fuse_using_subcommand kernel; and not __fish_seen_subcommand_from install list remove launch help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c conda-fuse -n "__fish_conda_fuse_using_subcommand kernel; and __fish_seen_subcommand_from install" -l display-name -d 'The name Jupyter shows [default: "Python (NAME via conda-fuse)"]' -r
complete -c conda-fuse -n "__fish_conda_fuse_using_subcommand kernel; and __fish_seen_subcommand_from install" -l prefix -d 'Install into Jupyter\'s data directory under DIR (DIR/share/jupyter/kernels), e.g. a JupyterHub\'s sys.prefix, instead of your own (~/.local/share/jupyter, or $JUPYTER_DATA_DIR)' -r -F
complete -c conda-fuse -n "__fish_conda_fuse_using_subcommand kernel; and __fish_seen_subcommand_from install" -l user -d 'Your own Jupyter data directory (the default)'
complete -c conda-fuse -n "__fish_conda_fuse_using_subcommand kernel; and __fish_seen_subcommand_from install" -s h -l help -d 'Print help'
complete -c conda-fuse -n "__fish_conda_fuse_using_subcommand kernel; and __fish_seen_subcommand_from list" -l prefix -d 'Install into Jupyter\'s data directory under DIR (DIR/share/jupyter/kernels), e.g. a JupyterHub\'s sys.prefix, instead of your own (~/.local/share/jupyter, or $JUPYTER_DATA_DIR)' -r -F
complete -c conda-fuse -n "__fish_conda_fuse_using_subcommand kernel; and __fish_seen_subcommand_from list" -l user -d 'Your own Jupyter data directory (the default)'
complete -c conda-fuse -n "__fish_conda_fuse_using_subcommand kernel; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c conda-fuse -n "__fish_conda_fuse_using_subcommand kernel; and __fish_seen_subcommand_from remove" -l prefix -d 'Install into Jupyter\'s data directory under DIR (DIR/share/jupyter/kernels), e.g. a JupyterHub\'s sys.prefix, instead of your own (~/.local/share/jupyter, or $JUPYTER_DATA_DIR)' -r -F
complete -c conda-fuse -n "__fish_conda_fuse_using_subcommand kernel; and __fish_seen_subcommand_from remove" -l user -d 'Your own Jupyter data directory (the default)'
complete -c conda-fuse -n "__fish_conda_fuse_using_subcommand kernel; and __fish_seen_subcommand_from remove" -s h -l help -d 'Print help'
complete -c conda-fuse -n "__fish_conda_fuse_using_subcommand kernel; and __fish_seen_subcommand_from launch" -s h -l help -d 'Print help'
complete -c conda-fuse -n "__fish_conda_fuse_using_subcommand kernel; and __fish_seen_subcommand_from help" -f -a "install" -d 'Write a kernelspec that starts the env\'s Python kernel through conda-fuse'
complete -c conda-fuse -n "__fish_conda_fuse_using_subcommand kernel; and __fish_seen_subcommand_from help" -f -a "list" -d 'List the kernels conda-fuse installed'
complete -c conda-fuse -n "__fish_conda_fuse_using_subcommand kernel; and __fish_seen_subcommand_from help" -f -a "remove" -d 'Remove the kernel of an environment'
complete -c conda-fuse -n "__fish_conda_fuse_using_subcommand kernel; and __fish_seen_subcommand_from help" -f -a "launch" -d 'What a kernelspec runs: mount read-only (shared), activate, run ipykernel'
complete -c conda-fuse -n "__fish_conda_fuse_using_subcommand kernel; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c conda-fuse -n "__fish_conda_fuse_using_subcommand prune" -l keep -d 'Snapshots to keep (the newest)' -r
complete -c conda-fuse -n "__fish_conda_fuse_using_subcommand prune" -s h -l help -d 'Print help'
complete -c conda-fuse -n "__fish_conda_fuse_using_subcommand env-list" -l names -d 'Print only the names, one per line (for scripts and TAB completion)'
complete -c conda-fuse -n "__fish_conda_fuse_using_subcommand env-list" -l json -d 'Print JSON'
complete -c conda-fuse -n "__fish_conda_fuse_using_subcommand env-list" -s h -l help -d 'Print help'
complete -c conda-fuse -n "__fish_conda_fuse_using_subcommand paths" -s h -l help -d 'Print help'
complete -c conda-fuse -n "__fish_conda_fuse_using_subcommand run" -l write -d 'Mount writable (the writer lock must be free) and save the changes when CMD ends'
complete -c conda-fuse -n "__fish_conda_fuse_using_subcommand run" -s h -l help -d 'Print help'
complete -c conda-fuse -n "__fish_conda_fuse_using_subcommand doctor" -s h -l help -d 'Print help'
complete -c conda-fuse -n "__fish_conda_fuse_using_subcommand shell-hook" -l rc-file -d 'Print the path of the shell\'s rc file (where the hook line goes) instead'
complete -c conda-fuse -n "__fish_conda_fuse_using_subcommand shell-hook" -l add-to-rc -d 'Add the hook line to the shell\'s rc file, unless it is there already'
complete -c conda-fuse -n "__fish_conda_fuse_using_subcommand shell-hook" -s h -l help -d 'Print help'
complete -c conda-fuse -n "__fish_conda_fuse_using_subcommand activate-script" -l shell -d 'Shell to write code for' -r -f -a "bash\t''
zsh\t''
fish\t''"
complete -c conda-fuse -n "__fish_conda_fuse_using_subcommand activate-script" -s h -l help -d 'Print help'
complete -c conda-fuse -n "__fish_conda_fuse_using_subcommand deactivate-script" -l shell -d 'Shell to write code for' -r -f -a "bash\t''
zsh\t''
fish\t''"
complete -c conda-fuse -n "__fish_conda_fuse_using_subcommand deactivate-script" -s h -l help -d 'Print help'
complete -c conda-fuse -n "__fish_conda_fuse_using_subcommand help; and not __fish_seen_subcommand_from pack mount commit unmount status create activate install remove rm rename history diff rollback kernel prune env-list paths run doctor shell-hook activate-script deactivate-script help" -f -a "pack" -d 'Pack a directory (an environment) into a zip archive'
complete -c conda-fuse -n "__fish_conda_fuse_using_subcommand help; and not __fish_seen_subcommand_from pack mount commit unmount status create activate install remove rm rename history diff rollback kernel prune env-list paths run doctor shell-hook activate-script deactivate-script help" -f -a "mount" -d 'Mount an archive at a directory, writable unless --read-only (a background daemon serves it)'
complete -c conda-fuse -n "__fish_conda_fuse_using_subcommand help; and not __fish_seen_subcommand_from pack mount commit unmount status create activate install remove rm rename history diff rollback kernel prune env-list paths run doctor shell-hook activate-script deactivate-script help" -f -a "commit" -d 'Save the changes of a writable mount into its archive now; it stays mounted'
complete -c conda-fuse -n "__fish_conda_fuse_using_subcommand help; and not __fish_seen_subcommand_from pack mount commit unmount status create activate install remove rm rename history diff rollback kernel prune env-list paths run doctor shell-hook activate-script deactivate-script help" -f -a "unmount" -d 'Save (or --discard) the changes, unmount, and wait for the daemon to exit'
complete -c conda-fuse -n "__fish_conda_fuse_using_subcommand help; and not __fish_seen_subcommand_from pack mount commit unmount status create activate install remove rm rename history diff rollback kernel prune env-list paths run doctor shell-hook activate-script deactivate-script help" -f -a "status" -d 'Show what a mount serves: archive, mode, daemon pid, unsaved changes, cache and memory use'
complete -c conda-fuse -n "__fish_conda_fuse_using_subcommand help; and not __fish_seen_subcommand_from pack mount commit unmount status create activate install remove rm rename history diff rollback kernel prune env-list paths run doctor shell-hook activate-script deactivate-script help" -f -a "create" -d 'Create an environment: a new archive, mounted, `conda create --prefix`, saved'
complete -c conda-fuse -n "__fish_conda_fuse_using_subcommand help; and not __fish_seen_subcommand_from pack mount commit unmount status create activate install remove rm rename history diff rollback kernel prune env-list paths run doctor shell-hook activate-script deactivate-script help" -f -a "activate" -d 'Mount an environment if needed (writable if the writer lock is free) and print its prefix; the shell function conda-fuse-activate then activates it'
complete -c conda-fuse -n "__fish_conda_fuse_using_subcommand help; and not __fish_seen_subcommand_from pack mount commit unmount status create activate install remove rm rename history diff rollback kernel prune env-list paths run doctor shell-hook activate-script deactivate-script help" -f -a "install" -d 'Run `conda install --prefix` in an environment, then save it'
complete -c conda-fuse -n "__fish_conda_fuse_using_subcommand help; and not __fish_seen_subcommand_from pack mount commit unmount status create activate install remove rm rename history diff rollback kernel prune env-list paths run doctor shell-hook activate-script deactivate-script help" -f -a "remove" -d 'Run `conda remove --prefix` in an environment, then save it'
complete -c conda-fuse -n "__fish_conda_fuse_using_subcommand help; and not __fish_seen_subcommand_from pack mount commit unmount status create activate install remove rm rename history diff rollback kernel prune env-list paths run doctor shell-hook activate-script deactivate-script help" -f -a "rm" -d 'Delete an environment: its archive, unsaved changes, lock and mount point'
complete -c conda-fuse -n "__fish_conda_fuse_using_subcommand help; and not __fish_seen_subcommand_from pack mount commit unmount status create activate install remove rm rename history diff rollback kernel prune env-list paths run doctor shell-hook activate-script deactivate-script help" -f -a "rename" -d 'Rename an environment: its archive, snapshots and Jupyter kernelspecs (files stay as they are: a mount serves them rewritten for the new prefix)'
complete -c conda-fuse -n "__fish_conda_fuse_using_subcommand help; and not __fish_seen_subcommand_from pack mount commit unmount status create activate install remove rm rename history diff rollback kernel prune env-list paths run doctor shell-hook activate-script deactivate-script help" -f -a "history" -d 'List an environment\'s versions: now and the snapshots saves kept, with package changes'
complete -c conda-fuse -n "__fish_conda_fuse_using_subcommand help; and not __fish_seen_subcommand_from pack mount commit unmount status create activate install remove rm rename history diff rollback kernel prune env-list paths run doctor shell-hook activate-script deactivate-script help" -f -a "diff" -d 'Show the package changes between a snapshot (default 1) and the current version'
complete -c conda-fuse -n "__fish_conda_fuse_using_subcommand help; and not __fish_seen_subcommand_from pack mount commit unmount status create activate install remove rm rename history diff rollback kernel prune env-list paths run doctor shell-hook activate-script deactivate-script help" -f -a "rollback" -d 'Make a snapshot the current version again (the replaced one is kept as a snapshot)'
complete -c conda-fuse -n "__fish_conda_fuse_using_subcommand help; and not __fish_seen_subcommand_from pack mount commit unmount status create activate install remove rm rename history diff rollback kernel prune env-list paths run doctor shell-hook activate-script deactivate-script help" -f -a "kernel" -d 'Jupyter kernels from environments: install, list, remove'
complete -c conda-fuse -n "__fish_conda_fuse_using_subcommand help; and not __fish_seen_subcommand_from pack mount commit unmount status create activate install remove rm rename history diff rollback kernel prune env-list paths run doctor shell-hook activate-script deactivate-script help" -f -a "prune" -d 'Delete an environment\'s snapshots (all, or all but the newest --keep N)'
complete -c conda-fuse -n "__fish_conda_fuse_using_subcommand help; and not __fish_seen_subcommand_from pack mount commit unmount status create activate install remove rm rename history diff rollback kernel prune env-list paths run doctor shell-hook activate-script deactivate-script help" -f -a "env-list" -d 'List the environments: size, entries, mounted (rw/ro, pid), unsaved changes'
complete -c conda-fuse -n "__fish_conda_fuse_using_subcommand help; and not __fish_seen_subcommand_from pack mount commit unmount status create activate install remove rm rename history diff rollback kernel prune env-list paths run doctor shell-hook activate-script deactivate-script help" -f -a "paths" -d 'Show where archives, mounts, state, upper layers and temporary files live'
complete -c conda-fuse -n "__fish_conda_fuse_using_subcommand help; and not __fish_seen_subcommand_from pack mount commit unmount status create activate install remove rm rename history diff rollback kernel prune env-list paths run doctor shell-hook activate-script deactivate-script help" -f -a "run" -d 'Run a command in an environment (batch jobs): mounted read-only and shared while needed'
complete -c conda-fuse -n "__fish_conda_fuse_using_subcommand help; and not __fish_seen_subcommand_from pack mount commit unmount status create activate install remove rm rename history diff rollback kernel prune env-list paths run doctor shell-hook activate-script deactivate-script help" -f -a "doctor" -d 'Check FUSE, conda, free space, stale mounts and locks, and the shell hook'
complete -c conda-fuse -n "__fish_conda_fuse_using_subcommand help; and not __fish_seen_subcommand_from pack mount commit unmount status create activate install remove rm rename history diff rollback kernel prune env-list paths run doctor shell-hook activate-script deactivate-script help" -f -a "shell-hook" -d 'Print the shell functions (conda-fuse-*) and TAB completion for a shell'
complete -c conda-fuse -n "__fish_conda_fuse_using_subcommand help; and not __fish_seen_subcommand_from pack mount commit unmount status create activate install remove rm rename history diff rollback kernel prune env-list paths run doctor shell-hook activate-script deactivate-script help" -f -a "activate-script" -d 'Shell code activating PREFIX without conda\'s shell function (used by conda-fuse-activate)'
complete -c conda-fuse -n "__fish_conda_fuse_using_subcommand help; and not __fish_seen_subcommand_from pack mount commit unmount status create activate install remove rm rename history diff rollback kernel prune env-list paths run doctor shell-hook activate-script deactivate-script help" -f -a "deactivate-script" -d 'Shell code deactivating the active environment (used by conda-fuse-deactivate)'
complete -c conda-fuse -n "__fish_conda_fuse_using_subcommand help; and not __fish_seen_subcommand_from pack mount commit unmount status create activate install remove rm rename history diff rollback kernel prune env-list paths run doctor shell-hook activate-script deactivate-script help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c conda-fuse -n "__fish_conda_fuse_using_subcommand help; and __fish_seen_subcommand_from kernel" -f -a "install" -d 'Write a kernelspec that starts the env\'s Python kernel through conda-fuse'
complete -c conda-fuse -n "__fish_conda_fuse_using_subcommand help; and __fish_seen_subcommand_from kernel" -f -a "list" -d 'List the kernels conda-fuse installed'
complete -c conda-fuse -n "__fish_conda_fuse_using_subcommand help; and __fish_seen_subcommand_from kernel" -f -a "remove" -d 'Remove the kernel of an environment'
complete -c conda-fuse -n "__fish_conda_fuse_using_subcommand help; and __fish_seen_subcommand_from kernel" -f -a "launch" -d 'What a kernelspec runs: mount read-only (shared), activate, run ipykernel'
# The words between `conda-fuse` and the one being completed name the command; where that command
# takes an environment name first (clap's tree says which), the names are offered.
function __conda_fuse_wants_env
    set -l words (commandline -opc)
    set -e words[1]
    contains -- "$words" 'commit' 'unmount' 'status' 'activate' 'install' 'remove' 'rm' 'rename' 'history' 'diff' 'rollback' 'kernel install' 'kernel remove' 'prune' 'run'
end
complete -c conda-fuse -f -n __conda_fuse_wants_env -a "(__conda_fuse_env_names)"
