#!/usr/bin/env bash
# Docker smoke test: the image and docker-compose.yml, run for real.
#
#   scripts/docker-smoke.sh          (CI runs it from .ci/run)
#
# 1. builds the image (CPU torch) and starts promptserve + Prometheus with docker-compose;
# 2. waits for /readyz and a healthy container, classifies with a shipped task (or, while none
#    ship, with a prompt it makes with the project's own encoder and uploads);
# 3. uploads a prompt through the API (with the admin token), recreates the service container and
#    checks the upload is still served, byte for byte;
# 4. checks that Prometheus reports the promptserve target up and holds promptserve_ series;
# 5. tears the stack and its volumes down on every exit; on failure prints the logs, exits non-zero.
#
# Where no container registry is reachable, ../shared/docker/stand-in-images.sh (when present) starts
# the Docker engine and builds stand-ins for the base images first. Ports are free loopback ports.
# Env: SMOKE_READY_TIMEOUT_S (default 300); SMOKE_STAND_INS (that script's path); TORCH_CPU_INDEX
# (with the stand-ins, default empty: the base image's pip finds the CPU wheel; else PyTorch's index).
set -Eeuo pipefail
cd "$(dirname "$0")/.."
failed_at=""
trap 'failed_at="line $LINENO: $BASH_COMMAND"' ERR  # named by cleanup when a command fails

project=promptserve-smoke
ready_timeout_s=${SMOKE_READY_TIMEOUT_S:-300}
# The stand-ins live in the workplace's shared/ folder: beside the checkout, or above it when CI
# clones the project deeper down.
stand_ins=${SMOKE_STAND_INS:-}
for up in .. ../.. ../../.. ../../../..; do
  [[ -n $stand_ins ]] && break
  [[ -x $up/shared/docker/stand-in-images.sh ]] && stand_ins=$up/shared/docker/stand-in-images.sh
done
stand_ins=${stand_ins:-../shared/docker/stand-in-images.sh}
work=$(mktemp -d)
started=$SECONDS

say() { echo "docker-smoke [$((SECONDS - started))s]: $*" >&2; }
fail() { say "FAILED: $*"; exit 1; }

