#!/usr/bin/env bash
# Local single-node Apache Cassandra 5.0 for development and tests, without
# Docker: the server jars come from Maven Central (pom.xml next to this
# script) and run straight under Java 17 on 127.0.0.1.
#
# The JVM options that do not depend on the node are in jvm17.options next
# to this script. Everything it creates lives in .local/ next to this script
# (git-ignored):
#   lib/   cassandra-all and its runtime dependencies (kept between runs)
#   bin/   cqlping, the readiness probe built from ./cqlping
#   conf/  cassandra.yaml rendered from ./cassandra.yaml, plus ./logback.xml
#   data/  data, commit log, hints, saved caches
#   logs/  system.log (INFO) and console.log (JVM output, WARN and up)
#   triggers/  empty; Cassandra wants a trigger directory
#   cassandra.pid
#
# Environment:
#   CASSANDRA_HOSTS          first host:port is the node to use (default 127.0.0.1:9042);
#                            start only launches on 127.0.0.1/localhost
#   CASSANDRA_VERSION        cassandra-all version (default: the one pinned in pom.xml)
#   CASSANDRA_HEAP           heap size for -Xms/-Xmx (default 1G)
#   CASSANDRA_START_TIMEOUT  seconds to wait for CQL (default 180)
#   CASSANDRA_STOP_TIMEOUT   seconds to wait after SIGTERM before SIGKILL (default 60)
#   CASSANDRA_UNSAFE_SYSTEM  true: skip fsync of system tables (-Dcassandra.unsafesystem; tests only)
#   CASSANDRA_STORAGE_PORT   internode port (default 7000)
#   CASSANDRA_JMX_PORT       if set, local-only JMX on this port (for nodetool)
#   CASSANDRA_JVM_OPTS       extra JVM options, split on whitespace
#   CASSANDRA_LOCAL_DIR      where to keep the .local/ state (default: .local next to this script)
#   CASSANDRA_LIB_DIR        where to keep the jars (default: lib/ in CASSANDRA_LOCAL_DIR); nodes
#                            with their own CASSANDRA_LOCAL_DIR (the fault tests) may share one
#   JAVA_HOME                Java 17 to use (default: java on PATH)
set -euo pipefail

usage() {
	cat >&2 <<EOF
usage: $(basename "$0") start|stop|status|logs [-f]
  start   start a local Cassandra (or reuse one already answering CQL) and wait until CQL works
  stop    stop the Cassandra this script started (SIGTERM, then SIGKILL after a deadline)
  status  exit 0 and print the version if CQL answers, non-zero otherwise
  logs    print where the logs are and their tail (-f: follow)
EOF
}

die() {
	echo "local.sh: $*" >&2
	exit 1
}

