#!/bin/sh
# Reserves ISAR_HUGEPAGES (default 1024) 2 MiB hugepages and mounts hugetlbfs
# on /dev/hugepages if it is not mounted. Idempotent.
set -eu
n="${ISAR_HUGEPAGES:-1024}"
echo "$n" > /sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages
got=$(cat /sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages)
[ "$got" -ge "$n" ] || echo "isar: only $got of $n hugepages could be reserved" >&2
mkdir -p /dev/hugepages
mountpoint -q /dev/hugepages || mount -t hugetlbfs nodev /dev/hugepages
