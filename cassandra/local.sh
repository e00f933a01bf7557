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
# TLS mode (CASSANDRA_LOCAL_TLS=1) runs a second node beside that one, in
# .local-tls/ on CQL port 9142 and storage port 7100: client connections
# need TLS and a client certificate signed by its CA, and a password
# (PasswordAuthenticator, CassandraAuthorizer). Its certificates and
# passwords are in .local-tls/tls/; start makes each PEM file that is
# missing with openssl, so that a test may put its own in place first:
#   ca.pem, ca-key.pem           the CA: signs the node and client certificates,
#                                and the node trusts the client certificates it signed
#   node.pem, node-key.pem       the node's certificate (SANs from CASSANDRA_TLS_SERVER_SAN)
#                                and key; node.pem may hold the chain after it
#   client.pem, client-key.pem   a client certificate (CN tracker, clientAuth) that
#                                this script's probe presents
#   cassandra.password           the superuser cassandra's password (random; removed
#                                with data/, which has the default one again)
#   tracker.password             the password of the role tracker (random)
#   setup.done                   marks the set-up below done
# Keys are unencrypted PKCS#8 PEM ECDSA P-256 keys; Cassandra's
# PEMBasedSslContextFactory reads these files directly, no keystores. On its
# first start local.sh replaces the default superuser password, creates
# keyspace tracking from ./schema.cql and a role tracker that may only
# SELECT and MODIFY in it (the function's production rights: no CREATE),
# then prints the variables that run the function against the node (the
# env command prints them again).
#
# Cluster mode (CASSANDRA_LOCAL_CLUSTER=1) runs three nodes beside those,
# the production topology in small: 127.0.0.1, 127.0.0.2 and 127.0.0.3
# (Linux routes all of 127/8 to loopback), CQL port 9242 and storage port
# 7200 on each, one data center dc1 with racks r1, r2 and r3
# (GossipingPropertyFileSnitch), one token each so the ring is split in
# thirds, all three seeds, hints on, and local-only JMX on 7211, 7212 and
# 7213 for nodetool. Each node keeps its state in .local-cluster/nodeN/,
# laid out like .local/ above; the jars are .local/lib's. Its commands act
# on all three nodes, or on node N (1-3) where they take one:
#   start [N]    start the nodes one after another (each answers CQL before
#                the next starts); a node already up is reused
#   stop [N]     SIGTERM (Cassandra drains), SIGKILL after the stop timeout
#   kill N       kill -9, as a crash
#   freeze N     SIGSTOP: the process hangs, its sockets stay open
#   thaw N       SIGCONT
#   status       each node's process and CQL, and the ring as each live
#                node's gossip sees it (nodetool status)
#   ring N       the ring as node N sees it: a line "ADDRESS STATE" per
#                node, STATE being nodetool's two letters (UN: up, normal)
#   nodetool N ARGS...  nodetool against node N, such as "repair KEYSPACE"
#   logs N [-f]  node N's log
#   env          the variables that point the function at the cluster
# Heap 768M per node unless CASSANDRA_HEAP says otherwise.
#
# Environment:
#   CASSANDRA_HOSTS          first host:port is the node to use (default 127.0.0.1:9042,
#                            TLS mode 127.0.0.1:9142); start only launches on 127.0.0.1/localhost
#   CASSANDRA_VERSION        cassandra-all version (default: the one pinned in pom.xml)
#   CASSANDRA_HEAP           heap size for -Xms/-Xmx (default 1G)
#   CASSANDRA_START_TIMEOUT  seconds to wait for CQL (default 180)
#   CASSANDRA_STOP_TIMEOUT   seconds to wait after SIGTERM before SIGKILL (default 60)
#   CASSANDRA_UNSAFE_SYSTEM  true: skip fsync of system tables (-Dcassandra.unsafesystem; tests only)
#   CASSANDRA_COMMITLOG_SYNC when the commit log reaches the disk (README, "Durability"):
#                            periodic (default): every CASSANDRA_COMMITLOG_SYNC_PERIOD, and a
#                              write is acknowledged before; a crash, kill -9 included, loses
#                              what was written since the last sync
#                            group: a write is acknowledged once a sync that covers it is
#                              done; syncs at most every CASSANDRA_COMMITLOG_SYNC_GROUP_WINDOW
#                            batch: likewise, each sync as soon as the last one ends
#   CASSANDRA_COMMITLOG_SYNC_PERIOD        periodic mode's period (default 10000ms)
#   CASSANDRA_COMMITLOG_SYNC_GROUP_WINDOW  group mode's window (default 15ms)
#   CASSANDRA_STORAGE_PORT   internode port (default 7000, TLS mode 7100)
#   CASSANDRA_JMX_PORT       if set, local-only JMX on this port (for nodetool)
#   CASSANDRA_JVM_OPTS       extra JVM options, split on whitespace
#   CASSANDRA_LOCAL_DIR      where to keep the .local/ state (default: .local next to this
#                            script, TLS mode .local-tls)
#   CASSANDRA_LIB_DIR        where to keep the jars (default: lib/ in CASSANDRA_LOCAL_DIR, TLS
#                            mode .local/lib); nodes with their own CASSANDRA_LOCAL_DIR (the
#                            fault tests) may share one
#   CASSANDRA_LOCAL_TLS      1: the TLS node described above (default 0)
#   CASSANDRA_LOCAL_CLUSTER  1: the three-node cluster described above (default 0);
#                            CASSANDRA_HOSTS, CASSANDRA_LOCAL_DIR, CASSANDRA_STORAGE_PORT
#                            and CASSANDRA_JMX_PORT do not apply to it
#   CASSANDRA_TLS_SERVER_SAN TLS mode: subjectAltName of a node certificate it makes
#                            (default IP:127.0.0.1,DNS:localhost)
#   CASSANDRA_TLS_SERVER_NAME  TLS mode: the name the probe verifies in the node's
#                            certificate (default: the host of CASSANDRA_HOSTS)
#   JAVA_HOME                Java 17 to use (default: java on PATH)
set -euo pipefail

