# conda-fuse {{ version }} shell functions for fish, printed by `conda-fuse shell-hook fish`.
# Load them from ~/.config/fish/config.fish with:  conda-fuse shell-hook fish | source
# Each conda-fuse-X function runs `conda-fuse X`; activate, deactivate, unmount and rm also change
# this shell (conda activate / deactivate), which a program cannot do for its parent.
{% for w in wrappers %}
function {{ w.function }} --description "{{ w.description }}"
    command conda-fuse {{ w.subcommand }} $argv
end
{% endfor %}
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

function conda-fuse-unmount --description "{{ unmount_description }}"
    __conda_fuse_leave $argv
    command conda-fuse unmount $argv
end

function conda-fuse-rm --description "{{ rm_description }}"
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
{%- for f in functions %}
complete -c {{ f.function }} -f -n "test (count (commandline -opc)) -eq 1" -a "(__conda_fuse_env_names)"
{%- for o in f.option_list %}
complete -c {{ f.function }} -l {{ o }}
{%- endfor %}
{%- endfor %}

{{ clap_completion }}
# The words between `conda-fuse` and the one being completed name the command; where that command
# takes an environment name first (clap's tree says which), the names are offered.
function __conda_fuse_wants_env
    set -l words (commandline -opc)
    set -e words[1]
    contains -- "$words" {{ env_paths }}
end
complete -c conda-fuse -f -n __conda_fuse_wants_env -a "(__conda_fuse_env_names)"
