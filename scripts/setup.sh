#!/usr/bin/env bash
# The set-up pipe needs on a machine, shared by ./demo and .ci/run (source it, then call the
# functions): a virtual environment with pipe installed from the checkout, a Docker engine that
# answers (with Debian's crun offered as a runtime), and the sandbox base image (pulled, or made
# with debootstrap when no registry serves it). Run directly (`sudo bash scripts/setup.sh`) it does
# the engine and base-image parts, for a person who cannot do them as root from ./demo.
#
# Installing or starting anything needs root, or passwordless sudo when SETUP_SUDO=1 (as .ci/run
# sets); otherwise the functions say what to run and return 4 (pipe's "engine unavailable").
# A running dockerd is never stopped or restarted: a runtime added to its daemon.json is loaded
# with SIGHUP.

SETUP_BASE_IMAGE="${PIPE_SANDBOX_BASE:-debian:bookworm-slim}"
SETUP_DAEMON_JSON="${SETUP_DAEMON_JSON:-/etc/docker/daemon.json}"
SETUP_DOCKERD_LOG="${SETUP_DOCKERD_LOG:-/tmp/pipe-dockerd.log}"
SETUP_CRUN=/usr/bin/crun
SETUP_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
_setup_apt_ready=""

setup_say() { printf '== %s\n' "$*"; }
setup_fail() { printf 'pipe set-up: %s\n' "$*" >&2; }

# Sets SETUP_SUDO_CMD ("" as root, "sudo" when allowed) and succeeds when root's rights are at hand.
setup_privileged() {
    SETUP_SUDO_CMD=""
    if [ "$(id -u)" = 0 ]; then return 0; fi
    if [ "${SETUP_SUDO:-}" = 1 ] && command -v sudo >/dev/null 2>&1; then
        SETUP_SUDO_CMD="sudo"
        return 0
    fi
    return 1
}

setup_apt_install() {
    command -v apt-get >/dev/null 2>&1 || { setup_fail "no apt-get here to install $*"; return 1; }
    setup_privileged || { setup_fail "installing $* needs root"; return 1; }
    if [ -z "$_setup_apt_ready" ]; then
        $SETUP_SUDO_CMD apt-get update -qq || return 1
        _setup_apt_ready=1
    fi
    DEBIAN_FRONTEND=noninteractive $SETUP_SUDO_CMD apt-get install -y -qq "$@" >/dev/null
}

# A python3 of version 3.11 or newer, on stdout.
setup_find_python() {
    local candidate
    for candidate in python3 python3.13 python3.12 python3.11; do
        if command -v "$candidate" >/dev/null 2>&1 \
            && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            command -v "$candidate"
            return 0
        fi
    done
    return 1
}

# setup_python_env SPEC: .venv at the checkout's top with `pip install -e SPEC` ("." or ".[test]").
# Skipped when .venv already holds that install of this pyproject.toml (recorded in .venv/pipe-install),
# so a second call takes no time. Afterwards .venv/bin is first on PATH.
setup_python_env() {
    local spec="$1" venv="$SETUP_ROOT/.venv" stamp python want
    stamp="$venv/pipe-install"
    want="$(sha256sum "$SETUP_ROOT/pyproject.toml" | cut -c1-64) $spec"
    if [ -x "$venv/bin/pipe" ] && [ -f "$stamp" ] && "$venv/bin/python" -c '' 2>/dev/null; then
        local have
        have="$(cat "$stamp")"
        # A plain install is satisfied by any install of the same pyproject.toml (extras only add).
        if [ "$have" = "$want" ] || { [ "$spec" = . ] && [ "${have%% *}" = "${want%% *}" ]; }; then
            PATH="$venv/bin:$PATH"
            return 0
        fi
    fi
    if "$venv/bin/python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
        python=""  # a working .venv is kept as it is
    elif ! python="$(setup_find_python)"; then
        setup_apt_install python3 python3-venv || { setup_fail "pipe needs Python >= 3.11: install it, then run this again"; return 1; }
        python="$(setup_find_python)" || { setup_fail "pipe needs Python >= 3.11"; return 1; }
    fi
    if [ -n "$python" ] && ! "$python" -m venv "$venv" >/dev/null 2>&1; then
        # Debian ships venv's pip bootstrap in python3-venv.
        if ! { setup_apt_install python3-venv && "$python" -m venv "$venv"; }; then
            setup_fail "cannot make a virtual environment with $python -m venv (Debian: apt-get install python3-venv)"
            return 1
        fi
    fi
    rm -f "$stamp"
    "$venv/bin/python" -m pip install -qq --upgrade pip || return 1
    (cd "$SETUP_ROOT" && "$venv/bin/python" -m pip install -qq -e "$spec") \
        || { setup_fail "pip install -e '$spec' failed"; return 1; }
    printf '%s\n' "$want" >"$stamp"
    PATH="$venv/bin:$PATH"
}

