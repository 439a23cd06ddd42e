{% include "hook/posix.sh" %}

# TAB completion: environment names for the functions, and for `conda-fuse` the subcommands and
# options (clap_complete) plus environment names where a subcommand takes one. Registered now if
# compinit has run, else right before the first prompt (compinit usually runs later in ~/.zshrc).
_conda_fuse_function() {
    local -a options
    case $words[1] in
{%- for f in functions %}
        {{ f.function }}) options=({{ f.options }}) ;;
{%- endfor %}
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
            ({{ env_patterns }})
                compadd -- ${(f)"$(__conda_fuse_env_names)"}
                return ;;
        esac
    fi
    _conda-fuse "$@"
}

# clap_complete's script as it generated it; it ends by registering itself with compdef, so it is
# evaluated once compinit has run (the hook's own registrations then take conda-fuse over).
__conda_fuse_clap_completion={{ clap_completion }}

__conda_fuse_register_completion() {
    (( $+functions[compdef] )) || return 1
    eval "$__conda_fuse_clap_completion"
    compdef _conda_fuse_function{% for f in functions %} {{ f.function }}{% endfor %}
    compdef _conda_fuse_cli conda-fuse
    precmd_functions=(${precmd_functions:#__conda_fuse_register_completion})
}
__conda_fuse_register_completion || precmd_functions+=(__conda_fuse_register_completion)
