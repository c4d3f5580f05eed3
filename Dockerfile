# One image, one binary: `poindexter <component>` picks what runs.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --bin poindexter

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/poindexter /usr/local/bin/poindexter
USER 10001
ENTRYPOINT ["poindexter"]
