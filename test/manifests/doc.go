// Package manifests proves the deployment files of the repository before
// anyone applies them: the Knative Service, ConfigMap, Secret example,
// Brokers and Trigger in knative/, the PodMonitor, PrometheusRule, alert
// unit tests and Grafana dashboard in knative/monitoring/, the Cassandra
// StatefulSet, its companions (the NetworkPolicy among them) and the role
// Job in cassandra/, the cert-manager Issuers and Certificates of both
// authorities (and the Secret examples that stand in for them) in
// cassandra/tls/ and knative/tls/, func.yaml, the Dockerfile and the
// compose file.
//
// Its tests decode every file strictly into its typed Go object
// (cert-manager's with its own Go API), run Knative's own defaulting and
// validation, and check that the pieces agree with each other and with the
// function's configuration (package tracker/function): the PodMonitor
// scrapes the port of METRICS_ADDRESS; every PromQL query of the rules and
// the dashboard parses and names only metrics the function exports
// (tracker/function/telemetry); the function speaks TLS, presents a client
// certificate and logs in exactly as the StatefulSet's settings require,
// from mounted files that the Secrets provide; the internode port trusts
// only the internode CA, which signs nothing but the nodes' internode
// certificate, and only the nodes may reach it; and the role Job grants
// the function's role SELECT and MODIFY on its keyspace and nothing else,
// with a client certificate of its own and no password on a command line.
// Every
// check is a function that returns an error naming the file, the object
// and the field, and each has a test that feeds it a broken manifest.
// TestPromtool runs Prometheus's promtool on the alerting rules and their
// unit tests; it fails, never skips, when promtool is not installed.
package manifests
