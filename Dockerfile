# esim-courier container image.
#   docker build -t esim-courier .
#   docker run -p 8080:8080 -v esim-data:/var/lib/esim-courier \
#     -e ESIM_COURIER__WEBHOOK__TOKENS=... esim-courier
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p esim-courier

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl tini \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home /var/lib/esim-courier --create-home esim-courier
COPY --from=build /src/target/release/esim-courier /usr/local/bin/esim-courier
COPY config/ /etc/esim-courier/
USER esim-courier
WORKDIR /var/lib/esim-courier
# Listen on all interfaces inside the container; keep the data under the volume.
ENV ESIM_COURIER__SERVER__BIND=0.0.0.0:8080 \
    ESIM_COURIER__DATABASE__URL=sqlite:///var/lib/esim-courier/esim-courier.db
EXPOSE 8080
VOLUME ["/var/lib/esim-courier"]
HEALTHCHECK --interval=15s --timeout=3s CMD ["curl", "-fsS", "http://127.0.0.1:8080/readyz"]
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/esim-courier", "--config", "/etc/esim-courier/esim-courier.toml"]
CMD ["serve"]
