# conda-fuse {{ version }} shell functions for {{ shell }}, printed by `conda-fuse shell-hook {{ shell }}`.
# Load them from ~/.{{ shell }}rc with:  eval "$(conda-fuse shell-hook {{ shell }})"
# Each conda-fuse-X function runs `conda-fuse X`; activate, deactivate, unmount and rm also change
# this shell (conda activate / deactivate), which a program cannot do for its parent.
{% for w in wrappers %}
{{ w.function }}() { command conda-fuse {{ w.subcommand }} "$@"; }
{%- endfor %}

conda-fuse-activate() {
    local __cf_prefix __cf_code
    __cf_prefix=$(command conda-fuse activate "$@") || return
    [ -n "$__cf_prefix" ] || return 1
    if [ -n "${CONDA_FUSE_ACTIVE_ENV:-}" ]; then
        conda-fuse-deactivate || return
    fi
    if {{ conda_function_test }}; then
        conda activate "$__cf_prefix" || return
        export CONDA_FUSE_ACTIVATED_BY=conda
    else
        __cf_code=$(command conda-fuse activate-script --shell {{ shell }} "$__cf_prefix") || return
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
    if [ "${CONDA_FUSE_ACTIVATED_BY:-}" = conda ] && {{ conda_function_test }}; then
        conda deactivate || return
    else
        __cf_code=$(command conda-fuse deactivate-script --shell {{ shell }}) || return
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
