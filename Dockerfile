# The tracker function as a container image, for clusters and machines
# where `func build` is not used. It builds the same standalone main that
# wraps the function in func-go's HTTP runtime (knative.dev/func-go/http),
# with the func-go version of go.mod, exactly as func's scaffold does.
#
#   docker build -t tracker .
#
# test/manifests runs this file's `go build` line, so a wrong package path
# fails the tests. Keep that line free of quotes and variables.

# The Go toolchain of go.mod's go line (or newer).
ARG GO_VERSION=1.26

FROM golang:${GO_VERSION} AS build
WORKDIR /src
# Dependencies first, so that a source change reuses this layer.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# A static binary (no cgo) without local paths in it.
RUN CGO_ENABLED=0 go build -trimpath -o /out/tracker ./function/cmd/tracker

# Distroless static: CA certificates and time zone data, no shell, and the
# numeric non-root user 65532, which Kubernetes' runAsNonRoot can verify.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/tracker /tracker
USER 65532:65532
# func-go's listen address; knative/service.yaml sets the same value.
ENV LISTEN_ADDRESS=[::]:8080
EXPOSE 8080
# func-go shuts down gracefully on SIGTERM: it finishes the requests in
# flight (their Cassandra writes included), then closes the session.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/tracker"]
