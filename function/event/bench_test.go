package event

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func benchEvent(i int) string {
	return fmt.Sprintf(`{"id":"bench-%d","timestamp":"2026-05-04T12:00:00.123Z","username":"user-%d","target":"https://example.com/page/%d","description":"VIEW"}`, i, i%1000, i%100)
}

// BenchmarkDecodePlain decodes and validates plain events, one and a
// batch of 100, and reports the cost per event.
func BenchmarkDecodePlain(b *testing.B) {
	now := time.Date(2026, 5, 4, 12, 30, 0, 0, time.UTC)
	parts := make([]string, 100)
	for i := range parts {
		parts[i] = benchEvent(i)
	}
	for _, c := range []struct {
		name   string
		body   []byte
		events int
	}{
		{"one", []byte(benchEvent(1)), 1},
		{"batch-100", []byte("[" + strings.Join(parts, ",") + "]"), 100},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := DecodePlain(c.body, now, 500); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*c.events), "ns/event")
		})
	}
}

// BenchmarkFlatObject is what the fast path of flatjson.go earns: one
// event object read by it and by encoding/json's tokens (the general
// path, which every input outside the common shape takes).
func BenchmarkFlatObject(b *testing.B) {
	data := []byte(benchEvent(1))
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var f fields
			if !fastFlatObject(data, plainFields, &f) {
				b.Fatal("the fast path declined the common shape")
			}
		}
	})
	b.Run("general", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var f fields
			if err := decodeFlatObjectGeneral(data, plainFields, &f); err != nil {
				b.Fatal(err)
			}
		}
	})
}
