{% include "hook/posix.sh" %}

# TAB completion: environment names for the functions, and for `conda-fuse` the subcommands and
# options (clap_complete) plus environment names where a subcommand takes one.
__conda_fuse_complete_function() {
    local cur=${COMP_WORDS[COMP_CWORD]} options=
    case $1 in
{%- for f in functions %}
        {{ f.function }}) options="{{ f.options }}" ;;
{%- endfor %}
    esac
    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$options" -- "$cur"))
    elif [[ $COMP_CWORD -eq 1 ]]; then
        COMPREPLY=($(compgen -W "$(__conda_fuse_env_names)" -- "$cur"))
    else
        COMPREPLY=($(compgen -f -- "$cur"))
    fi
}
complete -F __conda_fuse_complete_function{% for f in functions %} {{ f.function }}{% endfor %}

{{ clap_completion }}
__conda_fuse_complete_cli() {
    if [[ $COMP_CWORD -eq 2 && ${COMP_WORDS[2]} != -* ]]; then
        case ${COMP_WORDS[1]} in
            {{ env_subcommands|join("|") }})
                COMPREPLY=($(compgen -W "$(__conda_fuse_env_names)" -- "${COMP_WORDS[2]}"))
                return 0 ;;
        esac
    fi
    if [[ $COMP_CWORD -eq 3 && ${COMP_WORDS[1]} == kernel && ${COMP_WORDS[3]} != -* ]]; then
        case ${COMP_WORDS[2]} in
            install|remove)
                COMPREPLY=($(compgen -W "$(__conda_fuse_env_names)" -- "${COMP_WORDS[3]}"))
                return 0 ;;
        esac
    fi
    {{ clap_function }} "$@"
}
complete -F __conda_fuse_complete_cli -o bashdefault -o default conda-fuse
