# zonekeeper: a small image that runs as non-root with a read-only root filesystem.
#   docker build -t zonekeeper .
#   docker run --read-only -v zk-state:/var/lib/zonekeeper -v zk-cache:/var/cache/zonekeeper \
#     -e ZONEKEEPER_REPO=https://git.example/dns.git -p 8080:8080 -p 9090:9090 zonekeeper
# Writable paths are mounted: the state document (/var/lib/zonekeeper) and the git cache
# (/var/cache/zonekeeper, rebuilt when lost).

FROM rust:1.89-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin zonekeeper \
 && strip target/release/zonekeeper

FROM debian:bookworm-slim
# git: gix fetches on its own, but commit-back pushes with the git binary.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates=* git=* \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/zonekeeper --shell /usr/sbin/nologin zonekeeper \
 && mkdir -p /var/lib/zonekeeper /var/cache/zonekeeper \
 && chown zonekeeper:zonekeeper /var/lib/zonekeeper /var/cache/zonekeeper
COPY --from=build /src/target/release/zonekeeper /usr/local/bin/zonekeeper
USER 10001:10001
ENV ZONEKEEPER_STATE=/var/lib/zonekeeper/state.json \
    ZONEKEEPER_CACHE=/var/cache/zonekeeper \
    ZONEKEEPER_LISTEN=0.0.0.0:8080 \
    ZONEKEEPER_METRICS_LISTEN=0.0.0.0:9090 \
    HOME=/var/lib/zonekeeper
VOLUME ["/var/lib/zonekeeper", "/var/cache/zonekeeper"]
EXPOSE 8080 9090
ENTRYPOINT ["/usr/local/bin/zonekeeper"]
CMD ["run"]
