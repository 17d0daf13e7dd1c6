# db-init image: a static binary in an empty file system, run as a non-root user.
#
#   docker build -t db-init .                       # "release": builds the binary in a Rust stage
#   scripts/build-static.sh && \
#     docker build --target host -t db-init .       # "host": the binary built on the host
#
# podman / buildah build it the same way (`podman build --target host ...`). Built on Debian 12's
# podman 4.3 (buildah 1.28) too: every base image is fully qualified (no short-name lookup, which
# fails without a TTY), and the variant is a target, not a stage named by a build argument
# (`FROM ${BINARY}`), which buildah 1.28 does not resolve. `host` comes before the Rust stage, so
# no builder, not even Docker's legacy one, touches the Rust image for `--target host`.
#
# OCI labels: pass the release and the commit, e.g.
#   --build-arg VERSION="$(git describe --tags --always)" --build-arg REVISION="$(git rev-parse HEAD)"
#   --build-arg SOURCE="https://github.com/your-org/db-init"
# With podman 4.3 / buildah 1.28 add --no-cache: its layer cache matches the LABEL line's text
# before the build arguments are put in, so a cached build keeps an earlier build's labels.

# The image itself, without the binary: labels, working folder, user, entrypoint.
FROM scratch AS base
ARG VERSION=dev
ARG REVISION=unknown
ARG SOURCE=unknown
LABEL org.opencontainers.image.title="db-init" \
      org.opencontainers.image.description="Waits for PostgreSQL, takes an advisory lock, applies Drizzle migrations, runs seeds" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.licenses="MIT OR Apache-2.0"
# Derived images COPY drizzle/ (or migrations/) and seeds/ here.
WORKDIR /work
USER 65532:65532
ENTRYPOINT ["/db-init"]

# --target host: the static binary from scripts/build-static.sh (.dockerignore lets only it in
# from target/).
FROM base AS host
COPY target/x86_64-unknown-linux-gnu/release/db-init /db-init

# The Rust stage of the default build.
FROM docker.io/library/rust:1-bookworm AS build
WORKDIR /src
# pg_query (PostgreSQL's own parser) generates its bindings with libclang.
RUN apt-get update && apt-get install -y --no-install-recommends libclang-dev && rm -rf /var/lib/apt/lists/*
COPY . .
RUN scripts/build-static.sh && cp target/x86_64-unknown-linux-gnu/release/db-init /db-init

# The default target (last stage): the binary from the Rust stage.
FROM base AS release
COPY --from=build /db-init /db-init