usage() {
	cat >&2 <<EOF
usage: [CASSANDRA_LOCAL_TLS=1] $(basename "$0") start|stop|status|logs [-f]|env
  start   start a local Cassandra (or reuse one already answering CQL) and wait until CQL works
  stop    stop the Cassandra this script started (SIGTERM, then SIGKILL after a deadline)
  status  exit 0 and print the version if CQL answers, non-zero otherwise
  logs    print where the logs are and their tail (-f: follow)
  env     print the export lines that point the function at the node:
          eval "\$(CASSANDRA_LOCAL_TLS=1 $(basename "$0") env)"
With CASSANDRA_LOCAL_TLS=1 each command works on the TLS node (mutual TLS and
passwords, in .local-tls/ on 127.0.0.1:9142) instead of the plain one.

usage: CASSANDRA_LOCAL_CLUSTER=1 $(basename "$0") start [N]|stop [N]|kill N|freeze N|thaw N|status|ring N|nodetool N ARGS...|logs N [-f]|env
  the three-node cluster on 127.0.0.1-3:9242 (in .local-cluster/), all nodes or node N
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

case "${CASSANDRA_LOCAL_TLS:-0}" in
1 | true) tls=true ;;
0 | false | "") tls=false ;;
*) die "CASSANDRA_LOCAL_TLS must be 1 or 0, got $CASSANDRA_LOCAL_TLS" ;;
esac
case "${CASSANDRA_LOCAL_CLUSTER:-0}" in
1 | true) cluster=true ;;
0 | false | "") cluster=false ;;
*) die "CASSANDRA_LOCAL_CLUSTER must be 1 or 0, got $CASSANDRA_LOCAL_CLUSTER" ;;
esac
if $cluster && $tls; then
	die "CASSANDRA_LOCAL_CLUSTER and CASSANDRA_LOCAL_TLS cannot be combined"
fi
# cluster_node is set (by this script, when it runs itself for one node of
# the cluster) to the node's number.
cluster_node="${CASSANDRA_LOCAL_CLUSTER_NODE:-}"
cluster_nodes=(1 2 3)
cluster_port=9242
cluster_storage_port=7200
# One token per node, the ring split in thirds (Murmur3Partitioner).
cluster_tokens=(-9223372036854775808 -3074457345618258603 3074457345618258602)
# The TLS node's defaults differ from the plain node's, so both can run.
if [[ -n "$cluster_node" ]]; then
	[[ "$cluster_node" =~ ^[123]$ ]] || die "no cluster node $cluster_node"
	default_dir="$here/.local-cluster/node$cluster_node"
	default_lib_dir="$here/.local/lib"
	default_host="127.0.0.$cluster_node:$cluster_port"
	default_storage_port=$cluster_storage_port
elif $tls; then
	default_dir="$here/.local-tls"
	default_lib_dir="$here/.local/lib"
	default_host=127.0.0.1:9142
	default_storage_port=7100
else
	default_dir="$here/.local"
	default_lib_dir=""
	default_host=127.0.0.1:9042
	default_storage_port=7000
fi

