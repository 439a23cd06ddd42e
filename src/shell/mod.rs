//! Shell code, rendered from the askama templates in `templates/`: the hook that defines the
//! `conda-fuse-*` functions and TAB completion (`conda-fuse shell-hook SHELL`), and the code that
//! activates or deactivates an environment in the calling shell when conda's own shell function is
//! not loaded. Everything a shell evaluates passes through `quote`.

pub mod activation;

use std::path::{Path, PathBuf};

use askama::Template;
use clap::ValueEnum;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

impl Shell {
    pub fn name(self) -> &'static str {
        match self {
            Shell::Bash => "bash",
            Shell::Zsh => "zsh",
            Shell::Fish => "fish",
        }
    }

    /// The extension of the activate.d / deactivate.d scripts this shell sources.
    pub fn script_extension(self) -> &'static str {
        match self {
            Shell::Bash | Shell::Zsh => "sh",
            Shell::Fish => "fish",
        }
    }

    /// The line that loads the hook, as it goes into the rc file.
    pub fn hook_line(self) -> &'static str {
        match self {
            Shell::Bash => r#"eval "$(conda-fuse shell-hook bash)""#,
            Shell::Zsh => r#"eval "$(conda-fuse shell-hook zsh)""#,
            Shell::Fish => "conda-fuse shell-hook fish | source",
        }
    }

    /// The rc file the hook line goes into, where this shell reads it (zsh honours ZDOTDIR, fish
    /// XDG_CONFIG_HOME).
    pub fn rc_file(self, home: &Path) -> PathBuf {
        let var = |name| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        match self {
            Shell::Bash => home.join(".bashrc"),
            Shell::Zsh => var("ZDOTDIR").unwrap_or_else(|| home.into()).join(".zshrc"),
            Shell::Fish => var("XDG_CONFIG_HOME")
                .unwrap_or_else(|| home.join(".config"))
                .join("fish/config.fish"),
        }
    }

    /// Whether the rc file loads the hook already (any form of the line counts).
    pub fn rc_has_hook(self, rc_file: &Path) -> bool {
        std::fs::read_to_string(rc_file).is_ok_and(|t| t.contains("conda-fuse shell-hook"))
    }

    /// Appends the hook line to the rc file unless it is there; returns whether it added it.
    pub fn add_hook_to_rc(self, rc_file: &Path) -> std::io::Result<bool> {
        use std::io::Write;
        if self.rc_has_hook(rc_file) {
            return Ok(false);
        }
        if let Some(dir) = rc_file.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(rc_file)?;
        write!(
            f,
            "\n# conda-fuse: the conda-fuse-* shell functions\n{}\n",
            self.hook_line()
        )?;
        f.sync_all()?;
        Ok(true)
    }

    fn clap_shell(self) -> clap_complete::Shell {
        match self {
            Shell::Bash => clap_complete::Shell::Bash,
            Shell::Zsh => clap_complete::Shell::Zsh,
            Shell::Fish => clap_complete::Shell::Fish,
        }
    }
}

/// Quotes `s` as one word for `shell`. bash and zsh: single quotes, with `'` spelled `'\''`. fish:
/// single quotes, in which only `\` and `'` are special.
pub fn quote(shell: Shell, s: &str) -> String {
    match shell {
        Shell::Bash | Shell::Zsh => format!("'{}'", s.replace('\'', r"'\''")),
        Shell::Fish => format!("'{}'", s.replace('\\', r"\\").replace('\'', r"\'")),
    }
}

/// A `conda-fuse-X` function that only runs `conda-fuse X`.
struct Wrapper {
    function: String,
    subcommand: &'static str,
    description: String,
}

/// A function that takes an environment name first (its TAB completion offers the names).
struct EnvFunction {
    function: String,
    /// Long options, space separated (bash and zsh completion).
    options: String,
    option_list: Vec<String>,
}

/// Subcommands wrapped by a plain function (the hook's choice: which `conda-fuse-X` exist).
/// `activate`, `deactivate`, `unmount` and `rm` have functions of their own in the templates,
/// because they also change the calling shell.
const WRAPPED: &[&str] = &[
    "create", "commit", "env-list", "paths", "install", "remove", "run", "pack", "doctor",
    "status", "history", "diff", "rollback", "prune", "kernel", "rename",
];
const HAND_WRITTEN: &[&str] = &["activate", "deactivate", "unmount", "rm"];

