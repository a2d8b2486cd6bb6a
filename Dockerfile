# syntax=docker/dockerfile:1
# rperf's image: the release binary on a minimal base, for deploy/rperf-indexed-job.yaml
# (deploy/README.md says how to build and push it). Two stages: the official Rust image
# builds exactly what `cargo build --release --locked` builds anywhere else, and the image
# that runs keeps only that binary, on Debian slim for its /bin/sh (the Job's command line
# expands $JOB_COMPLETION_INDEX and $START_AT with it) and the glibc the binary links to.
# tests/distributed.rs checks what this file copies and from where.

# The Rust release the project is built and tested with (Cargo.toml's rust-version or newer),
# on the Debian release of the image below, so the binary finds the same glibc.
FROM rust:1.95-bookworm AS builder
WORKDIR /src
COPY . .
# The registry cache survives rebuilds of a changed source tree (BuildKit).
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    cargo build --release --locked

FROM debian:bookworm-slim
COPY --from=builder /src/target/release/rperf /usr/local/bin/rperf
# rperf needs no privilege: it opens client sockets and writes the files it is asked to.
USER 65532:65532
ENTRYPOINT ["rperf"]
