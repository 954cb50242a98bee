#!/usr/bin/env bash
# Start a one-node SLURM cluster as root: munged, MariaDB, slurmdbd, slurmctld, slurmd (in that
# order, each waited for). Every daemon writes a pid file that stop.sh kills by. Prints the
# seconds it took. Needs root and the packages of install.sh.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
t0=$(date +%s%3N)
until_ok() {  # until_ok "what" command...: retry for 30 s
  local what=$1; shift
  for _ in $(seq 120); do "$@" >/dev/null 2>&1 && return 0; sleep 0.25; done
  echo "slurm start: $what did not come up" >&2; tail -n 20 /var/log/slurm/*.log /var/log/prunecxr-mariadb.log 2>/dev/null >&2; return 1
}
install -m 644 "$here/slurm.conf" /etc/slurm/slurm.conf
# Two fake GPUs: gres File= must name character devices (plain files are refused).
gpus=/run/prunecxr-fakegpu; mkdir -p "$gpus"
for i in 0 1; do [ -c "$gpus/nvidia$i" ] || mknod "$gpus/nvidia$i" c 1 3; done
echo "NodeName=localhost Name=gpu File=$gpus/nvidia[0-1]" > /etc/slurm/gres.conf

[ -s /etc/munge/munge.key ] || dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
install -d -o munge -g munge -m 755 /run/munge
runuser -u munge -- /usr/sbin/munged
until_ok munged sh -c "munge -n | unmunge"

install -d -o mysql -g mysql /run/mysqld
/usr/sbin/mariadbd --user=mysql --pid-file=/run/mysqld/mysqld.pid >/var/log/prunecxr-mariadb.log 2>&1 &
until_ok mariadb mariadb-admin ping
mariadb -e "CREATE DATABASE IF NOT EXISTS slurm_acct_db;
  CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'prunecxr-ci';
  GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';"
install -o slurm -g slurm -m 600 "$here/slurmdbd.conf" /etc/slurm/slurmdbd.conf
install -d -o slurm -g slurm /var/lib/slurm/slurmctld /var/lib/slurm/slurmd /var/log/slurm
/usr/sbin/slurmdbd
until_ok slurmdbd sacctmgr -n list cluster
/usr/sbin/slurmctld -i
/usr/sbin/slurmd
until_ok "an idle node" sh -c "sinfo -h -o %T | grep -qx idle"
ms=$(( $(date +%s%3N) - t0 )); echo "slurm: started in $((ms / 1000)).$(( ms % 1000 / 100 )) s"