/// Whether the hook defines a `conda-fuse-SUB` function.
pub fn defines_function(sub: &str) -> bool {
    WRAPPED.contains(&sub) || HAND_WRITTEN.contains(&sub)
}

/// The value name that marks an argument as an environment name (`#[arg(value_name = ENV)]` in
/// the CLI): the one place the hook learns which commands take one, and where.
pub const ENV_VALUE_NAME: &str = "ENV";

/// The visible command paths (`["activate"]`, `["kernel", "install"]`) whose first positional
/// argument is an environment name, read from clap's command tree.
pub fn env_commands(cmd: &clap::Command) -> Vec<Vec<String>> {
    fn walk(cmd: &clap::Command, path: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            path.push(sub.get_name().to_string());
            let takes_env = sub.get_positionals().next().is_some_and(|a| {
                a.get_value_names()
                    .and_then(|names| names.first())
                    .is_some_and(|n| n == ENV_VALUE_NAME)
            });
            if takes_env {
                out.push(path.clone());
            }
            walk(sub, path, out);
            path.pop();
        }
    }
    let mut out = Vec::new();
    walk(cmd, &mut Vec::new(), &mut out);
    out
}

fn about(cmd: &clap::Command, sub: &str) -> String {
    cmd.find_subcommand(sub)
        .and_then(|c| c.get_about())
        .map(|a| a.to_string().replace('"', "'").replace('$', ""))
        .unwrap_or_default()
}

fn long_options(cmd: &clap::Command, sub: &str) -> Vec<String> {
    let mut v: Vec<String> = cmd
        .find_subcommand(sub)
        .map(|c| {
            c.get_arguments()
                .filter_map(|a| a.get_long())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    v.push("help".into());
    v
}

#[derive(Template)]
#[template(path = "hook.bash", escape = "none")]
struct BashHook<'a> {
    version: &'a str,
    shell: &'a str,
    conda_function_test: &'a str,
    wrappers: Vec<Wrapper>,
    functions: Vec<EnvFunction>,
    /// `case` patterns of the command paths that take an env name ('activate'|'kernel install').
    env_patterns: String,
    clap_completion: String,
    /// The completion function clap_complete defined.
    clap_function: String,
}

#[derive(Template)]
#[template(path = "hook.zsh", escape = "none")]
struct ZshHook<'a> {
    version: &'a str,
    shell: &'a str,
    conda_function_test: &'a str,
    wrappers: Vec<Wrapper>,
    functions: Vec<EnvFunction>,
    env_patterns: String,
    /// clap_complete's script, quoted: evaluated once compinit has run, where its own `compdef`
    /// works.
    clap_completion: String,
}

#[derive(Template)]
#[template(path = "hook.fish", escape = "none")]
struct FishHook<'a> {
    version: &'a str,
    wrappers: Vec<Wrapper>,
    functions: Vec<EnvFunction>,
    /// The command paths that take an env name, quoted (`contains` arguments).
    env_paths: String,
    clap_completion: String,
    unmount_description: String,
    rm_description: String,
}

/// The name clap_complete generates the bash script under. clap_complete 4.6 names a hyphenated
/// binary's states two ways ("conda__fuse__subcmd__X" where it walks the words,
/// "conda__subcmd__fuse__subcmd__X" where it completes), so no subcommand's options would
/// complete for "conda-fuse"; under a name without a hyphen they agree. The hook registers its
/// own function for `conda-fuse`, which calls clap's `_conda_fuse` with the real words.
const BASH_CLAP_NAME: &str = "conda_fuse";

/// clap_complete's script for `conda-fuse`, unedited.
fn clap_completion(shell: Shell, cmd: &clap::Command) -> String {
    let mut cmd = cmd.clone();
    let name = match shell {
        Shell::Bash => BASH_CLAP_NAME,
        Shell::Zsh | Shell::Fish => "conda-fuse",
    };
    let mut out = Vec::new();
    clap_complete::generate(shell.clap_shell(), &mut cmd, name, &mut out);
    let text = String::from_utf8(out).expect("completion scripts are UTF-8");
    text.trim_end().to_string()
}

