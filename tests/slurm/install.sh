#!/usr/bin/env bash
# Install Debian's SLURM (22.05) with munge and slurmdbd on MariaDB; nothing starts by itself.
set -euo pipefail
command -v slurmctld >/dev/null && command -v slurmdbd >/dev/null && command -v mariadbd >/dev/null && exit 0
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq slurmctld slurmd slurm-client munge slurmdbd mariadb-server >/dev/null
