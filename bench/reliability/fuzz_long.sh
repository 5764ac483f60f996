#!/usr/bin/env bash
# Long schemathesis run against a real `promptserve serve` process on loopback (the default
# backbone), every route, first with the tokens and then without: zero 5xx, every answer
# conforming to the declared status codes, headers and schemas.
#
#   bench/reliability/fuzz_long.sh [examples per operation and pass, default 300]
#
# Prints schemathesis's own summaries, then the server's count of answers by status.
set -euo pipefail
cd "$(dirname "$0")/../.."
EXAMPLES="${1:-300}"
WORK="$(mktemp -d)"
PORT="$(python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
BASE="http://127.0.0.1:${PORT}"
export FUZZ_ADMIN_TOKEN="fuzz-admin-$RANDOM" FUZZ_CLASSIFY_TOKEN="fuzz-classify-$RANDOM"

PROMPTSERVE_ADMIN_TOKEN="$FUZZ_ADMIN_TOKEN" PROMPTSERVE_CLASSIFY_TOKEN="$FUZZ_CLASSIFY_TOKEN" \
  python -m app.cli serve --port "$PORT" --prompts-dir "$WORK/prompts" --log-level warning \
  >"$WORK/server.log" 2>&1 &
SERVER=$!
trap 'kill "$SERVER" 2>/dev/null; wait "$SERVER" 2>/dev/null; rm -rf "$WORK"' EXIT
for _ in $(seq 600); do curl -sf "$BASE/readyz" >/dev/null && break; sleep 0.2; done
curl -sf "$BASE/readyz" >/dev/null || { cat "$WORK/server.log"; exit 1; }

# The task the spec's examples name, so that valid requests reach the model too.
python - "$BASE" <<'PY'
import json, os, sys, httpx, torch
from safetensors.torch import save
base = sys.argv[1]
hidden = httpx.get(f"{base}/info").json()["hidden_size"]
data = save({"prompt": torch.randn(8, hidden), "head.weight": torch.randn(2, hidden),
             "head.bias": torch.zeros(2)}, metadata={"labels": json.dumps(["neg", "pos"])})
r = httpx.put(f"{base}/prompts/sentiment", files={"file": ("p", data)},
              headers={"Authorization": f"Bearer {os.environ['FUZZ_ADMIN_TOKEN']}"})
assert r.status_code == 201, r.text
PY

# An upload's file must be a real prompt file, which no schema can say: random bytes that fit
# the spec are rightly refused (422, declared), so 'valid data is accepted' cannot apply there.
common='
[[operations]]
include-method = "PUT"
checks.positive_data_acceptance.enabled = false
'
cat >"$WORK/with-tokens.toml" <<TOML
$common
[[operations]]
include-path = "/classify"
headers = { Authorization = "Bearer ${FUZZ_CLASSIFY_TOKEN}" }

[[operations]]
include-path-regex = "^/prompts"
headers = { Authorization = "Bearer ${FUZZ_ADMIN_TOKEN}" }
TOML
echo "$common" >"$WORK/without-tokens.toml"

status=0
for pass in with-tokens without-tokens; do
  echo "=== schemathesis, $pass, up to $EXAMPLES examples per operation ==="
  schemathesis --config-file "$WORK/$pass.toml" run "$BASE/openapi.json" \
    --max-examples "$EXAMPLES" --workers 2 --no-color --suppress-health-check all \
    --generation-database none || status=1
done
echo "=== answers the server counted, by status ==="
curl -s "$BASE/metrics" | python -c '
import sys, collections
from prometheus_client.parser import text_string_to_metric_families
counts, by_route = collections.Counter(), collections.Counter()
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        if s.name == "promptserve_requests_total":
            counts[s.labels["status"]] += int(s.value)
            by_route[s.labels["route"] + " " + s.labels["status"]] += int(s.value)
print("FUZZ_LONG requests=%d" % sum(counts.values()), dict(sorted(counts.items())))
print("by route:", sorted(by_route.items()))
# /readyz answered 503 while the backbone loaded (the start-up polls above): not a failure.
fivexx = {k: v for k, v in by_route.items() if k.split()[-1].startswith("5") and k != "/readyz 503"}
print("FUZZ_LONG server_5xx=%d" % sum(fivexx.values()), fivexx)
'
if grep -q Traceback "$WORK/server.log"; then echo "server log has a Traceback:"; cat "$WORK/server.log"; status=1; fi
exit $status
