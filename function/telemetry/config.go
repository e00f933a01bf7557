package telemetry

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// Samplers are the values of OTEL_TRACES_SAMPLER that NewSampler knows.
var Samplers = []string{"always_on", "always_off", "traceidratio", "parentbased_always_on", "parentbased_always_off", "parentbased_traceidratio"}

// NewSampler returns the sampler that OTEL_TRACES_SAMPLER name and
// OTEL_TRACES_SAMPLER_ARG arg describe. The parentbased samplers follow
// the decision of the request's parent (Knative's queue-proxy, or the
// client) and apply their own rule to requests without one. arg is the
// ratio of the traceidratio samplers, from 0 to 1; empty means 1.
func NewSampler(name, arg string) (sdktrace.Sampler, error) {
	ratio := 1.0
	if strings.HasSuffix(name, "traceidratio") && arg != "" {
		r, err := strconv.ParseFloat(arg, 64)
		if err != nil || r < 0 || r > 1 {
			return nil, fmt.Errorf("the ratio %q is not a number from 0 to 1", arg)
		}
		ratio = r
	}
	switch name {
	case "always_on":
		return sdktrace.AlwaysSample(), nil
	case "always_off":
		return sdktrace.NeverSample(), nil
	case "traceidratio":
		return sdktrace.TraceIDRatioBased(ratio), nil
	case "parentbased_always_on":
		return sdktrace.ParentBased(sdktrace.AlwaysSample()), nil
	case "parentbased_always_off":
		return sdktrace.ParentBased(sdktrace.NeverSample()), nil
	case "parentbased_traceidratio":
		return sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio)), nil
	}
	return nil, fmt.Errorf("unknown sampler %q; want one of %s", name, strings.Join(Samplers, ", "))
}

// ParseResourceAttributes reads OTEL_RESOURCE_ATTRIBUTES: key=value pairs
// separated by commas, each value percent-encoded.
func ParseResourceAttributes(s string) ([]attribute.KeyValue, error) {
	var out []attribute.KeyValue
	for pair := range strings.SplitSeq(s, ",") {
		if strings.TrimSpace(pair) == "" {
			continue
		}
		key, value, ok := strings.Cut(pair, "=")
		key = strings.TrimSpace(key)
		if !ok || key == "" {
			return nil, fmt.Errorf("%q is not key=value", pair)
		}
		v, err := url.PathUnescape(strings.TrimSpace(value))
		if err != nil {
			return nil, fmt.Errorf("the value of %s is not percent-encoded: %v", key, err)
		}
		out = append(out, attribute.String(key, v))
	}
	return out, nil
}

// CheckEndpoint reports why u cannot be an OTLP/HTTP endpoint: it must be
// an http or https URL with a host, and no user information, which the
// exporter would drop without a word.
func CheckEndpoint(u string) error {
	p, err := url.Parse(u)
	switch {
	case err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "":
		return fmt.Errorf("must be an http:// or https:// URL such as http://otel-collector:4318")
	case p.User != nil:
		return fmt.Errorf("credentials in the URL are not sent; put them in OTEL_EXPORTER_OTLP_HEADERS (Authorization=...)")
	}
	return nil
}