setup_engine_howto() {
    local problem="$1"
    setup_fail "$problem"
    if [ "$(uname -s)" != Linux ]; then
        echo "  start Docker Desktop (or another Docker engine: colima start, ...), then run this again" >&2
    elif docker info 2>&1 | grep -qi 'permission denied'; then
        echo "  the engine runs but you may not use it: sudo usermod -aG docker \"\$USER\", log in again, run this again" >&2
    else
        echo "  as root: bash scripts/setup.sh   (installs Debian's docker.io and starts dockerd)" >&2
        echo "  or start your own engine (sudo systemctl start docker), then run this again" >&2
    fi
    return 4
}

setup_dockerd_pids() { pgrep -x -u root dockerd 2>/dev/null; }

# Registers Debian's crun as the Docker runtime "crun" in daemon.json, installing it when apt can;
# other keys of daemon.json are kept. A running dockerd is sent SIGHUP to load it (runtimes are
# reloadable). Does nothing without root's rights or where crun cannot be had.
setup_crun_runtime() {
    setup_privileged || return 0
    if [ ! -x "$SETUP_CRUN" ]; then
        setup_apt_install crun 2>/dev/null || return 0
        [ -x "$SETUP_CRUN" ] || return 0
    fi
    local status=0
    $SETUP_SUDO_CMD mkdir -p "$(dirname "$SETUP_DAEMON_JSON")"
    $SETUP_SUDO_CMD python3 - "$SETUP_DAEMON_JSON" "$SETUP_CRUN" <<'EOF' || status=$?
import json, os, sys
path, crun = sys.argv[1:]
try:
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
except FileNotFoundError:
    text = ""
try:
    config = json.loads(text) if text.strip() else {}
except ValueError as error:
    sys.exit(f"pipe set-up: {path} is not JSON ({error}); crun not registered")
if not isinstance(config, dict) or not isinstance(config.get("runtimes", {}), dict):
    sys.exit(f"pipe set-up: {path}: unexpected shape; crun not registered")
runtimes = config.setdefault("runtimes", {})
if "crun" in runtimes:
    sys.exit(3)
runtimes["crun"] = {"path": crun}
temporary = f"{path}.pipe-tmp"
with open(temporary, "w", encoding="utf-8") as handle:
    json.dump(config, handle, indent=2)
    handle.write("\n")
os.replace(temporary, path)
EOF
    [ "$status" = 0 ] || return 0 # 3: already there; otherwise the reason is printed
    setup_say "crun registered as a Docker runtime in $SETUP_DAEMON_JSON"
    local pids
    pids="$(setup_dockerd_pids)" || true
    [ -n "$pids" ] || return 0
    # shellcheck disable=SC2086 # one pid a word
    $SETUP_SUDO_CMD kill -HUP $pids
    for _ in $(seq 20); do
        docker info --format '{{range $name, $_ := .Runtimes}}{{$name}} {{end}}' 2>/dev/null | grep -qw crun && return 0
        sleep 0.5
    done
    setup_fail "dockerd did not load the crun runtime after SIGHUP (see its log); continuing without it"
}

# Makes sure `docker info` answers: installs Debian's docker.io when there is no engine, starts
# dockerd when none runs, waits for a starting one. Returns 4 with what to do when it cannot.
setup_engine() {
    if docker info >/dev/null 2>&1; then
        setup_crun_runtime
        return 0
    fi
    if docker info 2>&1 | grep -qi 'permission denied'; then
        setup_engine_howto "the Docker engine does not let $(id -un) in"
        return 4
    elif [ -n "$(setup_dockerd_pids)" ]; then
        setup_say "waiting for the running dockerd to answer"
    else
        setup_privileged || { setup_engine_howto "no Docker engine answers"; return 4; }
        if ! command -v dockerd >/dev/null 2>&1 || ! command -v docker >/dev/null 2>&1; then
            setup_say "installing Debian's docker.io"
            setup_apt_install docker.io || { setup_engine_howto "cannot install docker.io"; return 4; }
        fi
        setup_crun_runtime
        setup_say "starting dockerd (log: $SETUP_DOCKERD_LOG)"
        $SETUP_SUDO_CMD sh -c "nohup dockerd >'$SETUP_DOCKERD_LOG' 2>&1 &"
    fi
    for _ in $(seq 60); do
        docker info >/dev/null 2>&1 && break
        sleep 1
    done
    if ! docker info >/dev/null 2>&1; then
        tail -20 "$SETUP_DOCKERD_LOG" >&2 2>/dev/null || true
        setup_engine_howto "no Docker engine answers after 60 s"
        return 4
    fi
    setup_crun_runtime
}

