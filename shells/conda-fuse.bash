# conda-fuse 0.1.0 shell functions for bash, printed by `conda-fuse shell-hook bash`.
# Load them from ~/.bashrc with:  eval "$(conda-fuse shell-hook bash)"
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
    if [ "$(type -t conda 2>/dev/null)" = function ]; then
        conda activate "$__cf_prefix" || return
        export CONDA_FUSE_ACTIVATED_BY=conda
    else
        __cf_code=$(command conda-fuse activate-script --shell bash "$__cf_prefix") || return
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
    if [ "${CONDA_FUSE_ACTIVATED_BY:-}" = conda ] && [ "$(type -t conda 2>/dev/null)" = function ]; then
        conda deactivate || return
    else
        __cf_code=$(command conda-fuse deactivate-script --shell bash) || return
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
# options (clap_complete) plus environment names where a subcommand takes one.
__conda_fuse_complete_function() {
    local cur=${COMP_WORDS[COMP_CWORD]} options=
    case $1 in
        conda-fuse-commit) options="--help" ;;
        conda-fuse-unmount) options="--discard --lazy --help" ;;
        conda-fuse-status) options="--json --help" ;;
        conda-fuse-activate) options="--read-only --steal-lock --help" ;;
        conda-fuse-install) options="--help" ;;
        conda-fuse-remove) options="--help" ;;
        conda-fuse-rm) options="--yes --force --help" ;;
        conda-fuse-rename) options="--help" ;;
        conda-fuse-history) options="--help" ;;
        conda-fuse-diff) options="--help" ;;
        conda-fuse-rollback) options="--to --help" ;;
        conda-fuse-prune) options="--keep --help" ;;
        conda-fuse-run) options="--write --help" ;;
    esac
    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$options" -- "$cur"))
    elif [[ $COMP_CWORD -eq 1 ]]; then
        COMPREPLY=($(compgen -W "$(__conda_fuse_env_names)" -- "$cur"))
    else
        COMPREPLY=($(compgen -f -- "$cur"))
    fi
}
complete -F __conda_fuse_complete_function conda-fuse-commit conda-fuse-unmount conda-fuse-status conda-fuse-activate conda-fuse-install conda-fuse-remove conda-fuse-rm conda-fuse-rename conda-fuse-history conda-fuse-diff conda-fuse-rollback conda-fuse-prune conda-fuse-run

