# edge-gateway in a container: the gateway, and the lab's cloud, consumer and devices (docker-compose.yml).
#   docker build -t edge-gateway .                     (or podman build)
#   docker build --build-arg BASE=<image> ...          any Debian 12 image with Node.js 20+ and npm
# Multi-arch: the base and the Debian packages exist for linux/amd64, linux/arm64 and linux/arm/v7
# (docker buildx build --platform linux/arm64,linux/arm/v7,linux/amd64 .); nothing below names an
# architecture. test/deploy/image-arch.test.ts builds and runs linux/arm64 and linux/arm/v7 through
# qemu-user-static (scripts/build-lab-image.sh arm64|armhf).
ARG BASE=node:20-bookworm-slim
# What the build stage makes (npm pack: JavaScript) is the same on every architecture. Building for
# another architecture through emulation, --build-arg BUILD_BASE=<an image of this machine's own
# architecture> runs that stage natively, minutes faster (with podman, name it by image id: podman
# looks an image up by name for the target platform only).
ARG BUILD_BASE=${BASE}

# --- build: compile and pack, as a release is made (npm pack) --------------------------------
FROM ${BUILD_BASE} AS build
# Where npm must trust a proxy's CA: --build-arg npm_config_cafile=<file inside the build>.
ARG npm_config_cafile
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
COPY . .
RUN npm run build && mkdir -p /out && npm pack --ignore-scripts --silent --pack-destination /out >/dev/null \
  && mv /out/edge-gateway-*.tgz /out/edge-gateway.tgz

# --- run: the package (one bundle: it depends on nothing), and the tools of the tunnel ----------
FROM ${BASE}
ARG npm_config_cafile
# wireguard-go and wireguard-tools: the tunnel the gateway manages (and the cloud side's end);
# iproute2: its interface; mosquitto: the lab's cloud broker; mosquitto-clients: joining from a shell;
# libcap2-bin: file capabilities below; tcpdump: looking at what crosses the link.
RUN apt-get update \
  && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
     wireguard-go wireguard-tools iproute2 mosquitto mosquitto-clients libcap2-bin tcpdump ca-certificates \
  && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/edge-gateway.tgz /tmp/edge-gateway.tgz
RUN npm install --global --omit=dev --no-audit --no-fund --loglevel=error /tmp/edge-gateway.tgz \
  && rm /tmp/edge-gateway.tgz && npm cache clean --force
# The gateway runs as edge-gateway. Managing the tunnel needs CAP_NET_ADMIN, which a container gets
# only with `cap_add: [NET_ADMIN]`; these file capabilities let the unprivileged user use it, for
# these three programs alone.
RUN useradd --system --user-group --home-dir /var/lib/edge-gateway --create-home --shell /usr/sbin/nologin edge-gateway \
  && setcap cap_net_admin+ep /usr/bin/wireguard-go \
  && setcap cap_net_admin+ep /usr/bin/wg \
  && setcap cap_net_admin+ep "$(readlink -f /sbin/ip)" \
  && install -d -o edge-gateway -g edge-gateway /var/run/wireguard /lab
USER edge-gateway
WORKDIR /var/lib/edge-gateway
ENV WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD=1
# /healthz when observability.listen is set on 127.0.0.1:9464 (the lab's configs do); 200 only
# when the listeners are up, the queue is writable and the cloud link (and tunnel) are as configured.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s \
  CMD node -e "fetch('http://127.0.0.1:9464/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
ENTRYPOINT ["edge-gateway"]
CMD ["--help"]