local_dir="${CASSANDRA_LOCAL_DIR:-$default_dir}"
case "$local_dir" in
/*) ;;
*) local_dir="$PWD/$local_dir" ;;
esac
lib_dir="${CASSANDRA_LIB_DIR:-${default_lib_dir:-$local_dir/lib}}"
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
# TLS mode: certificates and passwords, and cqlping's last error.
tls_dir="$local_dir/tls"
super_password="$tls_dir/cassandra.password"
tracker_password="$tls_dir/tracker.password"
setup_done="$tls_dir/setup.done"
probe_err="$local_dir/cqlping.err"

# Files removed when the script ends, however it ends: temporary files that
# hold passwords or half-made keys (remove_on_exit), and the key and
# certificate that install_pair is moving into place. The traps that do it
# are the script's only ones; register files here rather than add a trap.
cleanup_files=()
pair_files=()
traps_set=false

# cleanup removes the registered files, and the pair being installed
# unless both of its files made it: a start finds both or neither.
cleanup() {
	local f
	if ((${#cleanup_files[@]} > 0)); then
		rm -f -- "${cleanup_files[@]}"
	fi
	if ((${#pair_files[@]} > 0)); then
		for f in "${pair_files[@]}"; do
			if [[ ! -e "$f" ]]; then
				rm -f -- "${pair_files[@]}"
				break
			fi
		done
	fi
}

# on_signal cleans up, then dies of signal $1 as if it were not trapped,
# so that whoever ran the script sees the interrupt.
on_signal() {
	trap - "$1" EXIT
	cleanup
	kill -s "$1" "$$"
}

# remove_on_exit registers files for cleanup, setting the traps the first
# time. It must run in the main shell, not in a ( ) or $( ) subshell.
remove_on_exit() {
	cleanup_files+=("$@")
	if ! $traps_set; then
		trap cleanup EXIT
		trap 'on_signal INT' INT
		trap 'on_signal TERM' TERM
		traps_set=true
	fi
}

# First entry of CASSANDRA_HOSTS (comma or space separated), port 9042 if absent.
# (The function reads the list the same way.)
hosts="${CASSANDRA_HOSTS:-}"
read -r first_host _ <<<"${hosts//,/ }"
first_host="${first_host:-$default_host}"
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
# In TLS mode it logs in as the superuser over mutual TLS (tls_cqlping),
# keeping cqlping's error in probe_err.
cql_version() {
	if ! $tls; then
		"$cqlping" -timeout "${1:-3s}" "$cql_addr" 2>/dev/null
		return
	fi
	[[ -d "$local_dir" ]] || return 1
	as_superuser tls_cqlping -timeout "${1:-3s}" "$cql_addr" 2>"$probe_err"
}

# tls_cqlping runs cqlping over mutual TLS with the client certificate of
# tls_dir, verifying the node against its CA and CASSANDRA_TLS_SERVER_NAME.
tls_cqlping() {
	local -a args=(-ca "$tls_dir/ca.pem" -cert "$tls_dir/client.pem" -key "$tls_dir/client-key.pem")
	if [[ -n "${CASSANDRA_TLS_SERVER_NAME:-}" ]]; then
		args+=(-server-name "$CASSANDRA_TLS_SERVER_NAME")
	fi
	"$cqlping" "${args[@]}" "$@"
}

# as_superuser runs "$@ -username cassandra -password-file FILE ADDR" with
# the superuser's password: the one saved in super_password, else the one
# a start interrupted right after changing it left in super_password.new
# (then saved), else Cassandra's default, "cassandra". The last argument
# of "$@" is the address. The password never appears in an argument list.
as_superuser() {
	local addr="${*: -1}"
	local -a cmd=("${@:1:$#-1}")
	if [[ -s "$super_password" ]]; then
		"${cmd[@]}" -username cassandra -password-file "$super_password" "$addr"
		return
	fi
	if [[ -s "$super_password.new" ]] &&
		"${cmd[@]}" -username cassandra -password-file "$super_password.new" "$addr"; then
		mv "$super_password.new" "$super_password"
		return 0
	fi
	"${cmd[@]}" -username cassandra -password-file <(printf '%s\n' cassandra) "$addr"
}

# last_probe_error prints cqlping's last error in TLS mode, for messages.
last_probe_error() {
	if $tls && [[ -s "$probe_err" ]]; then
		echo " (last probe: $(tail -n 1 "$probe_err"))"
	fi
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
	render_commitlog_conf
	if $tls; then
		render_tls_conf
	fi
	if [[ -n "$cluster_node" ]]; then
		render_cluster_conf "$storage_port"
	fi
}

# render_commitlog_conf sets the commit log's sync mode in the rendered
# cassandra.yaml from CASSANDRA_COMMITLOG_SYNC and its period or window.
render_commitlog_conf() {
	local mode="${CASSANDRA_COMMITLOG_SYNC:-periodic}" period="${CASSANDRA_COMMITLOG_SYNC_PERIOD:-10000ms}"
	local window="${CASSANDRA_COMMITLOG_SYNC_GROUP_WINDOW:-15ms}"
	[[ "$period" =~ ^[0-9]+ms$ ]] || die "CASSANDRA_COMMITLOG_SYNC_PERIOD must be milliseconds such as 10000ms, got $period"
	[[ "$window" =~ ^[0-9]+ms$ ]] || die "CASSANDRA_COMMITLOG_SYNC_GROUP_WINDOW must be milliseconds such as 15ms, got $window"
	local -a lines
	case "$mode" in
	periodic) lines=("commitlog_sync: periodic" "commitlog_sync_period: $period") ;;
	group) lines=("commitlog_sync: group" "commitlog_sync_group_window: $window") ;;
	batch) lines=("commitlog_sync: batch") ;;
	*) die "CASSANDRA_COMMITLOG_SYNC must be periodic, group or batch, got $mode" ;;
	esac
	sed -i -e '/^commitlog_sync:/d' -e '/^commitlog_sync_period:/d' "$conf_dir/cassandra.yaml"
	printf '%s\n' "" "# Commit log sync (CASSANDRA_COMMITLOG_SYNC), set by local.sh." "${lines[@]}" >>"$conf_dir/cassandra.yaml"
}

# render_cluster_conf turns the rendered cassandra.yaml into node
# cluster_node's of the three: its own address, the three seeds, its token,
# the data center and rack of the production StatefulSet's snitch, and
# hints on, so a node that was down gets the writes it missed.
render_cluster_conf() {
	local storage_port="$1" n seeds=""
	for n in "${cluster_nodes[@]}"; do
		seeds+="${seeds:+,}127.0.0.$n:$storage_port"
	done
	sed -i -e "s/^listen_address: .*/listen_address: $cql_host/" \
		-e "s/^rpc_address: .*/rpc_address: $cql_host/" \
		-e "s/- seeds: .*/- seeds: \"$seeds\"/" \
		-e "s/^initial_token: .*/initial_token: ${cluster_tokens[cluster_node - 1]}/" \
		-e "s/^endpoint_snitch: .*/endpoint_snitch: GossipingPropertyFileSnitch/" \
		-e "s/^hinted_handoff_enabled: .*/hinted_handoff_enabled: true/" \
		"$conf_dir/cassandra.yaml"
	printf 'dc=dc1\nrack=r%s\n' "$cluster_node" >"$conf_dir/cassandra-rackdc.properties"
}

