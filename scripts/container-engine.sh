#!/usr/bin/env bash
# Prepare a Docker-compatible container engine for the qualification suite, offline.
#
# Where a Docker engine already answers, this does nothing. Otherwise (Debian, as root) it installs
# podman + runc, configures them for these machines, builds docker.io/library/redis:7 from the
# host's own redis-server binary (no registry needed), serves the Docker API on
# unix:///run/podman/podman.sock and prints the environment to export. Safe to run repeatedly.
# See /work/shared/notes/container-engine.md for why each step is needed.
#
# Usage: scripts/container-engine.sh            (then: eval "$(scripts/container-engine.sh --env)")
#        scripts/container-engine.sh --env      (prints only the export lines on stdout)
set -euo pipefail

SOCKET_PATH=/run/podman/podman.sock
SOCKET_URL="unix://${SOCKET_PATH}"
IMAGE=docker.io/library/redis:7
CONF=/etc/containers/containers.conf
SERVICE_LOG=/var/log/podman-system-service.log
READY_TIMEOUT_S=30

ENV_ONLY=false
[[ "${1:-}" == "--env" ]] && ENV_ONLY=true

log() { echo "container-engine: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# --- 0. A real Docker engine already answers: nothing to do. --------------------------------
docker_answers() {  # $1: DOCKER_HOST url
    command -v docker >/dev/null 2>&1 || return 1
    DOCKER_HOST="$1" timeout 5 docker version --format '{{.Server.Version}}' >/dev/null 2>&1
}
existing_host="${DOCKER_HOST:-unix:///var/run/docker.sock}"
if [[ "$existing_host" != "$SOCKET_URL" ]] && docker_answers "$existing_host"; then
    log "a Docker engine already answers at ${existing_host}; nothing to do"
    $ENV_ONLY || log "export TESTCONTAINERS_RYUK_DISABLED=true only if the reaper image can't be pulled"
    exit 0
fi

[[ $EUID -eq 0 ]] || die "run as root (needs apt-get, /etc/containers and /run/podman)"

# --- 1. Packages. ----------------------------------------------------------------------------
apt_install() {  # installs the given packages, running apt-get update once if needed
    command -v apt-get >/dev/null 2>&1 || die "no apt-get: install $* yourself, then re-run"
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y --no-install-recommends "$@" >&2; then
        apt-get update >&2
        apt-get install -y --no-install-recommends "$@" >&2
    fi
}
missing=()
command -v podman >/dev/null 2>&1 || missing+=(podman)
command -v runc >/dev/null 2>&1 || missing+=(runc)
if ((${#missing[@]})); then
    log "installing ${missing[*]}"
    apt_install "${missing[@]}"
fi

# --- 2. Engine configuration: runc + cgroupfs, explicit ulimits. -----------------------------
desired_conf='[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"'
mkdir -p "$(dirname "$CONF")"
if [[ ! -f "$CONF" ]] || [[ "$(cat "$CONF")" != "$desired_conf" ]]; then
    [[ -f "$CONF" && ! -f "$CONF.orig" ]] && cp "$CONF" "$CONF.orig"
    printf '%s\n' "$desired_conf" >"$CONF"
    log "wrote $CONF"
fi

# --- 3. Offline redis:7 image from the host's redis-server and the libraries it links. -------
if podman image exists "$IMAGE"; then
    log "image $IMAGE present"
else
    redis_bin="$(command -v redis-server || true)"
    if [[ -z "$redis_bin" ]]; then
        # redis-tools ships the real binary (redis-check-rdb) without a system service on :6379.
        log "no redis-server on PATH; installing redis-tools for its binary"
        apt_install redis-tools
        redis_bin=/usr/bin/redis-check-rdb
    fi
    redis_bin="$(readlink -f "$redis_bin")"
    rootfs="$(mktemp -d /tmp/redis-rootfs.XXXXXX)"
    trap 'rm -rf "$rootfs"' EXIT
    install -D -m 0755 "$redis_bin" "$rootfs/usr/bin/redis-server"
    # Every "=> /path" and every absolute loader path that ldd lists, copied to the same path.
    while read -r lib; do
        [[ -n "$lib" ]] || continue
        install -D -m 0755 "$(readlink -f "$lib")" "$rootfs$lib"
    done < <(ldd "$redis_bin" | awk '/=> \//{print $3} /^[[:space:]]*\//{print $1}')
    mkdir -p "$rootfs/data" "$rootfs/tmp"
    chmod 1777 "$rootfs/tmp"
    tar -C "$rootfs" -cf - . | podman import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'CMD ["/usr/bin/redis-server","--protected-mode","no","--bind","0.0.0.0","--dir","/data"]' \
        --change 'EXPOSE 6379' --change 'WORKDIR /data' - "$IMAGE" >&2
    log "built $IMAGE from $redis_bin ($(du -sh "$rootfs" | cut -f1))"
fi

# --- 4. Docker API socket. -------------------------------------------------------------------
socket_answers() {
    curl -fsS --max-time 2 --unix-socket "$SOCKET_PATH" http://d/_ping >/dev/null 2>&1
}
# A service started (by an older copy of this script) in a since-deleted directory answers pings
# but cannot start containers: replace it.
for pid in $(pgrep -f "podman system service" || true); do
    if [[ "$(readlink "/proc/$pid/cwd" 2>/dev/null)" == *"(deleted)" ]]; then
        log "restarting podman system service $pid (its working directory was deleted)"
        kill "$pid" 2>/dev/null || true
        deadline=$((SECONDS + READY_TIMEOUT_S))
        while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
    fi
done
if socket_answers; then
    log "podman API already answers at $SOCKET_URL"
else
    mkdir -p "$(dirname "$SOCKET_PATH")"
    rm -f "$SOCKET_PATH"
    log "starting podman system service (log: $SERVICE_LOG)"
    # From /: the service outlives this checkout, and conmon fails ("Failed to get working
    # directory") once the directory the service started in is deleted.
    setsid nohup env --chdir=/ podman system service --time=0 "$SOCKET_URL" \
        >>"$SERVICE_LOG" 2>&1 </dev/null &
    deadline=$((SECONDS + READY_TIMEOUT_S))
    until socket_answers; do
        ((SECONDS < deadline)) || die "podman API did not answer within ${READY_TIMEOUT_S}s; see $SERVICE_LOG"
        sleep 0.1
    done
    log "podman API answers at $SOCKET_URL"
fi

# --- 5. Environment for the suite. -----------------------------------------------------------
exports="export DOCKER_HOST=$SOCKET_URL
export TESTCONTAINERS_RYUK_DISABLED=true"
[[ -e /.dockerenv ]] && exports+=$'\nexport TESTCONTAINERS_CONNECTION_MODE=docker_host'
if $ENV_ONLY; then
    printf '%s\n' "$exports"
else
    log "ready; export this environment (or: eval \"\$(scripts/container-engine.sh --env)\"):"
    printf '%s\n' "$exports"
fi
