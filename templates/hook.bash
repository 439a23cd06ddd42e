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
# The words between `conda-fuse` and the one being completed name the command; where that command
# takes an environment name first (clap's tree says which), the names are offered.
__conda_fuse_complete_cli() {
    local cur=${COMP_WORDS[COMP_CWORD]} typed= i
    for ((i = 1; i < COMP_CWORD; i++)); do
        typed+="${typed:+ }${COMP_WORDS[i]}"
    done
    if [[ $cur != -* ]]; then
        case $typed in
            {{ env_patterns }})
                COMPREPLY=($(compgen -W "$(__conda_fuse_env_names)" -- "$cur"))
                return 0 ;;
        esac
    fi
    {{ clap_function }} "$@"
}
complete -F __conda_fuse_complete_cli -o bashdefault -o default conda-fuse
