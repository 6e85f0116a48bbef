# Container image of exactly: a static binary (CGO_ENABLED=0; every
# driver, SQLite included, is pure Go) on distroless/static, running as
# nonroot. Build from a git clone (not a worktree) so go build stamps the
# commit that `exactly --version` prints:
#
#   docker build -t exactly:$(git rev-parse --short HEAD) .
#   docker run --rm -v $PWD/pipeline.yaml:/etc/exactly/pipeline.yaml:ro \
#     -e KAFKA_PASSWORD -e SQL_PASSWORD -p 9108:9108 exactly:…
#
# The build stage is what TestStaticBuildCarriesItsCommit runs (no Docker
# engine in CI: the test builds the same binary and checks it is static).
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o /out/exactly ./cmd/exactly \
 && /out/exactly --version

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/exactly /usr/local/bin/exactly
USER nonroot:nonroot
# /metrics, /healthz, /readyz and the status page.
EXPOSE 9108
# SIGTERM stops cleanly: the flight in progress commits or rolls back, the
# ledger says which; give it the time of one batch (terminationGracePeriod).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/exactly"]
CMD ["run", "-c", "/etc/exactly/pipeline.yaml", "--metrics-addr", ":9108"]
