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

{{ clap_completion }}
_conda_fuse_cli() {
    if (( CURRENT == 3 )) && [[ $PREFIX != -* ]]; then
        case $words[2] in
            {{ env_subcommands|join("|") }})
                compadd -- ${(f)"$(__conda_fuse_env_names)"}
                return ;;
        esac
    fi
    if (( CURRENT == 4 )) && [[ $words[2] == kernel && $PREFIX != -* ]]; then
        case $words[3] in
            install|remove)
                compadd -- ${(f)"$(__conda_fuse_env_names)"}
                return ;;
        esac
    fi
    _conda-fuse "$@"
}

__conda_fuse_register_completion() {
    (( $+functions[compdef] )) || return 1
    compdef _conda_fuse_function{% for f in functions %} {{ f.function }}{% endfor %}
    compdef _conda_fuse_cli conda-fuse
    precmd_functions=(${precmd_functions:#__conda_fuse_register_completion})
}
__conda_fuse_register_completion || precmd_functions+=(__conda_fuse_register_completion)