# render_tls_conf appends the TLS mode's settings to the rendered
# cassandra.yaml. PEMBasedSslContextFactory reads PEM files in place of
# keystores: "keystore" is one file with the private key and then the
# certificate chain, "truststore" the CAs whose client certificates it
# accepts. Without keystore_password the key must be unencrypted.
render_tls_conf() {
	local keystore="$conf_dir/node-keystore.pem"
	(
		umask 077
		cat "$tls_dir/node-key.pem" "$tls_dir/node.pem" >"$keystore"
	)
	cat >>"$conf_dir/cassandra.yaml" <<EOF

# TLS mode (CASSANDRA_LOCAL_TLS=1), appended by local.sh: every client
# connection is TLS with a certificate that the CA signed, then a password.
client_encryption_options:
  enabled: true
  optional: false
  require_client_auth: true
  ssl_context_factory:
    class_name: org.apache.cassandra.security.PEMBasedSslContextFactory
  keystore: "$keystore"
  truststore: "$tls_dir/ca.pem"
authenticator: PasswordAuthenticator
authorizer: CassandraAuthorizer
role_manager: CassandraRoleManager
EOF
}

# new_key writes a new unencrypted PKCS#8 PEM private key to temporary
# file $1 (removed when the script ends, see install_pair), readable by
# its owner only: ECDSA P-256, which Cassandra's PEMReader (RSA, DSA or EC
# in PKCS#8) and Go's crypto/tls both take, and which is quick to make.
new_key() {
	remove_on_exit "$1"
	rm -f "$1"
	(
		umask 077
		openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null
	) || die "openssl could not make a key in $1"
}

# install_pair moves the finished key $1.tmp and certificate $2.tmp to $1
# and $2. Should the script end between the two moves, cleanup removes the
# key again: a start never finds only one of them.
install_pair() {
	pair_files=("$1" "$2")
	mv -f "$1.tmp" "$1"
	mv -f "$2.tmp" "$2"
	pair_files=()
}

# issue_cert signs a certificate for key $2 into temporary file $1 with
# the CA of tls_dir, valid for a year: subject CN $3, extendedKeyUsage $4
# (serverAuth or clientAuth), and subjectAltName $5 when given.
issue_cert() {
	local out="$1" key="$2" cn="$3" eku="$4" san="${5:-}"
	remove_on_exit "$out" "$tls_dir/openssl.err"
	local -a ext=(
		'[leaf]'
		'basicConstraints = critical, CA:FALSE'
		'keyUsage = critical, digitalSignature'
		"extendedKeyUsage = $eku"
		'subjectKeyIdentifier = hash'
		'authorityKeyIdentifier = keyid'
	)
	if [[ -n "$san" ]]; then
		ext+=("subjectAltName = $san")
	fi
	openssl req -new -key "$key" -subj "/CN=$cn" -config <(printf '%s\n' '[req]' 'distinguished_name = dn' '[dn]') 2>/dev/null |
		openssl x509 -req -CA "$tls_dir/ca.pem" -CAkey "$tls_dir/ca-key.pem" \
			-set_serial "0x$(openssl rand -hex 16)" -days 365 -sha256 \
			-extfile <(printf '%s\n' "${ext[@]}") -extensions leaf -out "$out" 2>"$tls_dir/openssl.err" ||
		die "openssl could not issue $out: $(<"$tls_dir/openssl.err")"
	rm -f "$tls_dir/openssl.err"
}

