//! Facts about processes, from /proc.

/// Whether `pid` is a running (not zombie) conda-fuse process; a pid reused by an unrelated
/// program does not count.
pub fn is_conda_fuse(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // "pid (comm) state ...": the command name may contain spaces and parentheses.
    let Some((comm, rest)) = stat.split_once(" (").and_then(|(_, r)| r.rsplit_once(") ")) else {
        return false;
    };
    let running = !matches!(rest.chars().next(), Some('Z' | 'X' | 'x'));
    running && comm.starts_with("conda-fuse")
}