_conda_fuse() {
    local i cur prev opts cmd
    COMPREPLY=()
    if [[ "${BASH_VERSINFO[0]}" -ge 4 ]]; then
        cur="$2"
    else
        cur="${COMP_WORDS[COMP_CWORD]}"
    fi
    prev="$3"
    cmd=""
    opts=""

    for i in "${COMP_WORDS[@]:0:COMP_CWORD}"
    do
        case "${cmd},${i}" in
            ",$1")
                cmd="conda_fuse"
                ;;
            conda_fuse,activate)
                cmd="conda_fuse__subcmd__activate"
                ;;
            conda_fuse,activate-script)
                cmd="conda_fuse__subcmd__activate__subcmd__script"
                ;;
            conda_fuse,commit)
                cmd="conda_fuse__subcmd__commit"
                ;;
            conda_fuse,create)
                cmd="conda_fuse__subcmd__create"
                ;;
            conda_fuse,deactivate-script)
                cmd="conda_fuse__subcmd__deactivate__subcmd__script"
                ;;
            conda_fuse,diff)
                cmd="conda_fuse__subcmd__diff"
                ;;
            conda_fuse,doctor)
                cmd="conda_fuse__subcmd__doctor"
                ;;
            conda_fuse,env-list)
                cmd="conda_fuse__subcmd__env__subcmd__list"
                ;;
            conda_fuse,help)
                cmd="conda_fuse__subcmd__help"
                ;;
            conda_fuse,history)
                cmd="conda_fuse__subcmd__history"
                ;;
            conda_fuse,install)
                cmd="conda_fuse__subcmd__install"
                ;;
            conda_fuse,kernel)
                cmd="conda_fuse__subcmd__kernel"
                ;;
            conda_fuse,mount)
                cmd="conda_fuse__subcmd__mount"
                ;;
            conda_fuse,pack)
                cmd="conda_fuse__subcmd__pack"
                ;;
            conda_fuse,paths)
                cmd="conda_fuse__subcmd__paths"
                ;;
            conda_fuse,prune)
                cmd="conda_fuse__subcmd__prune"
                ;;
            conda_fuse,remove)
                cmd="conda_fuse__subcmd__remove"
                ;;
            conda_fuse,rename)
                cmd="conda_fuse__subcmd__rename"
                ;;
            conda_fuse,rm)
                cmd="conda_fuse__subcmd__rm"
                ;;
            conda_fuse,rollback)
                cmd="conda_fuse__subcmd__rollback"
                ;;
            conda_fuse,run)
                cmd="conda_fuse__subcmd__run"
                ;;
            conda_fuse,shell-hook)
                cmd="conda_fuse__subcmd__shell__subcmd__hook"
                ;;
            conda_fuse,status)
                cmd="conda_fuse__subcmd__status"
                ;;
            conda_fuse,unmount)
                cmd="conda_fuse__subcmd__unmount"
                ;;
            conda_fuse__subcmd__help,activate)
                cmd="conda_fuse__subcmd__help__subcmd__activate"
                ;;
            conda_fuse__subcmd__help,activate-script)
                cmd="conda_fuse__subcmd__help__subcmd__activate__subcmd__script"
                ;;
            conda_fuse__subcmd__help,commit)
                cmd="conda_fuse__subcmd__help__subcmd__commit"
                ;;
            conda_fuse__subcmd__help,create)
                cmd="conda_fuse__subcmd__help__subcmd__create"
                ;;
            conda_fuse__subcmd__help,deactivate-script)
                cmd="conda_fuse__subcmd__help__subcmd__deactivate__subcmd__script"
                ;;
            conda_fuse__subcmd__help,diff)
                cmd="conda_fuse__subcmd__help__subcmd__diff"
                ;;
            conda_fuse__subcmd__help,doctor)
                cmd="conda_fuse__subcmd__help__subcmd__doctor"
                ;;
            conda_fuse__subcmd__help,env-list)
                cmd="conda_fuse__subcmd__help__subcmd__env__subcmd__list"
                ;;
            conda_fuse__subcmd__help,help)
                cmd="conda_fuse__subcmd__help__subcmd__help"
                ;;
            conda_fuse__subcmd__help,history)
                cmd="conda_fuse__subcmd__help__subcmd__history"
                ;;
            conda_fuse__subcmd__help,install)
                cmd="conda_fuse__subcmd__help__subcmd__install"
                ;;
            conda_fuse__subcmd__help,kernel)
                cmd="conda_fuse__subcmd__help__subcmd__kernel"
                ;;
            conda_fuse__subcmd__help,mount)
                cmd="conda_fuse__subcmd__help__subcmd__mount"
                ;;
            conda_fuse__subcmd__help,pack)
                cmd="conda_fuse__subcmd__help__subcmd__pack"
                ;;
            conda_fuse__subcmd__help,paths)
                cmd="conda_fuse__subcmd__help__subcmd__paths"
                ;;
            conda_fuse__subcmd__help,prune)
                cmd="conda_fuse__subcmd__help__subcmd__prune"
                ;;
            conda_fuse__subcmd__help,remove)
                cmd="conda_fuse__subcmd__help__subcmd__remove"
                ;;
            conda_fuse__subcmd__help,rename)
                cmd="conda_fuse__subcmd__help__subcmd__rename"
                ;;
            conda_fuse__subcmd__help,rm)
                cmd="conda_fuse__subcmd__help__subcmd__rm"
                ;;
            conda_fuse__subcmd__help,rollback)
                cmd="conda_fuse__subcmd__help__subcmd__rollback"
                ;;
            conda_fuse__subcmd__help,run)
                cmd="conda_fuse__subcmd__help__subcmd__run"
                ;;
            conda_fuse__subcmd__help,shell-hook)
                cmd="conda_fuse__subcmd__help__subcmd__shell__subcmd__hook"
                ;;
            conda_fuse__subcmd__help,status)
                cmd="conda_fuse__subcmd__help__subcmd__status"
                ;;
            conda_fuse__subcmd__help,unmount)
                cmd="conda_fuse__subcmd__help__subcmd__unmount"
                ;;
            conda_fuse__subcmd__help__subcmd__kernel,install)
                cmd="conda_fuse__subcmd__help__subcmd__kernel__subcmd__install"
                ;;
            conda_fuse__subcmd__help__subcmd__kernel,launch)
                cmd="conda_fuse__subcmd__help__subcmd__kernel__subcmd__launch"
                ;;
            conda_fuse__subcmd__help__subcmd__kernel,list)
                cmd="conda_fuse__subcmd__help__subcmd__kernel__subcmd__list"
                ;;
            conda_fuse__subcmd__help__subcmd__kernel,remove)
                cmd="conda_fuse__subcmd__help__subcmd__kernel__subcmd__remove"
                ;;
            conda_fuse__subcmd__kernel,help)
                cmd="conda_fuse__subcmd__kernel__subcmd__help"
                ;;
            conda_fuse__subcmd__kernel,install)
                cmd="conda_fuse__subcmd__kernel__subcmd__install"
                ;;
            conda_fuse__subcmd__kernel,launch)
                cmd="conda_fuse__subcmd__kernel__subcmd__launch"
                ;;
            conda_fuse__subcmd__kernel,list)
                cmd="conda_fuse__subcmd__kernel__subcmd__list"
                ;;
            conda_fuse__subcmd__kernel,remove)
                cmd="conda_fuse__subcmd__kernel__subcmd__remove"
                ;;
            conda_fuse__subcmd__kernel__subcmd__help,help)
                cmd="conda_fuse__subcmd__kernel__subcmd__help__subcmd__help"
                ;;
            conda_fuse__subcmd__kernel__subcmd__help,install)
                cmd="conda_fuse__subcmd__kernel__subcmd__help__subcmd__install"
                ;;
            conda_fuse__subcmd__kernel__subcmd__help,launch)
                cmd="conda_fuse__subcmd__kernel__subcmd__help__subcmd__launch"
                ;;
            conda_fuse__subcmd__kernel__subcmd__help,list)
                cmd="conda_fuse__subcmd__kernel__subcmd__help__subcmd__list"
                ;;
            conda_fuse__subcmd__kernel__subcmd__help,remove)
                cmd="conda_fuse__subcmd__kernel__subcmd__help__subcmd__remove"
                ;;
            *)
                ;;
        esac
    done

    case "${cmd}" in
        conda_fuse)
            opts="-h -V --help --version pack mount commit unmount status create activate install remove rm rename history diff rollback kernel prune env-list paths run doctor shell-hook activate-script deactivate-script help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 1 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        conda_fuse__subcmd__activate)
            opts="-h --read-only --steal-lock --help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        conda_fuse__subcmd__activate__subcmd__script)
            opts="-h --shell --help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --shell)
                    COMPREPLY=($(compgen -W "bash zsh fish" -- "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        conda_fuse__subcmd__commit)
            opts="-h --help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        conda_fuse__subcmd__create)
            opts="-h --help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        conda_fuse__subcmd__deactivate__subcmd__script)
            opts="-h --shell --help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --shell)
                    COMPREPLY=($(compgen -W "bash zsh fish" -- "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        conda_fuse__subcmd__diff)
            opts="-h --help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        conda_fuse__subcmd__doctor)
            opts="-h --help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        conda_fuse__subcmd__env__subcmd__list)
            opts="-h --names --json --help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        conda_fuse__subcmd__help)
            opts="pack mount commit unmount status create activate install remove rm rename history diff rollback kernel prune env-list paths run doctor shell-hook activate-script deactivate-script help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        conda_fuse__subcmd__help__subcmd__activate)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        conda_fuse__subcmd__help__subcmd__activate__subcmd__script)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        conda_fuse__subcmd__help__subcmd__commit)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        conda_fuse__subcmd__help__subcmd__create)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        conda_fuse__subcmd__help__subcmd__deactivate__subcmd__script)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        conda_fuse__subcmd__help__subcmd__diff)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        conda_fuse__subcmd__help__subcmd__doctor)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        conda_fuse__subcmd__help__subcmd__env__subcmd__list)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        conda_fuse__subcmd__help__subcmd__help)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        conda_fuse__subcmd__help__subcmd__history)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        conda_fuse__subcmd__help__subcmd__install)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        conda_fuse__subcmd__help__subcmd__kernel)
            opts="install list remove launch"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        conda_fuse__subcmd__help__subcmd__kernel__subcmd__install)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        conda_fuse__subcmd__help__subcmd__kernel__subcmd__launch)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        conda_fuse__subcmd__help__subcmd__kernel__subcmd__list)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        conda_fuse__subcmd__help__subcmd__kernel__subcmd__remove)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        conda_fuse__subcmd__help__subcmd__mount)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        conda_fuse__subcmd__help__subcmd__pack)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        conda_fuse__subcmd__help__subcmd__paths)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        conda_fuse__subcmd__help__subcmd__prune)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        conda_fuse__subcmd__help__subcmd__remove)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        conda_fuse__subcmd__help__subcmd__rename)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        conda_fuse__subcmd__help__subcmd__rm)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        conda_fuse__subcmd__help__subcmd__rollback)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        conda_fuse__subcmd__help__subcmd__run)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        conda_fuse__subcmd__help__subcmd__shell__subcmd__hook)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        conda_fuse__subcmd__help__subcmd__status)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        conda_fuse__subcmd__help__subcmd__unmount)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        conda_fuse__subcmd__history)
            opts="-h --help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        conda_fuse__subcmd__install)
            opts="-h --help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        conda_fuse__subcmd__kernel)
            opts="-h --help install list remove launch help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        conda_fuse__subcmd__kernel__subcmd__help)
            opts="install list remove launch help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        conda_fuse__subcmd__kernel__subcmd__help__subcmd__help)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        conda_fuse__subcmd__kernel__subcmd__help__subcmd__install)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        conda_fuse__subcmd__kernel__subcmd__help__subcmd__launch)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        conda_fuse__subcmd__kernel__subcmd__help__subcmd__list)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        conda_fuse__subcmd__kernel__subcmd__help__subcmd__remove)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        conda_fuse__subcmd__kernel__subcmd__install)
            opts="-h --display-name --prefix --user --help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --display-name)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --prefix)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        conda_fuse__subcmd__kernel__subcmd__launch)
            opts="-h --help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        conda_fuse__subcmd__kernel__subcmd__list)
            opts="-h --prefix --user --help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --prefix)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        conda_fuse__subcmd__kernel__subcmd__remove)
            opts="-h --prefix --user --help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --prefix)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        conda_fuse__subcmd__mount)
            opts="-h --read-only --upper-dir --compression --foreground --cache-size --spill-size --threads --allow-other --keep-owners --steal-lock --help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --upper-dir)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --compression)
                    COMPREPLY=($(compgen -W "deflate zstd store" -- "${cur}"))
                    return 0
                    ;;
                --cache-size)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --spill-size)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --threads)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        conda_fuse__subcmd__pack)
            opts="-o -h --name --output --from-prefix --prefix-dir --compression --level --threads --force --help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --name)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --output)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                -o)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --from-prefix)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --prefix-dir)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --compression)
                    COMPREPLY=($(compgen -W "deflate zstd store" -- "${cur}"))
                    return 0
                    ;;
                --level)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --threads)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        conda_fuse__subcmd__paths)
            opts="-h --help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        conda_fuse__subcmd__prune)
            opts="-h --keep --help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --keep)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        conda_fuse__subcmd__remove)
            opts="-h --help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        conda_fuse__subcmd__rename)
            opts="-h --help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        conda_fuse__subcmd__rm)
            opts="-y -f -h --yes --force --help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        conda_fuse__subcmd__rollback)
            opts="-h --to --help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --to)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        conda_fuse__subcmd__run)
            opts="-h --write --help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        conda_fuse__subcmd__shell__subcmd__hook)
            opts="-h --rc-file --add-to-rc --help bash zsh fish"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        conda_fuse__subcmd__status)
            opts="-h --json --help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        conda_fuse__subcmd__unmount)
            opts="-h --discard --lazy --help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
    esac
}

if [[ "${BASH_VERSINFO[0]}" -eq 4 && "${BASH_VERSINFO[1]}" -ge 4 || "${BASH_VERSINFO[0]}" -gt 4 ]]; then
    complete -F _conda_fuse -o nosort -o bashdefault -o default conda_fuse
else
    complete -F _conda_fuse -o bashdefault -o default conda_fuse
fi
# The words between `conda-fuse` and the one being completed name the command; where that command
# takes an environment name first (clap's tree says which), the names are offered.
__conda_fuse_complete_cli() {
    local cur=${COMP_WORDS[COMP_CWORD]} typed= i
    for ((i = 1; i < COMP_CWORD; i++)); do
        typed+="${typed:+ }${COMP_WORDS[i]}"
    done
    if [[ $cur != -* ]]; then
        case $typed in
            'commit'|'unmount'|'status'|'activate'|'install'|'remove'|'rm'|'rename'|'history'|'diff'|'rollback'|'kernel install'|'kernel remove'|'prune'|'run')
                COMPREPLY=($(compgen -W "$(__conda_fuse_env_names)" -- "$cur"))
                return 0 ;;
        esac
    fi
    _conda_fuse "$@"
}
complete -F __conda_fuse_complete_cli -o bashdefault -o default conda-fuse