# Checks that the engine can start a container with crun. On a host with hybrid cgroups where a
# controller (hugetlb, seen here) sits on the cgroup v2 hierarchy, crun refuses every container
# ("cgroups in hybrid mode not supported"); giving that controller its own v1 hierarchy, as the other
# controllers have, fixes it. Without root, or if that does not help, pipe's `runtime: auto` falls
# back to the engine's default runtime: this only warns.
setup_crun_check() {
    docker info --format '{{range $name, $_ := .Runtimes}}{{$name}} {{end}}' 2>/dev/null | grep -qw crun || return 0
    local out
    out="$(docker run --rm --runtime crun --network none "$SETUP_BASE_IMAGE" true 2>&1)" && return 0
    local unified=/sys/fs/cgroup/unified
    if printf '%s' "$out" | grep -q 'hybrid mode' && setup_privileged && [ -r "$unified/cgroup.controllers" ]; then
        local controller
        # shellcheck disable=SC2013 # the file is one line of space-separated words
        for controller in $(cat "$unified/cgroup.controllers"); do
            setup_say "moving the cgroup controller $controller to its own v1 hierarchy, for crun"
            $SETUP_SUDO_CMD mkdir -p "/sys/fs/cgroup/$controller"
            $SETUP_SUDO_CMD mount -t cgroup -o "$controller" cgroup "/sys/fs/cgroup/$controller" || true
        done
        out="$(docker run --rm --runtime crun --network none "$SETUP_BASE_IMAGE" true 2>&1)" && return 0
    fi
    setup_fail "crun cannot start containers here (${out##*: }); pipe falls back to the engine's default runtime"
    return 0
}

# Makes sure the sandbox base image ($PIPE_SANDBOX_BASE, default debian:bookworm-slim) exists:
# pulled, or, when no registry serves it, made with debootstrap (needs root, takes minutes once).
setup_base_image() {
    docker image inspect "$SETUP_BASE_IMAGE" >/dev/null 2>&1 && return 0
    setup_say "pulling the sandbox base image $SETUP_BASE_IMAGE"
    timeout 60 docker pull -q "$SETUP_BASE_IMAGE" >/dev/null 2>&1 && return 0
    if [ "$SETUP_BASE_IMAGE" != debian:bookworm-slim ]; then
        setup_fail "cannot pull $SETUP_BASE_IMAGE (PIPE_SANDBOX_BASE); make it, or unset PIPE_SANDBOX_BASE"
        return 1
    fi
    if ! setup_privileged; then
        setup_fail "no registry serves $SETUP_BASE_IMAGE; as root: bash scripts/setup.sh (makes it with debootstrap), then run this again"
        return 1
    fi
    setup_say "no registry serves it: making $SETUP_BASE_IMAGE with debootstrap (a few minutes, once)"
    command -v debootstrap >/dev/null 2>&1 || setup_apt_install debootstrap || return 1
    local rootfs status=0
    rootfs="$(mktemp -d)"
    $SETUP_SUDO_CMD debootstrap --variant=minbase bookworm "$rootfs" >/tmp/pipe-debootstrap.log 2>&1 || status=$?
    if [ "$status" = 0 ]; then
        $SETUP_SUDO_CMD tar -C "$rootfs" -c . | docker import - "$SETUP_BASE_IMAGE" >/dev/null || status=$?
    else
        tail -20 /tmp/pipe-debootstrap.log >&2
    fi
    $SETUP_SUDO_CMD rm -rf "$rootfs"
    [ "$status" = 0 ] || setup_fail "making $SETUP_BASE_IMAGE failed"
    return "$status"
}

# Makes sure a PostgreSQL server answers on 127.0.0.1 for the tests that need one (the store tests
# against PostgreSQL, issue 19): installs Debian's postgresql when missing, starts its cluster
# (pg_ctlcluster; a running one is left alone) listening on loopback only, and creates the role
# and database SETUP_PG_URL names (default pipe:pipe@127.0.0.1:5432/pipe_test; the role may create
# databases). Exports PIPE_TEST_POSTGRES_URL. Returns 1 with what failed.
SETUP_PG_USER="${SETUP_PG_USER:-pipe}"
SETUP_PG_PASSWORD="${SETUP_PG_PASSWORD:-pipe}"
SETUP_PG_DB="${SETUP_PG_DB:-pipe_test}"
SETUP_PG_PORT="${SETUP_PG_PORT:-5432}"