need() {
	command -v "$1" >/dev/null 2>&1 || die "$1 not found on PATH; $2"
}

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
local_dir="${CASSANDRA_LOCAL_DIR:-$here/.local}"
case "$local_dir" in
/*) ;;
*) local_dir="$PWD/$local_dir" ;;
esac
lib_dir="${CASSANDRA_LIB_DIR:-$local_dir/lib}"
case "$lib_dir" in
/*) ;;
*) lib_dir="$PWD/$lib_dir" ;;
esac
conf_dir="$local_dir/conf"
data_dir="$local_dir/data"
log_dir="$local_dir/logs"
bin_dir="$local_dir/bin"
pid_file="$local_dir/cassandra.pid"
system_log="$log_dir/system.log"
console_log="$log_dir/console.log"
cqlping="$bin_dir/cqlping"

# First entry of CASSANDRA_HOSTS (comma or space separated), port 9042 if absent.
# (The function reads the list the same way.)
hosts="${CASSANDRA_HOSTS:-}"
read -r first_host _ <<<"${hosts//,/ }"
first_host="${first_host:-127.0.0.1:9042}"
if [[ "$first_host" == *:* ]]; then
	cql_host="${first_host%:*}"
	cql_port="${first_host##*:}"
else
	cql_host="$first_host"
	cql_port=9042
fi
[[ "$cql_port" =~ ^[0-9]+$ ]] || die "bad port in CASSANDRA_HOSTS: $first_host"
cql_addr="$cql_host:$cql_port"

start_timeout="${CASSANDRA_START_TIMEOUT:-180}"
stop_timeout="${CASSANDRA_STOP_TIMEOUT:-60}"
[[ "$start_timeout" =~ ^[0-9]+$ ]] || die "CASSANDRA_START_TIMEOUT must be whole seconds, got $start_timeout"
[[ "$stop_timeout" =~ ^[0-9]+$ ]] || die "CASSANDRA_STOP_TIMEOUT must be whole seconds, got $stop_timeout"

# build_cqlping compiles the readiness probe once (again only when its source
# is newer than the binary).
build_cqlping() {
	if [[ -x "$cqlping" && "$cqlping" -nt "$here/cqlping/main.go" ]]; then
		return
	fi
	need go "install Go to build the CQL readiness probe (cqlping)"
	mkdir -p "$bin_dir"
	(cd "$here/cqlping" && go build -o "$cqlping" .) || die "building cqlping failed"
}

# cql_version prints the release_version if a node answers CQL at cql_addr.
cql_version() {
	"$cqlping" -timeout "${1:-3s}" "$cql_addr" 2>/dev/null
}

# our_pid prints the pid from the pid file if that process is alive and is a
# CassandraDaemon (so a recycled pid is never signalled).
our_pid() {
	local pid
	[[ -f "$pid_file" ]] || return 1
	pid="$(cat "$pid_file")"
	[[ "$pid" =~ ^[0-9]+$ ]] || return 1
	kill -0 "$pid" 2>/dev/null || return 1
	ps -ww -p "$pid" -o args= 2>/dev/null | grep -q 'org.apache.cassandra.service.CassandraDaemon' || return 1
	echo "$pid"
}

print_log_tail() {
	if [[ -s "$console_log" ]]; then
		echo "---- last 20 lines of $console_log ----" >&2
		tail -n 20 "$console_log" >&2
	fi
	if [[ -s "$system_log" ]]; then
		echo "---- last 60 lines of $system_log ----" >&2
		tail -n 60 "$system_log" >&2
	fi
	if [[ ! -s "$console_log" && ! -s "$system_log" ]]; then
		echo "(no log output in $log_dir)" >&2
	fi
}

# pinned_version reads cassandra.version from pom.xml, the single place it is pinned.
pinned_version() {
	sed -n 's:.*<cassandra.version>\(.*\)</cassandra.version>.*:\1:p' "$here/pom.xml" | head -n 1
}

# ensure_libs fills lib_dir with cassandra-all $1 and its runtime dependencies,
# unless it already holds that version. Nodes that share a CASSANDRA_LIB_DIR
# may start at once, so the filling is serialised on a lock next to it.
ensure_libs() {
	local version="$1"
	if [[ -f "$lib_dir/.version" && "$(cat "$lib_dir/.version")" == "$version" ]]; then
		return
	fi
	mkdir -p "$(dirname "$lib_dir")"
	if command -v flock >/dev/null 2>&1; then
		(
			flock -w "$start_timeout" 8 || die "another local.sh held $lib_dir.lock for ${start_timeout}s"
			fill_libs "$version"
		) 8>"$lib_dir.lock"
	else
		fill_libs "$version"
	fi
}

fill_libs() {
	local version="$1" tmp
	if [[ -f "$lib_dir/.version" && "$(cat "$lib_dir/.version")" == "$version" ]]; then
		return
	fi
	need mvn "install Maven 3 to fetch Cassandra from Maven Central"
	echo "Resolving org.apache.cassandra:cassandra-all:$version and its dependencies with Maven..."
	tmp="$lib_dir.tmp"
	rm -rf "$tmp"
	mkdir -p "$log_dir"
	if ! mvn -q -B -f "$here/pom.xml" \
		-Dcassandra.version="$version" \
		-DincludeScope=runtime \
		-DoutputDirectory="$tmp" \
		dependency:copy-dependencies >"$log_dir/mvn.log" 2>&1; then
		cat "$log_dir/mvn.log" >&2
		die "mvn could not resolve cassandra-all $version (is Maven Central reachable? does that version exist?)"
	fi
	echo "$version" >"$tmp/.version"
	rm -rf "$lib_dir"
	mv "$tmp" "$lib_dir"
}

render_conf() {
	local storage_port="$1"
	mkdir -p "$conf_dir"
	sed -e "s/@LISTEN_ADDRESS@/127.0.0.1/g" \
		-e "s/@NATIVE_PORT@/$cql_port/g" \
		-e "s/@STORAGE_PORT@/$storage_port/g" \
		"$here/cassandra.yaml" >"$conf_dir/cassandra.yaml"
	cp "$here/logback.xml" "$conf_dir/logback.xml"
}

java_cmd() {
	if [[ -n "${JAVA_HOME:-}" ]]; then
		echo "$JAVA_HOME/bin/java"
	else
		echo java
	fi
}

# stop_pid sends SIGTERM (Cassandra drains on it), waits up to stop_timeout
# seconds, then SIGKILLs.
stop_pid() {
	local pid="$1" deadline
	kill -TERM "$pid" 2>/dev/null || true
	deadline=$((SECONDS + stop_timeout))
	while kill -0 "$pid" 2>/dev/null; do
		if ((SECONDS >= deadline)); then
			echo "Cassandra (pid $pid) still running after ${stop_timeout}s; sending SIGKILL" >&2
			kill -KILL "$pid" 2>/dev/null || true
			break
		fi
		sleep 0.5
	done
	while kill -0 "$pid" 2>/dev/null; do sleep 0.2; done
	rm -f "$pid_file"
}

cmd_start() {
	local version pid java jamm jar storage_port deadline started heap
	local -a jvm_opts extra_opts detach
	started=$SECONDS

	build_cqlping
	if version="$(cql_version)"; then
		echo "Reusing Cassandra $version already answering CQL at $cql_addr"
		return 0
	fi

	case "$cql_host" in
	127.0.0.1 | localhost) ;;
	*) die "nothing answers CQL at $cql_addr, and local.sh only starts a node on 127.0.0.1; fix CASSANDRA_HOSTS or start that node yourself" ;;
	esac

	mkdir -p "$local_dir"
	# Serialise concurrent starts (parallel test packages): the second one
	# waits here, then finds the first node answering and reuses it.
	if command -v flock >/dev/null 2>&1; then
		exec 9>"$local_dir/.start.lock"
		flock -w "$start_timeout" 9 || die "another local.sh start held the lock for ${start_timeout}s"
		if version="$(cql_version)"; then
			echo "Reusing Cassandra $version already answering CQL at $cql_addr"
			return 0
		fi
	fi

	if pid="$(our_pid)"; then
		local running_port
		running_port="$(sed -n 's/^native_transport_port: *//p' "$conf_dir/cassandra.yaml" 2>/dev/null || true)"
		if [[ "$running_port" != "$cql_port" ]]; then
			die "the Cassandra started from $local_dir (pid $pid) uses port ${running_port:-unknown}, not $cql_port; run stop first or use another CASSANDRA_LOCAL_DIR"
		fi
		echo "Cassandra started earlier (pid $pid) does not answer CQL yet; waiting for it"
	else
		rm -f "$pid_file"
		if (: </dev/tcp/127.0.0.1/"$cql_port") 2>/dev/null; then
			die "port $cql_port on 127.0.0.1 is taken by something that does not answer CQL; free it or pick another port in CASSANDRA_HOSTS"
		fi

		java="$(java_cmd)"
		need "$java" "install Java 17 (OpenJDK 17) or set JAVA_HOME"
		local spec
		spec="$("$java" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p')"
		[[ "$spec" == 17 ]] || die "Cassandra 5.0 with these JVM options needs Java 17, but $java is Java $spec; set JAVA_HOME to a JDK 17"

		version="${CASSANDRA_VERSION:-$(pinned_version)}"
		[[ -n "$version" ]] || die "no Cassandra version: set CASSANDRA_VERSION or pin cassandra.version in pom.xml"
		ensure_libs "$version"
		jamm=""
		for jar in "$lib_dir"/jamm-*.jar; do
			[[ -f "$jar" ]] && jamm="$jar"
		done
		[[ -n "$jamm" ]] || die "no jamm jar in $lib_dir; delete $lib_dir and retry"

		storage_port="${CASSANDRA_STORAGE_PORT:-7000}"
		render_conf "$storage_port"
		mkdir -p "$data_dir" "$log_dir" "$local_dir/triggers"
		heap="${CASSANDRA_HEAP:-1G}"
		read -r -a extra_opts <<<"${CASSANDRA_JVM_OPTS:-}"

		# The node's own options; the fixed ones are in jvm17.options.
		jvm_opts=(
			"@$here/jvm17.options"
			# Heap, fixed size as Cassandra recommends.
			"-Xms$heap" "-Xmx$heap"
			"-XX:HeapDumpPath=$log_dir"
			"-XX:ErrorFile=$log_dir/hs_err_%p.log"
			"-javaagent:$jamm"
			"-Dcassandra.storagedir=$data_dir"
			"-Dcassandra.logdir=$log_dir"
			"-Dlogback.configurationFile=$conf_dir/logback.xml"
			"-Dcassandra.triggers_dir=$local_dir/triggers"
			# Fast single-node start.
			-Dcassandra.skip_wait_for_gossip_to_settle=0
			-Dcassandra.ring_delay_ms=1000
			-Dcassandra.initial_token=0
		)
		if [[ "${CASSANDRA_UNSAFE_SYSTEM:-false}" == true ]]; then
			jvm_opts+=(-Dcassandra.unsafesystem=true)
		fi
		if [[ -n "${CASSANDRA_JMX_PORT:-}" ]]; then
			jvm_opts+=("-Dcassandra.jmx.local.port=$CASSANDRA_JMX_PORT")
		fi
		if ((${#extra_opts[@]} > 0)); then
			jvm_opts+=("${extra_opts[@]}")
		fi

		echo "Starting Cassandra $version on $cql_addr (heap $heap, state in $local_dir)..."
		: >"$console_log"
		# nohup (+ setsid where it exists; macOS has none): the node outlives
		# this script and its terminal. It must not inherit the start lock (fd 9).
		detach=(nohup)
		if command -v setsid >/dev/null 2>&1; then
			detach+=(setsid)
		fi
		(cd "$local_dir" && exec "${detach[@]}" "$java" "${jvm_opts[@]}" \
			-cp "$conf_dir:$lib_dir/*" \
			org.apache.cassandra.service.CassandraDaemon \
			</dev/null >>"$console_log" 2>&1 9>&-) &
		pid=$!
		echo "$pid" >"$pid_file"
	fi

	deadline=$((SECONDS + start_timeout))
	while :; do
		if version="$(cql_version 2s)"; then
			echo "Cassandra $version answers CQL at $cql_addr (pid $pid, ready after $((SECONDS - started))s)"
			echo "Logs: $system_log"
			return 0
		fi
		if ! kill -0 "$pid" 2>/dev/null; then
			rm -f "$pid_file"
			print_log_tail
			die "Cassandra (pid $pid) exited before answering CQL at $cql_addr; see the log above"
		fi
		if ((SECONDS >= deadline)); then
			print_log_tail
			echo "local.sh: Cassandra (pid $pid) did not answer CQL at $cql_addr within ${start_timeout}s; stopping it" >&2
			stop_pid "$pid"
			die "start timed out (raise CASSANDRA_START_TIMEOUT if the machine is just slow)"
		fi
		sleep 1
	done
}

cmd_stop() {
	local pid
	if ! pid="$(our_pid)"; then
		rm -f "$pid_file"
		echo "No Cassandra started by local.sh is running"
		return 0
	fi
	echo "Stopping Cassandra (pid $pid)..."
	stop_pid "$pid"
	echo "Stopped"
}

cmd_status() {
	local version pid
	build_cqlping
	if version="$(cql_version)"; then
		if pid="$(our_pid)"; then
			echo "Cassandra $version answers CQL at $cql_addr (pid $pid, started by local.sh)"
		else
			echo "Cassandra $version answers CQL at $cql_addr"
		fi
		return 0
	fi
	if pid="$(our_pid)"; then
		echo "Cassandra (pid $pid) is running but does not answer CQL at $cql_addr yet" >&2
	else
		echo "Nothing answers CQL at $cql_addr" >&2
	fi
	return 1
}

cmd_logs() {
	echo "System log: $system_log"
	echo "JVM console: $console_log"
	[[ -f "$system_log" ]] || die "no log yet; run start first"
	if [[ "${1:-}" == -f ]]; then
		exec tail -n 60 -f "$system_log"
	fi
	tail -n 60 "$system_log"
}

case "${1:-}" in
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status ;;
logs) cmd_logs "${2:-}" ;;
-h | --help | help)
	usage
	exit 0
	;;
*)
	usage
	exit 2
	;;
esac
