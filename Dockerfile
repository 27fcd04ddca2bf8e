# syntax=docker/dockerfile:1
#
# likes: one static binary (serve, consume, dev, migrate, token, config,
# healthcheck) on a distroless base: no shell, no package manager, non-root.
#
#   docker build -t likes:dev --build-arg VERSION=$(git describe --always) .
#   docker run --rm -p 8080:8080 -p 9090:9090 \
#     -e LIKES_REDIS_ADDRS=redis:6379 -e LIKES_KAFKA_BROKERS=kafka:9092 \
#     -e LIKES_DB_URL=postgres://... -e LIKES_AUTH_JWT_SECRET=... likes:dev serve
#   docker run --rm likes:dev consume ...
#
# dockerfile_test.go builds the binary with the very `go build` line below
# (same environment, same flags) and checks that it is static.

ARG GO_VERSION=1.26

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION}-bookworm AS build
# Set by BuildKit to the platform being built (docker buildx --platform ...).
ARG TARGETOS TARGETARCH
ARG VERSION=dev
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} go build -trimpath -buildvcs=false -ldflags "-s -w -X main.version=${VERSION}" -o /out/likes ./cmd/likes

# distroless/static: CA certificates, tzdata, /etc/passwd with nonroot
# (65532), nothing else.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/likes /usr/local/bin/likes
# Numeric, so that Kubernetes' runAsNonRoot can verify it.
USER 65532:65532
# The API on 8080 and /metrics, /healthz, /readyz on a separate admin
# listener on 9090, so probes and scrapes never queue behind like traffic.
# The environment wins over a --config file: set listen addresses with
# LIKES_HTTP_LISTEN / LIKES_ADMIN_LISTEN (or flags), not in the file.
ENV LIKES_HTTP_LISTEN=0.0.0.0:8080 \
    LIKES_ADMIN_LISTEN=0.0.0.0:9090
EXPOSE 8080 9090
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["/usr/local/bin/likes", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/likes"]
CMD ["serve"]
