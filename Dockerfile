# db-init image: a static binary in an empty file system, run as a non-root user.
#
#   docker build -t db-init .                                  # builds the binary in a Rust stage
#   docker build --build-arg BINARY=host -t db-init .          # uses a binary built on the host:
#     scripts/build-static.sh
ARG BINARY=build

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
# pg_query (PostgreSQL's own parser) generates its bindings with libclang.
RUN apt-get update && apt-get install -y --no-install-recommends libclang-dev && rm -rf /var/lib/apt/lists/*
RUN scripts/build-static.sh && cp target/x86_64-unknown-linux-gnu/release/db-init /db-init

FROM scratch AS host
COPY target/x86_64-unknown-linux-gnu/release/db-init /db-init

FROM ${BINARY} AS binary

FROM scratch
COPY --from=binary /db-init /db-init
WORKDIR /work
USER 65532:65532
ENTRYPOINT ["/db-init"]
