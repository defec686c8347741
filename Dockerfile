# syntax=docker/dockerfile:1
# market-ledger: release build, then a small Debian runtime running as a non-root user.
#   docker build -t market-ledger .
#   docker run -p 8080:8080 -v market-ledger-data:/data market-ledger

FROM rust:1-bookworm AS builder
WORKDIR /src
# The whole crate (see .dockerignore): Cargo.toml may name targets under tests/ or bench/,
# and the migrations are embedded into the binary at compile time.
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked \
    && install -D -m 0755 target/release/market-ledger /out/market-ledger

FROM debian:bookworm-slim AS runtime
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 ledger \
    && useradd --system --uid 10001 --gid ledger --home-dir /data --no-create-home \
       --shell /usr/sbin/nologin ledger \
    && mkdir -p /data \
    && chown ledger:ledger /data \
    && chmod 0700 /data
COPY --from=builder /out/market-ledger /usr/local/bin/market-ledger

# SQLite by default; set DATABASE_URL=postgres://... for PostgreSQL. /data holds the SQLite
# file (if used), the generated JWT key file jwt-keys.json, the payer pepper payer-pepper and
# the feed-secret key secret-key.
ENV MARKET_LEDGER_LISTEN=0.0.0.0:8080 \
    MARKET_LEDGER_DATA_DIR=/data \
    DATABASE_URL=sqlite:///data/market-ledger.db
VOLUME ["/data"]
WORKDIR /data
USER 10001:10001
EXPOSE 8080
# The binary handles SIGTERM itself: it stops accepting and finishes requests in flight.
STOPSIGNAL SIGTERM
# Other commands: docker run --rm -i ... market-ledger market-ledger users create ... --password-stdin
CMD ["market-ledger", "serve"]