# ensure_certs makes the CA, the node's and the client's certificates and
# keys in tls_dir, each pair only when both of its files are missing. Each
# pair is made under temporary names and moved into place when complete,
# so an interrupted or failed start leaves neither file of it.
ensure_certs() {
	local san="${CASSANDRA_TLS_SERVER_SAN:-IP:127.0.0.1,DNS:localhost}" name
	need openssl "TLS mode makes its certificates and passwords with openssl; install it (Debian: apt-get install openssl)"
	mkdir -p "$tls_dir"
	chmod 700 "$tls_dir"
	if [[ ! -f "$tls_dir/ca.pem" ]]; then
		[[ ! -f "$tls_dir/ca-key.pem" ]] || die "$tls_dir has ca-key.pem but no ca.pem; add its certificate or remove it"
		echo "Making a CA in $tls_dir/ca.pem"
		new_key "$tls_dir/ca-key.pem.tmp"
		remove_on_exit "$tls_dir/ca.pem.tmp" "$tls_dir/openssl.err"
		openssl req -x509 -new -key "$tls_dir/ca-key.pem.tmp" -subj "/CN=tracker local CA" -days 365 -sha256 \
			-config <(printf '%s\n' '[req]' 'distinguished_name = dn' 'x509_extensions = ca' '[dn]' '[ca]' \
				'basicConstraints = critical, CA:TRUE' 'keyUsage = critical, keyCertSign, cRLSign' \
				'subjectKeyIdentifier = hash') \
			-out "$tls_dir/ca.pem.tmp" 2>"$tls_dir/openssl.err" ||
			die "openssl could not make the CA: $(<"$tls_dir/openssl.err")"
		rm -f "$tls_dir/openssl.err"
		install_pair "$tls_dir/ca-key.pem" "$tls_dir/ca.pem"
	fi
	for name in node client; do
		if [[ -f "$tls_dir/$name.pem" && -f "$tls_dir/$name-key.pem" ]]; then
			continue
		fi
		[[ ! -f "$tls_dir/$name.pem" && ! -f "$tls_dir/$name-key.pem" ]] ||
			die "$tls_dir has only one of $name.pem and $name-key.pem; add the other or remove it"
		[[ -f "$tls_dir/ca-key.pem" ]] ||
			die "$tls_dir has no $name.pem, and no ca-key.pem to sign one with; add $name.pem and $name-key.pem, or ca-key.pem"
		new_key "$tls_dir/$name-key.pem.tmp"
		if [[ "$name" == node ]]; then
			echo "Making the node's certificate $tls_dir/node.pem for $san"
			issue_cert "$tls_dir/node.pem.tmp" "$tls_dir/node-key.pem.tmp" "tracker local Cassandra" serverAuth "$san"
		else
			echo "Making a client certificate $tls_dir/client.pem for CN tracker"
			issue_cert "$tls_dir/client.pem.tmp" "$tls_dir/client-key.pem.tmp" tracker clientAuth
		fi
		install_pair "$tls_dir/$name-key.pem" "$tls_dir/$name.pem"
	done
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
	# A frozen node (SIGSTOP) gets the SIGTERM once it runs again.
	kill -CONT "$pid" 2>/dev/null || true
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

# take_start_lock holds local_dir's start lock on fd 9 until the script
# exits; it fails when there is no flock (macOS), and dies after
# start_timeout. Once taken it is kept: a second call returns at once,
# since opening fd 9 again would drop the lock and let another start in.
start_locked=false
take_start_lock() {
	if $start_locked; then
		return 0
	fi
	command -v flock >/dev/null 2>&1 || return 1
	exec 9>"$local_dir/.start.lock"
	flock -w "$start_timeout" 9 || die "another local.sh start held the lock for ${start_timeout}s"
	start_locked=true
}

cmd_start() {
	local version pid java jamm jar storage_port deadline started heap initial_token
	local -a jvm_opts extra_opts detach
	started=$SECONDS

	build_cqlping
	if version="$(cql_version)"; then
		echo "Reusing Cassandra $version already answering CQL at $cql_addr"
		return 0
	fi

	case "$cql_host" in
	127.0.0.1 | localhost) ;;
	127.0.0.[23]) [[ -n "$cluster_node" ]] || die "nothing answers CQL at $cql_addr, and local.sh only starts a node on 127.0.0.1 (cluster mode: 127.0.0.1-3); fix CASSANDRA_HOSTS or start that node yourself" ;;
	*) die "nothing answers CQL at $cql_addr, and local.sh only starts a node on 127.0.0.1; fix CASSANDRA_HOSTS or start that node yourself" ;;
	esac

	mkdir -p "$local_dir"
	# Serialise concurrent starts (parallel test packages): the second one
	# waits here, then finds the first node answering and reuses it.
	if take_start_lock; then
		if $tls; then
			ensure_certs
		fi
		if version="$(cql_version)"; then
			echo "Reusing Cassandra $version already answering CQL at $cql_addr"
			return 0
		fi
	elif $tls; then
		ensure_certs
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
		if (: </dev/tcp/"$cql_host"/"$cql_port") 2>/dev/null; then
			die "port $cql_port on $cql_host is taken by something that does not answer CQL$(last_probe_error); free it or pick another port in CASSANDRA_HOSTS"
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

		storage_port="${CASSANDRA_STORAGE_PORT:-$default_storage_port}"
		if $tls && [[ ! -d "$data_dir" ]]; then
			# A new node (or its data removed): Cassandra's default
			# superuser again, and a set-up to do again.
			rm -f "$super_password" "$super_password.new" "$setup_done"
		fi
		render_conf "$storage_port"
		mkdir -p "$data_dir" "$log_dir" "$local_dir/triggers"
		heap="${CASSANDRA_HEAP:-1G}"
		initial_token=0
		if [[ -n "$cluster_node" ]]; then
			heap="${CASSANDRA_HEAP:-768M}"
			initial_token="${cluster_tokens[cluster_node - 1]}"
		fi
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
			"-Dcassandra.initial_token=$initial_token"
		)
		if [[ "${CASSANDRA_UNSAFE_SYSTEM:-false}" == true ]]; then
			jvm_opts+=(-Dcassandra.unsafesystem=true)
		fi
		if $tls; then
			# Create the default superuser at once, not 10 s after start.
			jvm_opts+=(-Dcassandra.superuser_setup_delay_ms=0)
		fi
		if [[ -n "${CASSANDRA_JMX_PORT:-}" ]]; then
			jvm_opts+=("-Dcassandra.jmx.local.port=$CASSANDRA_JMX_PORT")
		fi
		if ((${#extra_opts[@]} > 0)); then
			jvm_opts+=("${extra_opts[@]}")
		fi

		echo "Starting Cassandra $version on $cql_addr (heap $heap, commit log sync ${CASSANDRA_COMMITLOG_SYNC:-periodic}, state in $local_dir)..."
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
			echo "local.sh: Cassandra (pid $pid) did not answer CQL at $cql_addr within ${start_timeout}s$(last_probe_error); stopping it" >&2
			stop_pid "$pid"
			die "start timed out (raise CASSANDRA_START_TIMEOUT if the machine is just slow)"
		fi
		sleep 1
	done
}

# run_cql runs the statements of CQL file $2 on the node as the superuser
# with the password in file $1 ("default": Cassandra's), retrying for a
# minute (a second change of one role's password within 5 s is refused).
# Every statement it is given may run again.
run_cql() {
	local password_file="$1" file="$2" deadline=$((SECONDS + 60))
	while :; do
		if [[ "$password_file" == default ]]; then
			tls_cqlping -timeout 30s -username cassandra -password-file <(printf '%s\n' cassandra) \
				-exec "$file" "$cql_addr" 2>"$probe_err" && return 0
		else
			tls_cqlping -timeout 30s -username cassandra -password-file "$password_file" \
				-exec "$file" "$cql_addr" 2>"$probe_err" && return 0
		fi
		if ((SECONDS >= deadline)); then
			die "setting up the TLS node failed: $(cat "$probe_err")"
		fi
		sleep 1
	done
}

# tls_setup prepares a TLS node once (setup.done marks it done): it
# creates the schema of schema.cql, a role tracker with a random password
# kept in tracker_password that may only read and write the tables of
# keyspace tracking, and replaces the default superuser password with a
# random one kept in super_password. Each step may run again after an
# interrupted start. It runs under the start lock: the one cmd_start took,
# or, when cmd_start reused a node without taking it, taken here.
tls_setup() {
	local began=$SECONDS cql="$tls_dir/setup.cql" super=default
	# Every file made from here on may hold a password: private from the
	# moment it exists, not after a chmod.
	umask 077
	[[ -f "$setup_done" ]] && return 0
	take_start_lock || true
	[[ -f "$setup_done" ]] && return 0
	echo "Setting up the node: keyspace tracking, role tracker, superuser password..."
	if [[ -s "$super_password" ]]; then
		super="$super_password"
	fi
	run_cql "$super" "$here/schema.cql"
	# The statements hold passwords: a file only its owner reads (a
	# leftover of another umask is removed first), removed after use or
	# when the script ends; the passwords are hex, safe inside CQL quotes.
	remove_on_exit "$cql"
	rm -f "$cql"
	if [[ ! -s "$tracker_password" ]]; then
		openssl rand -hex 24 >"$tracker_password"
	fi
	printf '%s\n' \
		"CREATE ROLE IF NOT EXISTS tracker WITH LOGIN = true AND PASSWORD = '$(<"$tracker_password")';" \
		"GRANT SELECT ON KEYSPACE tracking TO tracker;" \
		"GRANT MODIFY ON KEYSPACE tracking TO tracker;" >"$cql"
	run_cql "$super" "$cql"
	# A role tracker made before with another password (tracker.password
	# removed) gets the file's. Only then: Cassandra 5.0 refuses a second
	# password change of a role within 5 s, and its creation counts.
	if ! tls_cqlping -timeout 10s -username tracker -password-file "$tracker_password" "$cql_addr" >/dev/null 2>&1; then
		printf '%s\n' "ALTER ROLE tracker WITH LOGIN = true AND PASSWORD = '$(<"$tracker_password")';" >"$cql"
		run_cql "$super" "$cql"
	fi
	# Last, so that only one wait for Cassandra to forget the old password
	# is needed. A start interrupted between the change and the mv finds
	# the new password in the .new file.
	if [[ "$super" == default ]]; then
		openssl rand -hex 24 >"$super_password.new"
		printf "ALTER ROLE cassandra WITH PASSWORD = '%s';\n" "$(<"$super_password.new")" >"$cql"
		run_cql default "$cql"
		mv "$super_password.new" "$super_password"
		# Cassandra caches credentials for 2 s: wait until the new
		# password works, so that whoever comes next can log in with it.
		local deadline=$((SECONDS + 30))
		until tls_cqlping -timeout 5s -username cassandra -password-file "$super_password" "$cql_addr" >/dev/null 2>"$probe_err"; do
			((SECONDS < deadline)) || die "the superuser's new password does not work: $(cat "$probe_err")"
			sleep 0.5
		done
	fi
	rm -f "$cql"
	: >"$setup_done"
	echo "Set up in $((SECONDS - began))s: role tracker may SELECT and MODIFY in keyspace tracking"
}

# print_env prints the variables that point the function at the node, as
# export lines for eval.
print_env() {
	if ! $tls; then
		printf 'export CASSANDRA_HOSTS=%q\n' "$cql_addr"
		return
	fi
	[[ -f "$setup_done" && -s "$tracker_password" ]] ||
		die "the TLS node in $local_dir is not set up; run CASSANDRA_LOCAL_TLS=1 $0 start first"
	printf 'export %s=%q\n' \
		CASSANDRA_HOSTS "$cql_addr" \
		CASSANDRA_KEYSPACE tracking \
		CASSANDRA_TLS true \
		CASSANDRA_TLS_CA_FILE "$tls_dir/ca.pem" \
		CASSANDRA_TLS_CERT_FILE "$tls_dir/client.pem" \
		CASSANDRA_TLS_KEY_FILE "$tls_dir/client-key.pem" \
		CASSANDRA_USERNAME tracker \
		CASSANDRA_PASSWORD_FILE "$tracker_password" \
		CASSANDRA_SCHEMA_CREATE false
	if [[ -n "${CASSANDRA_TLS_SERVER_NAME:-}" ]]; then
		printf 'export %s=%q\n' CASSANDRA_TLS_SERVER_NAME "$CASSANDRA_TLS_SERVER_NAME"
	fi
	# The password comes from the file only.
	echo "unset CASSANDRA_PASSWORD"
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
		echo "Cassandra (pid $pid) is running but does not answer CQL at $cql_addr yet$(last_probe_error)" >&2
	else
		echo "Nothing answers CQL at $cql_addr$(last_probe_error)" >&2
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

# node_state prints node cluster_node's process state: down, running or
# frozen (stopped by a signal).
node_state() {
	local pid
	if ! pid="$(our_pid)"; then
		echo down
		return
	fi
	if [[ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" == T ]]; then
		echo frozen
	else
		echo running
	fi
}

# cmd_signal sends signal $1 to the node: KILL (then waits until it is
# gone, as a crash leaves it), STOP or CONT.
cmd_signal() {
	local pid
	pid="$(our_pid)" || die "node $cluster_node is not running"
	kill "-$1" "$pid"
	case "$1" in
	KILL)
		while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
		rm -f "$pid_file"
		echo "Killed node $cluster_node (pid $pid)"
		;;
	STOP) echo "Froze node $cluster_node (pid $pid)" ;;
	CONT) echo "Thawed node $cluster_node (pid $pid)" ;;
	esac
}

# cmd_nodetool runs nodetool with the arguments against node
# cluster_node, over its local JMX port.
cmd_nodetool() {
	local java
	local -a opens
	[[ "$(node_state)" == running ]] || die "node $cluster_node is $(node_state)"
	java="$(java_cmd)"
	# nodetool needs the module openings the server has; its history file
	# goes to the node's directory, not the user's home.
	mapfile -t opens < <(grep -E '^--add-(exports|opens) ' "$here/jvm17.options" | tr ' ' '\n')
	"$java" -Xmx128m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 "${opens[@]}" \
		"-Duser.home=$local_dir" "-Dlogback.configurationFile=$conf_dir/logback.xml" "-Dcassandra.logdir=$log_dir" \
		-cp "$conf_dir:$lib_dir/*" org.apache.cassandra.tools.NodeTool \
		-h 127.0.0.1 -p "$CASSANDRA_JMX_PORT" "$@"
}

# cmd_ring prints the ring as node cluster_node's gossip sees it, a line
# "ADDRESS STATE" per node, from nodetool status.
cmd_ring() {
	local out
	if ! out="$(cmd_nodetool status 2>&1)"; then
		die "nodetool status on node $cluster_node failed: $(tail -n 3 <<<"$out")"
	fi
	awk '$1 ~ /^[UD][NLJM]$/ { print $2, $1 }' <<<"$out"
}

# cluster_run runs this script for node $1 of the cluster with the rest
# of the arguments.
cluster_run() {
	local n="$1"
	shift
	[[ "$n" =~ ^[123]$ ]] || die "no cluster node ${n:-(none)}: give 1, 2 or 3"
	env -u CASSANDRA_HOSTS -u CASSANDRA_LOCAL_DIR -u CASSANDRA_STORAGE_PORT \
		CASSANDRA_LOCAL_CLUSTER_NODE="$n" CASSANDRA_JMX_PORT="721$n" "$here/local.sh" "$@"
}

cluster_env() {
	local n hosts=""
	for n in "${cluster_nodes[@]}"; do
		hosts+="${hosts:+,}127.0.0.$n:$cluster_port"
	done
	printf 'export CASSANDRA_HOSTS=%q\n' "$hosts"
	echo "export CASSANDRA_LOCAL_DC=dc1"
	echo "export CASSANDRA_CONSISTENCY=LOCAL_QUORUM"
	printf 'export CASSANDRA_REPLICATION=%q\n' "{'class': 'NetworkTopologyStrategy', 'dc1': 3}"
}

# cluster_main runs a cluster command (all nodes, or node $2).
cluster_main() {
	local n nodes=("${cluster_nodes[@]}") failed=0 state
	if [[ -n "${2:-}" ]]; then
		nodes=("$2")
	fi
	case "${1:-}" in
	start)
		for n in "${nodes[@]}"; do
			cluster_run "$n" start
		done
		;;
	stop)
		for n in "${nodes[@]}"; do
			cluster_run "$n" stop
		done
		;;
	kill | freeze | thaw | ring)
		[[ -n "${2:-}" ]] || die "$1 takes a node: 1, 2 or 3"
		cluster_run "$2" "$1"
		;;
	nodetool)
		[[ -n "${2:-}" ]] || die "nodetool takes a node: 1, 2 or 3, then nodetool's arguments"
		cluster_run "$2" nodetool "${@:3}"
		;;
	logs) cluster_run "${2:-}" logs "${3:-}" ;;
	status)
		for n in "${nodes[@]}"; do
			state="$(cluster_run "$n" state)"
			if [[ "$state" == running ]] && cluster_run "$n" status >/dev/null 2>&1; then
				echo "node $n (127.0.0.$n:$cluster_port): running, answers CQL; its ring:"
				cluster_run "$n" ring | sed 's/^/  /' || true
			else
				echo "node $n (127.0.0.$n:$cluster_port): $state$([[ $state == running ]] && echo ", no CQL yet")"
				failed=1
			fi
		done
		return "$failed"
		;;
	env) cluster_env ;;
	-h | --help | help) usage ;;
	*)
		usage
		exit 2
		;;
	esac
}

if $cluster && [[ -z "$cluster_node" ]]; then
	cluster_main "$@"
	exit
fi

case "${1:-}" in
kill | freeze | thaw | ring | state | nodetool)
	[[ -n "$cluster_node" ]] || die "$1 is a cluster command (CASSANDRA_LOCAL_CLUSTER=1)"
	case "$1" in
	nodetool) cmd_nodetool "${@:2}" ;;
	kill) cmd_signal KILL ;;
	freeze) cmd_signal STOP ;;
	thaw) cmd_signal CONT ;;
	ring) cmd_ring ;;
	state) node_state ;;
	esac
	;;
start)
	cmd_start
	if $tls; then
		tls_setup
		echo "To run the function against it: eval \"\$(CASSANDRA_LOCAL_TLS=1 $0 env)\", which prints"
		print_env | sed 's/^/  /'
	fi
	;;
env) print_env ;;
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