compose() {
  if command -v docker-compose >/dev/null; then
    docker-compose -p "$project" -f docker-compose.yml "$@"
  else
    docker compose -p "$project" -f docker-compose.yml "$@"
  fi
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if ((rc != 0)) && [[ -n $failed_at ]]; then
    say "FAILED: a command failed, $failed_at"
  fi
  if ((rc != 0)) && docker info >/dev/null 2>&1; then
    say "exit $rc; the stack's state and logs follow"
    compose ps >&2 || true
    compose logs --no-color --tail=200 >&2 || true
  fi
  if docker info >/dev/null 2>&1; then
    compose down -v --remove-orphans >/dev/null 2>&1 || say "teardown failed: run 'docker-compose -p $project down -v'"
    # Images this project's earlier builds left untagged; the cache of the current one stays.
    docker image prune -f --filter label=org.opencontainers.image.title=promptserve >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
  ((rc == 0)) && say "passed"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# json EXPR: evaluate a Python expression over the JSON document on stdin (bound to `d`).
json() { python3 -c 'import json, sys; d = json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }

# http METHOD PATH [curl args...]: the response body on stdout; the status into $work/status.
http() {
  local method=$1 path=$2
  shift 2
  curl -sS -o "$work/body" -w '%{http_code}' -X "$method" "$@" "http://$PROMPTSERVE_PUBLISH$path" >"$work/status" || echo 000 >"$work/status"
  cat "$work/body"
}
status() { cat "$work/status"; }
expect() {  # expect STATUS WHAT: the last http call answered STATUS
  [[ $(status) == "$1" ]] || fail "$2: HTTP $(status), expected $1: $(head -c 500 "$work/body")"
}

engine() {
  if [[ -x $stand_ins ]]; then
    local python_image prom_image
    python_image=$(sed -n 's/^ARG PYTHON_IMAGE=//p' Dockerfile)
    prom_image=$(grep -oE 'prom/prometheus:[^" ]+' docker-compose.yml)
    "$stand_ins" --python "$python_image" --prometheus "$prom_image" >&2 || fail "the stand-in images could not be built"
    export TORCH_CPU_INDEX=${TORCH_CPU_INDEX-}
  fi
  docker info >/dev/null 2>&1 || fail "no Docker engine answers (docker info); start one, or run $stand_ins"
  command -v docker-compose >/dev/null || docker compose version >/dev/null 2>&1 || fail "neither docker-compose nor 'docker compose' is installed"
}

configure() {
  local name
  for name in $(compgen -e); do [[ $name == PROMPTSERVE_* ]] && unset "$name"; done
  export TORCH_BUILD=cpu
  PROMPTSERVE_PUBLISH=127.0.0.1:$(free_port)
  PROMETHEUS_PUBLISH=127.0.0.1:$(free_port)
  PROMPTSERVE_ADMIN_TOKEN=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
  export PROMPTSERVE_PUBLISH PROMETHEUS_PUBLISH PROMPTSERVE_ADMIN_TOKEN
  compose config -q || fail "docker-compose.yml is invalid"
  compose -f docker-compose.gpu.yml config -q || fail "docker-compose.gpu.yml is invalid"
}

build_and_start() {
  compose down -v --remove-orphans >/dev/null 2>&1 || true  # leftovers of an interrupted run
  say "building the image (CPU torch; cached layers are reused)"
  if ! compose build promptserve >"$work/build.log" 2>&1; then
    tail -n 60 "$work/build.log" >&2
    fail "docker-compose build"
  fi
  compose up -d >&2 || fail "docker-compose up"
}

container_id() { compose ps -q promptserve; }

wait_ready() {
  local deadline=$((SECONDS + ready_timeout_s)) id
  id=$(container_id)
  until [[ $(http GET /readyz >/dev/null; status) == 200 ]]; do
    # `restart: unless-stopped` would hide a crash loop behind a running container: count restarts.
    [[ $(docker inspect -f '{{.State.Running}} {{.RestartCount}}' "$id") == "true 0" ]] || fail "the service container exited"
    ((SECONDS < deadline)) || fail "/readyz not 200 after ${ready_timeout_s}s"
    sleep 2
  done
  until [[ $(docker inspect -f '{{.State.Health.Status}}' "$id") == healthy ]]; do
    ((SECONDS < deadline)) || fail "ready, but the HEALTHCHECK never reported healthy"
    sleep 2
  done
  say "ready and healthy: $(http GET /info)"
}

classify() {  # classify TASK: one text, the predicted label must be one of the task's labels
  local body labels
  body=$(http GET "/prompts/$1")
  expect 200 "GET /prompts/$1"
  labels=$(echo "$body" | json 'next(v["labels"] for v in d["versions"] if v["active"])')
  body=$(http POST /classify -H 'content-type: application/json' -d "{\"task\": \"$1\", \"inputs\": [\"a delight from start to finish\"]}")
  expect 200 "classify with $1"
  echo "$body" | json "d['predictions'][0]['label'] in $labels" | grep -qx True || fail "classify $1 answered $body, labels $labels"
  say "classified with $1: $body"
}

make_prompt() {  # make_prompt FILE: a random prompt file for the server's backbone, by app code
  compose exec -T promptserve python3 - <scripts/smoke_prompt.py >"$work/prompt.b64" || fail "could not make a prompt file in the container"
  base64 -d "$work/prompt.b64" >"$1"
}

upload() {  # upload TASK FILE [TOKEN]
  http PUT "/prompts/$1" -H "authorization: Bearer ${3-$PROMPTSERVE_ADMIN_TOKEN}" \
    -F "file=@$2" -F 'labels=["negative", "positive"]' >/dev/null
}

task_list() {  # the registry's task ids, space-separated
  local listed
  listed=$(http GET '/prompts?limit=1000')
  expect 200 "GET /prompts"
  echo "$listed" | json '" ".join(t["task"] for t in d["tasks"])'
}

check_shipped_tasks() {
  local listed shipped task
  listed=$(task_list)
  shipped=""
  if [[ -d prompts ]]; then  # absent from a clone until tasks ship
    shipped=$(find prompts -mindepth 1 -maxdepth 1 -type d -printf '%f\n' | sort)
  fi
  for task in $shipped; do
    [[ " $listed " == *" $task "* ]] || fail "shipped task $task was not seeded; the registry has: $listed"
    classify "$task"
  done
  if [[ -z $shipped ]]; then
    say "no shipped tasks in prompts/: uploading one made here"
    make_prompt "$work/seed.safetensors"
    upload smoke-seed "$work/seed.safetensors"
    expect 201 "upload smoke-seed"
    classify smoke-seed
  fi
}

check_upload_survives_recreation() {
  local before after old_id tasks_before
  make_prompt "$work/upload.safetensors"
  upload smoke-upload "$work/upload.safetensors" wrong-token
  expect 401 "upload with a wrong admin token"
  upload smoke-upload "$work/upload.safetensors"
  expect 201 "upload smoke-upload"
  before=$(http GET /prompts/smoke-upload)
  tasks_before=$(task_list)
  old_id=$(container_id)
  say "recreating the service container"
  compose up -d --force-recreate --no-deps promptserve >&2 || fail "recreate"
  [[ $(container_id) != "$old_id" ]] || fail "the container was not recreated"
  wait_ready
  after=$(http GET /prompts/smoke-upload)
  expect 200 "GET /prompts/smoke-upload after recreation"
  [[ $after == "$before" ]] || fail "the upload changed across recreation: $before -> $after"
  [[ $(task_list) == "$tasks_before" ]] || fail "the tasks changed across recreation: $tasks_before -> $(task_list)"
  classify smoke-upload
}

prometheus() {  # prometheus PATH [curl args...]: GET from Prometheus's HTTP API
  curl -sf "http://$PROMETHEUS_PUBLISH/api/v1/$1" "${@:2}"
}

scraped() {  # scraped QUERY: the first result's value of an instant query, empty if none
  prometheus query --data-urlencode "query=$1" | json 'd["data"]["result"][0]["value"][1] if d["data"]["result"] else ""'
}

check_prometheus() {  # polled: the service container was just recreated, scrapes come every 5 s
  local deadline=$((SECONDS + 90)) health="" series="" classified=""
  until [[ $health == up && ${series:-0} -gt 0 && -n $classified ]]; do
    ((SECONDS < deadline)) || fail "Prometheus: promptserve target '${health:-absent}'; ${series:-no} promptserve_ series; classify requests counted: ${classified:-none}"
    sleep 2
    health=$(prometheus targets | json '",".join(t["health"] for t in d["data"]["activeTargets"] if t["labels"]["job"] == "promptserve")') || true
    series=$(scraped 'count({__name__=~"promptserve_.+"})') || true
    classified=$(scraped 'sum(promptserve_requests_total{route="/classify",status="200"})') || true
  done
  say "Prometheus: promptserve target up, $series promptserve_ series, $classified classify requests counted"
}

command -v curl >/dev/null || fail "curl is needed"
engine
configure
build_and_start
say "stack up: promptserve on $PROMPTSERVE_PUBLISH, Prometheus on $PROMETHEUS_PUBLISH"
wait_ready
[[ $(compose exec -T promptserve id -u) == 10001 ]] || fail "the service does not run as uid 10001"
check_shipped_tasks
check_upload_survives_recreation
check_prometheus