# psql as the cluster's superuser (postgres) over its local socket, from / (which it can read).
setup_pg_admin() {
    if [ "$(id -u)" = 0 ]; then
        (cd / && runuser -u postgres -- psql -v ON_ERROR_STOP=1 -qtA -p "$SETUP_PG_PORT" "$@")
    else
        (cd / && sudo -u postgres psql -v ON_ERROR_STOP=1 -qtA -p "$SETUP_PG_PORT" "$@")
    fi
}
setup_postgres() {
    local url="postgresql://$SETUP_PG_USER:$SETUP_PG_PASSWORD@127.0.0.1:$SETUP_PG_PORT/$SETUP_PG_DB"
    if ! command -v pg_lsclusters >/dev/null 2>&1 || [ -z "$(pg_lsclusters -h 2>/dev/null)" ]; then
        setup_say "installing Debian's postgresql"
        setup_apt_install postgresql || { setup_fail "cannot install postgresql"; return 1; }
    fi
    setup_privileged || { setup_fail "starting PostgreSQL needs root (or SETUP_SUDO=1 with sudo)"; return 1; }
    local version cluster port status
    read -r version cluster port status _ < <(pg_lsclusters -h | head -1)
    if [ "$port" != "$SETUP_PG_PORT" ]; then
        setup_fail "the PostgreSQL cluster $version/$cluster listens on port $port, not $SETUP_PG_PORT (set SETUP_PG_PORT)"
        return 1
    fi
    if [ "$status" != online ]; then
        setup_say "starting PostgreSQL $version/$cluster on 127.0.0.1:$port"
        $SETUP_SUDO_CMD pg_ctlcluster "$version" "$cluster" start -- -o "-c listen_addresses=127.0.0.1" \
            || { setup_fail "pg_ctlcluster $version $cluster start failed"; return 1; }
    fi
    for _ in $(seq 30); do
        setup_pg_admin -c 'SELECT 1' >/dev/null 2>&1 && break
        sleep 1
    done
    if [ "$(setup_pg_admin -c "SELECT 1 FROM pg_roles WHERE rolname = '$SETUP_PG_USER'")" != 1 ]; then
        setup_pg_admin -c "CREATE ROLE $SETUP_PG_USER LOGIN CREATEDB PASSWORD '$SETUP_PG_PASSWORD'" || return 1
    fi
    if [ "$(setup_pg_admin -c "SELECT 1 FROM pg_database WHERE datname = '$SETUP_PG_DB'")" != 1 ]; then
        setup_pg_admin -c "CREATE DATABASE $SETUP_PG_DB OWNER $SETUP_PG_USER" || return 1
    fi
    export PIPE_TEST_POSTGRES_URL="$url"
    setup_say "PostgreSQL answers: PIPE_TEST_POSTGRES_URL=postgresql://$SETUP_PG_USER:***@127.0.0.1:$port/$SETUP_PG_DB"
}

# setup_redis [PORT]: a Redis for pipe's Celery broker (PIPE_BROKER_URL=redis://127.0.0.1:PORT/0) on
# loopback only, with no persistence (no RDB snapshots, no AOF): Debian's redis-server, installed when
# missing, started as a daemon unless one already answers on PORT (default 6379). Returns 1 when it
# cannot be installed or does not answer within 10 s.
setup_redis() {
    local port="${1:-6379}"
    if command -v redis-cli >/dev/null 2>&1 && redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null | grep -q PONG; then
        return 0
    fi
    command -v redis-server >/dev/null 2>&1 || setup_apt_install redis-server || return 1
    redis-server --bind 127.0.0.1 --port "$port" --protected-mode yes --save '' --appendonly no \
        --daemonize yes --logfile /tmp/pipe-redis-"$port".log --dir /tmp || return 1
    for _ in $(seq 1 50); do
        redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null | grep -q PONG && return 0
        sleep 0.2
    done
    setup_fail "redis-server did not answer on 127.0.0.1:$port (see /tmp/pipe-redis-$port.log)"
    return 1
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -euo pipefail
    setup_engine
    setup_base_image
    docker info --format 'engine {{.ServerVersion}}, runtimes:{{range $name, $_ := .Runtimes}} {{$name}}{{end}}'
    docker image inspect --format "base image $SETUP_BASE_IMAGE {{.Id}}" "$SETUP_BASE_IMAGE"
fi
