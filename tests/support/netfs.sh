#!/usr/bin/env bash
# The test suite's network filesystem: an SFTP server (sshd, loopback only, a port of its own) and
# sshfs mounts of one exported directory. Every metadata operation and uncached read is a protocol
# round trip, and like the kernel's NFS client it answers renameat2 flags with EINVAL, keeps whole
# seconds of mtimes, makes up inode numbers and keeps files removed while open as .fuse_hidden*.
# (This kernel has no NFS client, so no real NFS.) Needs root and sshfs + openssh-server.
#
#   netfs.sh up     STATE   # start sshd, export STATE/export, mount it at STATE/home
#   netfs.sh client STATE [MOUNTPOINT [SSHFS-OPTIONS]]
#                           # one more client of the export, at STATE/home (a node's, in its own
#                           # mount namespace: its own caches, its own node-local flock) or at
#                           # MOUNTPOINT with more options (-o disable_hardlink: a filesystem
#                           # without hard links)
#   netfs.sh down   STATE   # unmount STATE/home, stop sshd
#
# STATE holds the keys, sshd's config and pid; nothing outside it changes.
set -euo pipefail
cmd=${1:?usage: netfs.sh up|client|down STATE}
state=${2:?STATE directory}

client() {  # [MOUNTPOINT [OPTIONS...]]
  local at=${1:-$state/home}
  shift || true
  sshfs -p "$(cat "$state/port")" \
    -o "IdentityFile=$state/id,StrictHostKeyChecking=no,UserKnownHostsFile=/dev/null,LogLevel=ERROR" \
    -o "BatchMode=yes,ServerAliveInterval=15" "$@" \
    "root@127.0.0.1:$state/export" "$at"
}

case $cmd in
  up)
    mkdir -p "$state/export" "$state/home" /run/sshd
    chmod 700 "$state"
    state=$(cd "$state" && pwd -P)
    [[ -f $state/id ]] || ssh-keygen -q -t ed25519 -N '' -f "$state/id"
    [[ -f $state/host ]] || ssh-keygen -q -t ed25519 -N '' -f "$state/host"
    cp "$state/id.pub" "$state/authorized_keys"
    # A free port on loopback.
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' \
      >"$state/port"
    cat >"$state/sshd_config" <<EOF
Port $(cat "$state/port")
ListenAddress 127.0.0.1
HostKey $state/host
AuthorizedKeysFile $state/authorized_keys
StrictModes no
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
PidFile $state/sshd.pid
Subsystem sftp internal-sftp
EOF
    /usr/sbin/sshd -f "$state/sshd_config"
    for _ in $(seq 50); do
      client 2>/dev/null && exit 0
      sleep 0.1
    done
    client ;;
  client)
    client "${@:3}" ;;
  down)
    fusermount3 -u "$state/home" 2>/dev/null || umount -l "$state/home" 2>/dev/null || true
    if [[ -f $state/sshd.pid ]]; then
      kill "$(cat "$state/sshd.pid")" 2>/dev/null || true
      rm -f "$state/sshd.pid"
    fi ;;
  *) echo "netfs.sh: unknown command $cmd" >&2; exit 2 ;;
esac