/// The hook for `shell`: the functions and completions, to be `eval`ed (fish: `source`d).
pub fn hook(shell: Shell, cmd: &clap::Command) -> String {
    let version = env!("CARGO_PKG_VERSION");
    let wrappers = WRAPPED
        .iter()
        .map(|sub| Wrapper {
            function: format!("conda-fuse-{sub}"),
            subcommand: sub,
            description: about(cmd, sub),
        })
        .collect();
    let env_commands = env_commands(cmd);
    let joined: Vec<String> = env_commands.iter().map(|p| p.join(" ")).collect();
    let env_patterns = joined
        .iter()
        .map(|p| quote(shell, p))
        .collect::<Vec<_>>()
        .join("|");
    let functions = env_commands
        .iter()
        .filter(|path| path.len() == 1)
        .map(|path| {
            let sub = path[0].as_str();
            let option_list = long_options(cmd, sub);
            EnvFunction {
                function: format!("conda-fuse-{sub}"),
                options: option_list
                    .iter()
                    .map(|o| format!("--{o}"))
                    .collect::<Vec<_>>()
                    .join(" "),
                option_list,
            }
        })
        .collect();
    let clap_completion = clap_completion(shell, cmd);
    let rendered = match shell {
        Shell::Bash => BashHook {
            version,
            shell: "bash",
            conda_function_test: r#"[ "$(type -t conda 2>/dev/null)" = function ]"#,
            wrappers,
            functions,
            env_patterns,
            clap_function: format!("_{BASH_CLAP_NAME}"),
            clap_completion,
        }
        .render(),
        Shell::Zsh => ZshHook {
            version,
            shell: "zsh",
            conda_function_test: "(( $+functions[conda] ))",
            wrappers,
            functions,
            env_patterns,
            clap_completion: quote(shell, &clap_completion),
        }
        .render(),
        Shell::Fish => FishHook {
            version,
            wrappers,
            functions,
            env_paths: joined
                .iter()
                .map(|p| quote(shell, p))
                .collect::<Vec<_>>()
                .join(" "),
            clap_completion,
            unmount_description: about(cmd, "unmount"),
            rm_description: about(cmd, "rm"),
        }
        .render(),
    };
    let mut text = rendered.expect("the hook templates render");
    text.push('\n');
    text
}

/// One change to the shell's environment, its values already quoted for the shell.
pub enum Step {
    Set { name: String, value: String },
    Unset { name: String },
    Source { path: String },
}

#[derive(Template)]
#[template(path = "env/posix.sh", escape = "none")]
struct PosixEnv<'a> {
    what: &'a str,
    shell: &'a str,
    steps: Vec<Step>,
    rehash: &'a str,
}

#[derive(Template)]
#[template(path = "env/fish.fish", escape = "none")]
struct FishEnv<'a> {
    what: &'a str,
    steps: Vec<Step>,
}

/// Renders `change` as code for `shell` to evaluate. `what` goes into the first comment line.
pub fn render_change(shell: Shell, what: &str, change: &activation::Change) -> String {
    use activation::Action;
    let steps = change
        .actions
        .iter()
        .map(|a| match a {
            Action::Set(name, value) => Step::Set {
                name: name.clone(),
                value: if shell == Shell::Fish && name == "PATH" {
                    // fish's PATH is a list.
                    value
                        .split(':')
                        .map(|p| quote(shell, p))
                        .collect::<Vec<_>>()
                        .join(" ")
                } else {
                    quote(shell, value)
                },
            },
            Action::Unset(name) => Step::Unset { name: name.clone() },
            Action::Source(path) => Step::Source {
                path: quote(shell, &path.to_string_lossy()),
            },
        })
        .collect();
    let what = what.replace('\n', " ");
    let rendered = match shell {
        Shell::Bash => PosixEnv {
            what: &what,
            shell: "bash",
            steps,
            rehash: "hash -r 2>/dev/null || true",
        }
        .render(),
        Shell::Zsh => PosixEnv {
            what: &what,
            shell: "zsh",
            steps,
            rehash: "rehash",
        }
        .render(),
        Shell::Fish => FishEnv { what: &what, steps }.render(),
    };
    let mut text = rendered.expect("the environment templates render");
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_survives_hostile_strings() {
        assert_eq!(quote(Shell::Bash, "a'b"), r"'a'\''b'");
        assert_eq!(quote(Shell::Fish, r"a'b\c"), r"'a\'b\\c'");
        assert_eq!(
            quote(Shell::Zsh, "$(rm -rf ~) `x` \"y\""),
            "'$(rm -rf ~) `x` \"y\"'"
        );
    }
}
