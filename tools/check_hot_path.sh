#!/bin/sh
# Fails when the per-packet code (the files below) allocates, locks, throws,
# formats or logs. Init-path files (dataplane.cc) are not checked; a line in a
# hot file that only the control thread runs says so with "lint: control-only".
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
hot="dataplane/worker.cc dataplane/classify.cc dataplane/rewrite.h dataplane/neighbor.h
     dataplane/classify.h dataplane/worker.h dataplane/leg.h dataplane/stats.h
     dataplane/rtp_quality.h dataplane/cksum.h dataplane/flow_table.h
     dataplane/turn_path.cc dataplane/turn_alloc.h dataplane/kernel_path.cc turn/stun.cc
     turn/stream.cc dataplane/classify6.cc dataplane/emit6.cc dataplane/rewrite6.h
     dataplane/ip6.h dataplane/leg_path.cc dataplane/burst.cc dataplane/fanout.cc"
pattern='\b(malloc|calloc|realloc|free|new|delete|std::mutex|std::lock_guard|std::unique_lock|pthread_mutex|std::function|std::string|std::vector|std::map|throw|printf|fprintf|std::cout|std::cerr|fmt::|RTE_LOG|rte_log|syslog|rte_malloc|rte_zmalloc)\b'
status=0
for f in $hot; do
    # Strip // comments before matching.
    if grep -v 'lint: control-only' "$top/$f" | sed 's://.*$::' | grep -nE "$pattern" >/tmp/isar_hot_$$ 2>/dev/null; then
        sed "s|^|$f:|" /tmp/isar_hot_$$ >&2
        status=1
    fi
done
rm -f /tmp/isar_hot_$$
[ $status -eq 0 ] && echo "hot path clean: $(echo $hot | wc -w) files"
exit $status
