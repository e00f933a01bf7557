package queueproxy

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"tracker/test/internal/harness"
)

// afterSIGTERM is how many requests the load gets answered after the
// pod's termination began before it stops, as traffic goes on reaching a
// pod for the moments the endpoints take to drop it.
const afterSIGTERM = 100

// TestTermination deletes the pod while a stream of events flows through
// the queue-proxy, the way the kubelet does it (harness Terminate): the
// queue-proxy gets SIGTERM and drains, the function gets SIGTERM only once
// its preStop hook (the queue-proxy's /wait-for-drain) has returned or the
// grace period has run out. Every request in flight must be answered,
// requests that still arrive during the drain must be served, the kubelet's
// probe must see the drain, every event answered 2xx must be stored, and
// once the queue-proxy is gone no request may be accepted.
func TestTermination(t *testing.T) {
	ks := harness.Keyspace(t, suite.Session, "qp")
	qp := startPod(t, suite.Hosts, ks)
	client := newClient(16)
	run := fmt.Sprint(time.Now().UnixNano())
	user, target := "term-"+run, "https://qp.example/term/"+run

	ld := &load{workers: 8, send: func(n int) result {
		return post(client, qp.URL, event(fmt.Sprintf("%s-%d", run, n), user, target))
	}}
	stop := make(chan struct{})
	done := make(chan []result)
	go func() { done <- ld.run(stop) }()
	stopped := false
	defer func() {
		if !stopped {
			close(stop)
			<-done
		}
	}()
	if !waitFor(60*time.Second, func() bool { return ld.ok.Load() >= 200 }) {
		t.Fatalf("only %d 2xx in 60 s before the termination", ld.ok.Load())
	}

	type ended struct {
		term harness.Termination
		err  error
	}
	terminated := make(chan ended, 1)
	signalled := time.Now()
	answeredAtSignal := ld.answered.Load()
	go func() {
		term, err := qp.Terminate()
		terminated <- ended{term, err}
	}()

	// The kubelet's probe sees the drain at once: the queue-proxy answers
	// it 503 itself while it keeps serving requests.
	if err := qp.PollProbe(http.StatusServiceUnavailable, 10*time.Second); err != nil {
		t.Errorf("the kubelet's probe during the drain: %v", err)
	}
	if !waitFor(30*time.Second, func() bool { return ld.answered.Load() >= answeredAtSignal+afterSIGTERM }) {
		t.Errorf("only %d requests answered in the 30 s after SIGTERM, want %d", ld.answered.Load()-answeredAtSignal, afterSIGTERM)
	}
	close(stop)
	results := <-done
	stopped = true
	trafficEnded := time.Since(signalled)

	var end ended
	select {
	case end = <-terminated:
	case <-time.After(qp.Revision.GracePeriod() + time.Minute):
		t.Fatalf("the pod's processes did not end within the grace period (%s) and a minute", qp.Revision.GracePeriod())
	}
	if end.err != nil {
		t.Fatal(end.err)
	}
	term := end.term
	t.Logf("traffic stopped %s after SIGTERM; outcomes %v", trafficEnded.Round(time.Millisecond), tally(results))
	t.Logf("grace period %s; queue-proxy exited after %s (killed at the end of the grace period: %v); preStop hook returned after %s (%v); function got SIGTERM then and exited after %s (killed: %v, exit: %v)",
		term.Grace, term.QueueExited.Round(time.Millisecond), term.QueueKilled, term.HookReturned.Round(time.Millisecond), term.HookErr,
		term.FunctionExited.Round(time.Millisecond), term.FunctionKilled, term.FunctionErr)

	// Every request in flight got an answer, and those that arrived during
	// the drain were served by the function, which the preStop hook kept
	// from its SIGTERM.
	var unanswered, refusedInDrain []result
	for _, r := range results {
		if r.Err != nil {
			unanswered = append(unanswered, r)
		} else if r.Start.After(signalled) && r.Status != http.StatusCreated {
			refusedInDrain = append(refusedInDrain, r)
		}
	}
	if len(unanswered) > 0 {
		t.Errorf("%d of %d requests got no answer, e.g. %v", len(unanswered), len(results), unanswered[0].Err)
	}
	if len(refusedInDrain) > 0 {
		r := refusedInDrain[0]
		t.Errorf("%d requests sent during the drain were not stored, e.g. %d %q: the function must serve until the queue-proxy has drained", len(refusedInDrain), r.Status, r.Body)
	}
	if term.FunctionKilled {
		t.Errorf("the function was killed %s after its SIGTERM, want an exit within the kubelet's %s", (term.FunctionExited - term.HookReturned).Round(time.Millisecond), max(term.Grace-term.HookReturned, 2*time.Second))
	}

	// Nothing is accepted once the queue-proxy is gone.
	if r := post(newClient(1), qp.URL, event(run+"-after", user, target)); r.Err == nil {
		t.Errorf("a request after the termination: got %d %q, want no connection", r.Status, r.Body)
	}

	// Every 2xx is stored.
	ok := okIDs(results)
	if len(ok) == 0 {
		t.Fatal("no 2xx at all")
	}
	if m := missing(t, suite.Session, ks, ok); len(m) > 0 {
		t.Errorf("%d of %d ids answered 2xx are not stored, e.g. %q", len(m), len(ok), m[:min(5, len(m))])
	}
	if m := missing(t, suite.Session, ks, []string{run + "-after"}); len(m) == 0 {
		t.Errorf("the request after the termination was stored")
	}
}
