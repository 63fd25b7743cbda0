# shellcheck shell=bash
# services.sh — source this to install and start the real services the
# OpenDuck test suite needs: a throwaway PostgreSQL cluster and an S3 endpoint
# (moto), both on 127.0.0.1 on free ports. Safe under `set -euo pipefail`.
#
#   source scripts/lib/services.sh
#   trap od_cleanup EXIT
#   od_start_postgres   # exports OPENDUCK_TEST_POSTGRES_URL
#   od_start_s3         # exports OPENDUCK_TEST_S3_URL and AWS_*
#
# Installs only what is missing (Debian packages with apt, Python packages
# into the venv at ${OPENDUCK_VENV:-/var/cache/openduck/venv}).

OD_CLEANUP_CMDS=()   # run in reverse order by od_cleanup
OD_APT_UPDATED=""

od_log() { printf '==> %s\n' "$*" >&2; }

# od_on_exit CMD — register a shell command for od_cleanup to run.
od_on_exit() { OD_CLEANUP_CMDS+=("$1"); }

# od_cleanup — run the registered commands, newest first; never fails, keeps $?.
od_cleanup() {
    local rc=$? i
    for ((i = ${#OD_CLEANUP_CMDS[@]} - 1; i >= 0; i--)); do
        eval "${OD_CLEANUP_CMDS[i]}" || true
    done
    OD_CLEANUP_CMDS=()
    return "$rc"
}

# od_free_port — print a TCP port on 127.0.0.1 that is free right now.
od_free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# od_apt_install PKG... — install the Debian packages that are not installed.
od_apt_install() {
    local pkg missing=()
    for pkg in "$@"; do
        [[ "$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null)" == installed ]] || missing+=("$pkg")
    done
    ((${#missing[@]})) || return 0
    od_log "apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    if [[ -z "$OD_APT_UPDATED" ]]; then
        apt-get update -qq >/dev/null
        OD_APT_UPDATED=1
    fi
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# od_pip_install SPEC... — pip install into the project venv (skipped when this
# exact spec list was installed before) and put the venv first on PATH.
od_pip_install() {
    local venv="${OPENDUCK_VENV:-/var/cache/openduck/venv}" stamp
    stamp="$venv/.od-stamps/$(printf '%s\n' "$@" | sha256sum | cut -c1-16)"
    if [[ ! -e "$stamp" ]] || ! "$venv/bin/python" -c '' 2>/dev/null; then
        mkdir -p "$(dirname "$venv")"
        (
            flock 9   # another script may be filling the same venv
            if ! "$venv/bin/python" -c '' 2>/dev/null; then
                od_apt_install python3-venv
                od_log "creating venv $venv"
                rm -rf "$venv"
                python3 -m venv "$venv"
            fi
            if [[ ! -e "$stamp" ]]; then
                od_log "pip install $*"
                "$venv/bin/pip" install -q --disable-pip-version-check "$@"
                mkdir -p "$(dirname "$stamp")" && printf '%s\n' "$@" >"$stamp"
            fi
        ) 9>"$venv.lock"
    fi
    case ":$PATH:" in *":$venv/bin:"*) ;; *) export PATH="$venv/bin:$PATH" ;; esac
    export VIRTUAL_ENV="$venv"
}

# Run a command as the postgres OS user when we are root (initdb refuses root).
_od_as_pg() {
    if [[ "$(id -u)" == 0 ]]; then
        (cd "$OD_PG_DIR" && runuser -u postgres -- "$@")
    else
        "$@"
    fi
}

# od_start_postgres — throwaway cluster with trust auth and database openduck_test.
od_start_postgres() {
    local fresh="" port i
    [[ -d /usr/lib/postgresql ]] || fresh=1
    od_apt_install postgresql
    OD_PG_BIN="$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin | sort -V | tail -n1)"
    if [[ -n "$fresh" ]]; then   # the package may have started its own cluster
        pg_ctlcluster "$(basename "$(dirname "$OD_PG_BIN")")" main stop 2>/dev/null || true
    fi
    OD_PG_DIR="$(mktemp -d -t openduck-pg.XXXXXX)"
    od_on_exit "rm -rf '$OD_PG_DIR'"
    [[ "$(id -u)" != 0 ]] || chown postgres: "$OD_PG_DIR"
    port="$(od_free_port)"
    od_log "starting PostgreSQL ($OD_PG_BIN) on 127.0.0.1:$port in $OD_PG_DIR"
    _od_as_pg "$OD_PG_BIN/initdb" -D "$OD_PG_DIR/data" -U postgres --auth=trust \
        -E UTF8 --locale=C --no-sync >"$OD_PG_DIR/initdb.log"
    printf "%s\n" "listen_addresses = '127.0.0.1'" "port = $port" \
        "unix_socket_directories = '$OD_PG_DIR'" "fsync = off" >>"$OD_PG_DIR/data/postgresql.conf"
    od_on_exit "_od_as_pg '$OD_PG_BIN/pg_ctl' -D '$OD_PG_DIR/data' -m immediate -s stop"
    _od_as_pg "$OD_PG_BIN/pg_ctl" -D "$OD_PG_DIR/data" -l "$OD_PG_DIR/server.log" -s -w start ||
        { cat "$OD_PG_DIR/server.log" >&2; return 1; }
    for ((i = 0; i < 60; i++)); do
        "$OD_PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$port" && break
        sleep 0.5
    done
    "$OD_PG_BIN/createdb" -h 127.0.0.1 -p "$port" -U postgres openduck_test
    export OPENDUCK_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$port/openduck_test"
}

# od_start_s3 — moto S3 server with bucket openduck-test; exports the AWS_* env
# that object_store's AmazonS3Builder::from_env() reads.
od_start_s3() {
    local port pid log
    od_pip_install 'moto[server]'
    port="$(od_free_port)"
    log="$(mktemp -t openduck-moto.XXXXXX.log)"
    od_log "starting moto S3 on 127.0.0.1:$port (log $log)"
    moto_server -H 127.0.0.1 -p "$port" >"$log" 2>&1 &
    pid=$!
    od_on_exit "kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -f '$log'"
    export AWS_ENDPOINT="http://127.0.0.1:$port" AWS_ALLOW_HTTP=true \
        AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test \
        AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1 \
        AWS_VIRTUAL_HOSTED_STYLE_REQUEST=false
    if ! python - "$pid" <<'EOF'; then
import os, sys, time, urllib.request, urllib.error
import boto3
endpoint, pid = os.environ["AWS_ENDPOINT"], int(sys.argv[1])
for _ in range(120):
    try:
        urllib.request.urlopen(endpoint, timeout=1)
        break
    except urllib.error.HTTPError:
        break  # answering, even if with an error status
    except OSError:
        os.kill(pid, 0)  # raises if moto_server died
        time.sleep(0.25)
else:
    sys.exit("moto_server did not answer on " + endpoint)
boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="openduck-test")
EOF
        cat "$log" >&2
        return 1
    fi
    export OPENDUCK_TEST_S3_URL="s3://openduck-test/it"
}
