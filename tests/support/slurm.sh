#!/usr/bin/env bash
# A real Slurm cluster on this machine for the tests: munged, slurmctld and three slurmd (n1, n2,
# n3), each node in its own mount + UTS namespace with its own /tmp (a tmpfs), as compute nodes
# have; ProctrackType=proctrack/cgroup (cgroup v1 freezer), so a job's end kills every process it
# started, as on clusters. n3 is a node where user namespaces are off (a seccomp filter its jobs
# inherit, tests/support/no_userns.py). Needs root and Debian's slurm-wlm and munge.
#
#   slurm.sh up   STATE   # configure under STATE, start everything, wait until the nodes are idle
#   slurm.sh down STATE   # cancel jobs, stop the daemons (and the nodes' namespaces with them)
#
# STATE holds the configuration, logs, spool and state; jobs find it through SLURM_CONF.
set -euo pipefail
cmd=${1:?usage: slurm.sh up|down STATE}
state=${2:?STATE directory}
nodes=(n1 n2 n3)

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start_munge() {
  # munged refuses to start unless its directories belong to it.
  install -d -o munge -g munge -m 0755 /run/munge
  install -d -o munge -g munge -m 0700 /etc/munge /var/lib/munge /var/log/munge
  if [[ ! -s /etc/munge/munge.key ]]; then
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
  fi
  chown munge:munge /etc/munge/munge.key
  chmod 0400 /etc/munge/munge.key
  if ! munge -n >/dev/null 2>&1 </dev/null; then
    setpriv --reuid munge --regid munge --init-groups /usr/sbin/munged
    touch "$state/munged-started"
    for _ in $(seq 50); do munge -n >/dev/null 2>&1 </dev/null && break; sleep 0.1; done
  fi
}

configure() {
  local host ctld_port
  host=$(hostname)
  ctld_port=$(free_port)
  mkdir -p "$state/ctld" "$state/log"
  # slurmd copies each job script into its spool: the jobs' user must reach it.
  chmod 0755 "$state"
  cat >"$state/slurm.conf" <<EOF
ClusterName=cftest
SlurmctldHost=$host
SlurmctldPort=$ctld_port
AuthType=auth/munge
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$state/ctld
SlurmdSpoolDir=$state/spool/%n
SlurmctldPidFile=$state/slurmctld.pid
SlurmdPidFile=$state/slurmd.%n.pid
SlurmctldLogFile=$state/log/slurmctld.log
SlurmdLogFile=$state/log/slurmd.%n.log
ProctrackType=proctrack/cgroup
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
SlurmdTimeout=60
InactiveLimit=0
KillWait=3
MinJobAge=5
EOF
  for n in "${nodes[@]}"; do
    mkdir -p "$state/spool/$n"
    chmod 0755 "$state/spool" "$state/spool/$n"
    echo "NodeName=$n NodeHostname=$host Port=$(free_port) CPUs=2 State=UNKNOWN" >>"$state/slurm.conf"
  done
  echo "PartitionName=all Nodes=n[1-3] Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:8" \
    >>"$state/slurm.conf"
  printf 'CgroupPlugin=cgroup/v1\nConstrainCores=no\nConstrainRAMSpace=no\nConstrainDevices=no\n' \
    >"$state/cgroup.conf"
}

case $cmd in
  up)
    mkdir -p "$state"
    state=$(cd "$state" && pwd -P)
    # Leftovers of an earlier run (its state would bring back old jobs).
    rm -rf "$state/ctld" "$state/spool" "$state/log"
    start_munge
    configure
    export SLURM_CONF=$state/slurm.conf
    /usr/sbin/slurmctld -f "$SLURM_CONF" -i
    support=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
    # A checkout under /tmp (the tests' binaries, their directories, this state) would vanish
    # under the node's own /tmp: it is held on /mnt (in the node's namespace only) and moved back.
    checkout=$(cd "$support/../.." && pwd -P)
    hold=":" keep=":"
    case $checkout/ in
      /tmp/*) hold="mount --bind $checkout /mnt" keep="mkdir -p $checkout && mount --move /mnt $checkout" ;;
    esac
    for n in "${nodes[@]}"; do
      # Each node: its own host name, mount namespace and /tmp; slurmd in the foreground, so the
      # namespace lives exactly as long as it.
      wrap=()
      [[ $n == n3 ]] && wrap=(/usr/bin/python3 "$support/no_userns.py")
      "${wrap[@]}" unshare -m -u --propagation private sh -c "
        hostname $n && $hold && mount -t tmpfs -o mode=1777 node-tmp /tmp && $keep &&
        exec /usr/sbin/slurmd -D -N $n -f $SLURM_CONF" \
        </dev/null >>"$state/log/unshare.$n.log" 2>&1 &
    done
    for _ in $(seq 150); do
      idle=$(sinfo -h -N -o '%N %t' 2>/dev/null | awk '$2 == "idle"' | wc -l)
      [[ $idle -ge ${#nodes[@]} ]] && exit 0
      sleep 0.2
    done
    echo "slurm.sh: the nodes did not come up:" >&2
    sinfo -N >&2 || true
    tail -n 20 "$state"/log/*.log >&2 || true
    exit 1 ;;
  down)
    export SLURM_CONF=$state/slurm.conf
    if [[ -f $SLURM_CONF ]]; then
      scancel --full --quiet --user=65534 2>/dev/null || true
      scancel --full --quiet 2>/dev/null || true
    fi
    for f in "$state"/slurmd.*.pid "$state"/slurmctld.pid; do
      [[ -f $f ]] && kill "$(cat "$f")" 2>/dev/null || true
    done
    pkill -f "slurmd -D -N n[0-9] -f $state/slurm.conf" 2>/dev/null || true
    for _ in $(seq 50); do
      pgrep -f "$state/slurm.conf" >/dev/null || break
      sleep 0.1
    done
    pkill -9 -f "$state/slurm.conf" 2>/dev/null || true
    if [[ -f $state/munged-started ]]; then
      [[ -f /run/munge/munged.pid ]] && kill "$(cat /run/munge/munged.pid)" 2>/dev/null || true
      rm -f "$state/munged-started"
    fi
    rm -f "$state"/*.pid ;;
  *) echo "slurm.sh: unknown command $cmd" >&2; exit 2 ;;
esac
