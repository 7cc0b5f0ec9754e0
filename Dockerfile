# The project's Go programs as images, for docker-compose.yml: one build stage (cgo on:
# confluent-kafka-go links its bundled librdkafka, built for glibc), one small runtime stage per
# program. Build one with: docker build --target todo-api -t todocdc/todo-api .
# The Go version matches go.mod's go line.
FROM golang:1.26.8-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ENV CGO_ENABLED=1
RUN go build -trimpath -ldflags='-s -w' -o /out/ ./services/...

# bash stays in the runtime image: the compose health checks use its /dev/tcp (no curl needed)
FROM debian:12.12-slim AS runtime
RUN useradd --system --uid 10001 --no-create-home app
USER 10001
WORKDIR /app

FROM runtime AS todo-api
COPY --from=build /out/todo-api /usr/local/bin/todo-api
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/todo-api"]

FROM runtime AS notifier
COPY --from=build /out/notifier /usr/local/bin/notifier
ENTRYPOINT ["/usr/local/bin/notifier"]

FROM runtime AS analytics
COPY --from=build /out/analytics /usr/local/bin/analytics
ENTRYPOINT ["/usr/local/bin/analytics"]

# pipelinectl runs from /work, where compose mounts topics/ and connectors/ (its default file paths
# are relative to the repository root); the event schemas and compatibility.yaml are built into the
# binary (schemas/ is embedded), so `schemas register` needs no mount, and an edited schema a rebuild
FROM runtime AS pipelinectl
COPY --from=build /out/pipelinectl /usr/local/bin/pipelinectl
WORKDIR /work
ENTRYPOINT ["/usr/local/bin/pipelinectl"]
