package cluster

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"tracker/test/internal/harness"
)

// rate is the stream's events per second: steady work for three nodes,
// the function and the client on one small machine, well below what they
// can take, so that a fault and not the load is what a test sees.
const rate = 60

// TestKillOneNode: kill -9 of one node of three in the middle of a
// stream. No acknowledged event may be missing at LOCAL_QUORUM, clients
// may see at most a few 503s that their retry stores, and the function
// stays ready. Then the node restarts and rejoins, and once hints have
// been replayed it holds every acknowledged event itself.
func TestKillOneNode(t *testing.T) {
	const victim = 1 // the first contact point, which the driver's control connection uses
	ks := harness.KeyspaceName(t, "c")
	dropKeyspace(t, ks)
	t.Cleanup(func() { restoreCluster(t) })
	fn := startFunction(t, ks)
	noSpeculativeReads(t, ks)

	s := newStream(fn.URL)
	ready := watchReadiness(fn.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var killedAt time.Time
	killed := make(chan error, 1)
	go func() {
		time.Sleep(8 * time.Second) // mid-stream
		killedAt = time.Now()
		killed <- cluster.KillNode(context.Background(), victim)
	}()
	start := time.Now()
	s.run(ctx, rate)
	end := time.Now()
	ready.stop()
	if err := <-killed; err != nil {
		t.Fatal(err)
	}

	acked, lost := s.ackedEvents(), s.lostEvents()
	fails := s.failures(start, end)
	unready, answers := ready.unready(start, end)
	p99Before, _ := s.p99(start, killedAt)
	p99After, n := s.p99(killedAt, end)
	t.Logf("node %d killed %s into the stream: %d events acknowledged, %d never; attempts that failed: %v; p99 %s before the kill, %s after (%d attempts); unready in %d of %d readiness answers",
		victim, killedAt.Sub(start).Round(time.Millisecond), len(acked), len(lost), fails, p99Before.Round(time.Millisecond), p99After.Round(time.Millisecond), n, len(unready), answers)
	if len(lost) > 0 {
		t.Errorf("%d events were never acknowledged within a minute of retries", len(lost))
	}
	if failed := fails["503"] + fails["error"] + fails["500"]; failed > len(acked)/100+5 {
		t.Errorf("%d attempts failed (%v), more than a few", failed, fails)
	}
	if len(unready) > 0 {
		t.Errorf("the function answered unready %d times from %s on, with two of three replicas up", len(unready), unready[0].Sub(start).Round(time.Millisecond))
	}
	requireStored(t, checker, ks, "at "+deployed["CASSANDRA_CONSISTENCY"]+" with one node down", acked)

	// The node comes back; hints that the others kept for it replay.
	restartedAt := time.Now()
	restoreCluster(t)
	t.Logf("node %d back in the ring after %s", victim, time.Since(restartedAt).Round(time.Second))
	own, err := cluster.NodeSession(victim)
	if err != nil {
		t.Fatal(err)
	}
	defer own.Close()
	// What the node lacks shrinks as the others replay their hints; it is
	// settled once it is 0 or has not changed for 15 s.
	lacks := func() int {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		miss, err := missing(ctx, own, ks, acked)
		if err != nil {
			t.Fatalf("reading through node %d: %v", victim, err)
		}
		total := 0
		for _, ids := range miss {
			total += len(ids)
		}
		return total
	}
	first := lacks()
	last, changed := first, time.Now()
	for last > 0 && time.Since(changed) < 15*time.Second {
		time.Sleep(time.Second)
		if n := lacks(); n != last {
			last, changed = n, time.Now()
		}
	}
	t.Logf("rows node %d lacked itself (read at ONE through it): %d once back, %d after hints replayed (%s after its restart)",
		victim, first, last, time.Since(restartedAt).Round(time.Second))
	if last > 0 {
		// Rows it acknowledged itself just before the kill and had not
		// yet synced to its commit log: no other node kept a hint for
		// them (README, "Durability"). A repair copies them from the
		// other replicas.
		began := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		out, err := cluster.Nodetool(ctx, victim, "repair", "-full", ks)
		cancel()
		if err != nil {
			t.Fatalf("repair: %v\n%s", err, out)
		}
		t.Logf("nodetool repair -full %s on node %d took %s", ks, victim, time.Since(began).Round(time.Second))
		if n := lacks(); n > 0 {
			t.Fatalf("node %d still lacks %d rows of acknowledged events after a repair", victim, n)
		}
	}
	// A read at ALL gets every replica's answer.
	allSession, err := checkSessionAt(gocql.All)
	if err != nil {
		t.Fatal(err)
	}
	defer allSession.Close()
	requireStored(t, allSession, ks, "at ALL once node "+fmt.Sprint(victim)+" is back", acked)
}

// TestTwoNodesDown: with two of three replicas gone LOCAL_QUORUM cannot be
// had; /track answers 503 with Retry-After within CASSANDRA_TIMEOUT and
// the function turns unready. One node back, and the same process serves
// again.
func TestTwoNodesDown(t *testing.T) {
	ks := harness.KeyspaceName(t, "c")
	dropKeyspace(t, ks)
	t.Cleanup(func() { restoreCluster(t) })
	fn := startFunction(t, ks)
	limit := timeout(t) + time.Second

	s := newStream(fn.URL)
	ctx := context.Background()
	for _, n := range []int{2, 3} {
		if err := cluster.KillNode(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	downAt := time.Now()
	// Every answer comes within the limit; once the coordinator knows the
	// replicas are down, the answers are 503 with Retry-After.
	refusals := 0
	for i := 0; refusals < 10; i++ {
		if time.Since(downAt) > time.Minute {
			t.Fatalf("no 10 refusals in a row within a minute of two nodes going down")
		}
		a, body := postOne(t, s, s.next(i))
		if a.Err != nil {
			t.Fatalf("request %d: %v", i, a.Err)
		}
		if a.Latency > limit {
			t.Errorf("request %d answered %d after %s, more than CASSANDRA_TIMEOUT + 1 s", i, a.Status, a.Latency.Round(time.Millisecond))
		}
		switch {
		case a.Status == http.StatusServiceUnavailable && body.retryAfter != "":
			refusals++
		case a.Status == http.StatusServiceUnavailable:
			t.Fatalf("request %d: 503 without Retry-After", i)
		case a.Status >= 200 && a.Status < 300:
			t.Fatalf("request %d acknowledged with two of three replicas down", i)
		default:
			t.Fatalf("request %d: status %d %s", i, a.Status, body.detail)
		}
	}
	if err := fn.PollStatus("/health/readiness", http.StatusServiceUnavailable, 30*time.Second); err != nil {
		t.Fatalf("readiness with two nodes down: %v", err)
	}
	t.Logf("10 refusals and unready %s after two nodes went down", time.Since(downAt).Round(time.Millisecond))

	// One node back: a quorum again.
	if err := cluster.StartNode(ctx, 2); err != nil {
		t.Fatal(err)
	}
	backAt := time.Now()
	if err := fn.PollStatus("/health/readiness", http.StatusOK, 90*time.Second); err != nil {
		t.Fatalf("readiness with node 2 back: %v", err)
	}
	t.Logf("ready again %s after node 2 answered CQL", time.Since(backAt).Round(time.Millisecond))
	select {
	case <-fn.Exited():
		t.Fatal("the function exited")
	default:
	}
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	s.run(sctx, 20)
	cancel()
	if lost := s.lostEvents(); len(lost) > 0 {
		t.Errorf("%d events never acknowledged after node 2 came back", len(lost))
	}
	requireStored(t, checker, ks, "with nodes 1 and 2 up", s.ackedEvents())
}

// restartRate is the rolling restart's stream, in events per second:
// lower than rate, because each node's start (a JVM's start, the schema,
// the hints the others kept for it, a cold JIT) takes a core of this
// two-core machine for a minute or more, and three of them run here.
const restartRate = 20

// TestRollingRestart: every node drained, stopped, started and back in the
// ring in turn, as an operator or the StatefulSet's rolling update does,
// under a steady stream: every event stored, and the failed requests
// (the goal is none) reported. Before the next node goes, the restarted
// one must have settled (settle): while one node is away, each write
// needs both others, so a restarted node still slow with its hints or a
// cold JIT fails writes that a settled one serves.
func TestRollingRestart(t *testing.T) {
	ks := harness.KeyspaceName(t, "c")
	dropKeyspace(t, ks)
	t.Cleanup(func() { restoreCluster(t) })
	fn := startFunction(t, ks)
	probe := fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s.restart_probe (id int PRIMARY KEY, at timestamp)", ks)
	if err := checker.Query(probe).Exec(); err != nil {
		t.Fatalf("%s: %v", probe, err)
	}

	s := newStream(fn.URL)
	ready := watchReadiness(fn.URL)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	restarted := make(chan error, 1)
	go func() {
		defer cancel()
		time.Sleep(3 * time.Second) // some stream first
		for n := 1; n <= harness.ClusterNodes; n++ {
			began := time.Now()
			if err := cluster.StopNode(ctx, n); err != nil {
				restarted <- err
				return
			}
			if err := cluster.StartNode(ctx, n); err != nil {
				restarted <- err
				return
			}
			answered := time.Now()
			wctx, wcancel := context.WithTimeout(ctx, 2*time.Minute)
			err := cluster.WaitRing(wctx, []int{1, 2, 3}, allUp())
			wcancel()
			if err != nil {
				restarted <- err
				return
			}
			inRing := time.Now()
			settled := settle(ctx, ks, n, timeout(t)/4, 2*time.Minute)
			t.Logf("node %d: stopped and answering CQL again in %s, up in every node's ring %s later, %s %s later",
				n, answered.Sub(began).Round(time.Second), inRing.Sub(answered).Round(time.Second), settled, time.Since(inRing).Round(time.Second))
		}
		time.Sleep(3 * time.Second) // some stream after
		restarted <- nil
	}()
	start := time.Now()
	s.run(ctx, restartRate)
	end := time.Now()
	ready.stop()
	if err := <-restarted; err != nil {
		t.Fatal(err)
	}
	acked := s.ackedEvents()
	fails := s.failures(start, end)
	unready, answers := ready.unready(start, end)
	p99, n := s.p99(start, end)
	t.Logf("rolling restart in %s: %d events acknowledged; failed attempts %v; p99 %s over %d attempts; unready in %d of %d readiness answers",
		end.Sub(start).Round(time.Second), len(acked), fails, p99.Round(time.Millisecond), n, len(unready), answers)
	// The goal is not one failed request, and with the settling wait it
	// held in every run so far. A restart that does not wait for the
	// node before to settle fails tens to hundreds of attempts (48-210
	// in earlier runs at 60 events/s), which the bound below catches;
	// below it, a stray failure on a loaded two-core machine (a long GC
	// pause of a node) is reported, not failed on.
	const tolerated = 10
	failed := 0
	for _, n := range fails {
		failed += n
	}
	switch {
	case failed > tolerated:
		t.Errorf("%d attempts failed (%v), more than the %d tolerated: a node went before the one before it had settled", failed, fails, tolerated)
	case failed > 0 || len(unready) > 0:
		t.Logf("GOAL MISSED: failed attempts %v, unready %d times; every one was retried", fails, len(unready))
	}
	if lost := s.lostEvents(); len(lost) > 0 {
		t.Errorf("%d events never acknowledged within a minute of retries", len(lost))
	}
	requireStored(t, checker, ks, "after the rolling restart", acked)
}

// settle waits, up to limit, until restarted node n has settled, which
// is what an operator checks before taking the next node away: no other
// node holds hints for it any more (system_views.pending_hints, what
// nodetool listpendinghints prints), and two rounds in a row of five
// writes at ALL, which wait for every replica and so for n, each
// answered within slow. It says how it ended.
func settle(ctx context.Context, keyspace string, n int, slow, limit time.Duration) string {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	others := map[int]*gocql.Session{}
	defer func() {
		for _, s := range others {
			s.Close()
		}
	}()
	insert := fmt.Sprintf("INSERT INTO %s.restart_probe (id, at) VALUES (?, ?)", keyspace)
	var why string
	good := 0
	for good < 2 {
		why = ""
		for o := 1; o <= harness.ClusterNodes && why == ""; o++ {
			if o == n {
				continue
			}
			if others[o] == nil {
				s, err := cluster.NodeSession(o)
				if err != nil {
					why = fmt.Sprintf("node %d: %v", o, err)
					break
				}
				others[o] = s
			}
			iter := others[o].Query("SELECT address, files FROM system_views.pending_hints").WithContext(ctx).Iter()
			var (
				addr  net.IP
				files int
			)
			for iter.Scan(&addr, &files) {
				if addr.String() == cluster.NodeAddr(n) && files > 0 {
					why = fmt.Sprintf("node %d holds %d hint files for node %d", o, files, n)
				}
			}
			if err := iter.Close(); err != nil && why == "" {
				why = fmt.Sprintf("system_views.pending_hints on node %d: %v", o, err)
			}
		}
		for i := 0; i < 5 && why == ""; i++ {
			began := time.Now()
			err := checker.Query(insert, i, began).Consistency(gocql.All).WithContext(ctx).Exec()
			if took := time.Since(began); err != nil {
				why = fmt.Sprintf("a write at ALL: %v", err)
			} else if took > slow {
				why = fmt.Sprintf("a write at ALL took %s", took.Round(time.Millisecond))
			}
		}
		if why == "" {
			good++
			continue
		}
		good = 0
		select {
		case <-ctx.Done():
			return "NOT settled (" + why + ")"
		case <-time.After(time.Second):
		}
	}
	return "settled"
}

// TestFrozenNode: one node of three stops answering with its connections
// open (SIGSTOP, as a long GC pause or a hung disk does). The other two
// make LOCAL_QUORUM, so requests keep succeeding; the p99 during the
// freeze is reported.
func TestFrozenNode(t *testing.T) {
	const victim = 2
	ks := harness.KeyspaceName(t, "c")
	dropKeyspace(t, ks)
	t.Cleanup(func() { restoreCluster(t) })
	fn := startFunction(t, ks)

	s := newStream(fn.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Second)
	defer cancel()
	var frozenAt, thawedAt time.Time
	froze := make(chan error, 1)
	go func() {
		time.Sleep(5 * time.Second)
		frozenAt = time.Now()
		if err := cluster.FreezeNode(context.Background(), victim); err != nil {
			froze <- err
			return
		}
		time.Sleep(12 * time.Second)
		thawedAt = time.Now()
		froze <- cluster.ThawNode(context.Background(), victim)
	}()
	start := time.Now()
	s.run(ctx, rate)
	end := time.Now()
	if err := <-froze; err != nil {
		t.Fatal(err)
	}
	acked := s.ackedEvents()
	p99Before, _ := s.p99(start, frozenAt)
	p99Frozen, n := s.p99(frozenAt, thawedAt)
	fails := s.failures(start, end)
	t.Logf("node %d frozen for %s: p99 %s before, %s while frozen (%d attempts); %d events acknowledged; failed attempts %v",
		victim, thawedAt.Sub(frozenAt).Round(time.Second), p99Before.Round(time.Millisecond), p99Frozen.Round(time.Millisecond), n, len(acked), fails)
	if len(fails) > 0 {
		t.Errorf("requests failed while one node of three was frozen: %v", fails)
	}
	if lost := s.lostEvents(); len(lost) > 0 {
		t.Errorf("%d events never acknowledged", len(lost))
	}
	requireStored(t, checker, ks, "after the freeze", acked)
}

// TestTokenAwareRouting: the driver sends each write to a replica of its
// partition, so no coordinator forwards it to another node. With
// replication factor 3 on three nodes every node is a replica of
// everything, so this test gives its keyspace one replica per partition;
// then a write sent to any other node would be forwarded as an internode
// message, which each node counts (system_views.internode_outbound), and
// each node's counters of the writes it coordinated and the writes it
// applied itself (system_views) must agree. With round-robin routing two
// writes in three would be forwarded.
func TestTokenAwareRouting(t *testing.T) {
	const events = 600
	ks := harness.KeyspaceName(t, "c")
	dropKeyspace(t, ks)
	fn := startFunction(t, ks, "CASSANDRA_REPLICATION={'class': 'NetworkTopologyStrategy', 'dc1': 1}")

	sessions := make([]*gocql.Session, harness.ClusterNodes+1)
	for n := 1; n <= harness.ClusterNodes; n++ {
		own, err := cluster.NodeSession(n)
		if err != nil {
			t.Fatal(err)
		}
		defer own.Close()
		sessions[n] = own
	}
	sentBefore := internodeSent(t, sessions)
	began := time.Now()
	s := newStream(fn.URL)
	s.users = events // a partition of events_by_user each
	load := harness.Load[struct{}]{Workers: 8, Send: func(_ struct{}, n int, _ time.Time) { s.deliver(s.next(n)) }}
	load.Run(nil, events)
	if got := len(s.ackedEvents()); got != events {
		t.Fatalf("%d of %d events acknowledged; failed attempts %v", got, events, s.failures(time.Time{}, time.Now()))
	}
	sent := internodeSent(t, sessions) - sentBefore
	took := time.Since(began)

	var coordinated, apart int64
	for n := 1; n <= harness.ClusterNodes; n++ {
		coord := virtualCount(t, sessions[n], "coordinator_write_latency", ks)
		local := virtualCount(t, sessions[n], "local_write_latency", ks)
		t.Logf("node %d: coordinated %d writes, applied %d itself", n, coord, local)
		coordinated += coord
		apart += max(coord-local, local-coord)
		if local == 0 {
			t.Errorf("node %d holds none of the rows: the ring is not split", n)
		}
	}
	if coordinated < 3*events {
		t.Fatalf("%d writes coordinated, fewer than the %d rows written", coordinated, 3*events)
	}
	// A write sent a second time after CASSANDRA_SPECULATIVE_DELAY goes
	// to the next node of its plan, which is not a replica here: it is
	// coordinated by one node and applied by another. Every other write
	// is applied where it was coordinated.
	if extra := coordinated - 3*events; apart > 2*extra {
		t.Errorf("coordinated and applied writes differ by %d across the nodes, more than the %d that %d speculative writes explain", apart, 2*extra, extra)
	}
	// Gossip sends a few messages a second between the nodes whatever
	// the load; a forwarded write is two (the mutation and its answer).
	t.Logf("%d rows written in %s; the nodes sent each other %d messages meanwhile", coordinated, took.Round(time.Second), sent)
	if sent > coordinated/4 {
		t.Errorf("the nodes sent each other %d messages while %d rows were written: writes were forwarded to their replicas", sent, coordinated)
	}
}

// internodeSent sums, over the nodes, the messages each has sent to the
// others (system_views.internode_outbound, node-local).
func internodeSent(t *testing.T, sessions []*gocql.Session) int64 {
	t.Helper()
	var total int64
	for n := 1; n < len(sessions); n++ {
		iter := sessions[n].Query("SELECT sent_count FROM system_views.internode_outbound").Iter()
		var c int64
		for iter.Scan(&c) {
			total += c
		}
		if err := iter.Close(); err != nil {
			t.Fatalf("system_views.internode_outbound on node %d: %v", n, err)
		}
	}
	return total
}

// virtualCount sums the count column of node-local virtual table
// system_views.<table> over the keyspace's event tables.
func virtualCount(t *testing.T, session *gocql.Session, table, keyspace string) int64 {
	t.Helper()
	var total int64
	for _, tbl := range []string{"events_by_id", "events_by_user", "events_by_target"} {
		var count int64
		q := fmt.Sprintf("SELECT count FROM system_views.%s WHERE keyspace_name = ? AND table_name = ?", table)
		if err := session.Query(q, keyspace, tbl).Scan(&count); err != nil {
			t.Fatalf("%s for %s.%s: %v", q, keyspace, tbl, err)
		}
		total += count
	}
	return total
}

// answer is what postOne read of a response besides its status.
type answer struct{ retryAfter, detail string }

// postOne sends one event once.
func postOne(t *testing.T, s *stream, ev sent) (attempt, answer) {
	t.Helper()
	body := fmt.Appendf(nil, `{"id":%q,"username":%q,"target":%q,"description":"VIEW","timestamp":%q}`, ev.ID, ev.User, ev.Target, ev.At.Format(time.RFC3339Nano))
	a := attempt{At: time.Now()}
	resp, err := s.client.Post(s.url+"/track", "application/json", bytes.NewReader(body))
	a.Latency = time.Since(a.At)
	if err != nil {
		a.Err = err
		return a, answer{}
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(resp.Body)
	a.Status = resp.StatusCode
	return a, answer{retryAfter: resp.Header.Get("Retry-After"), detail: buf.String()}
}

func counts(miss map[string][]string) map[string]int {
	out := map[string]int{}
	for table, ids := range miss {
		out[table] = len(ids)
	}
	return out
}
