#!/usr/bin/env bash
# Runs eddy's image for one architecture with podman and checks it the way an IoT Edge device would use it:
#   - local mode prints summaries that check-local-output.mjs accepts within 10 s of the start;
#   - the module runs as uid 1000 (the image's `node` user), can write /app/data, cannot write /app/dist;
#   - the image's HEALTHCHECK command succeeds (`podman healthcheck run`) and fails with no server to probe;
#   - SIGTERM stops it within 10 s with exit code 0;
#   - the image holds no compiler, no dev dependency, no test or TypeScript source, nothing of the npm
#     CA mounted during the build; then it prints the layers and the size.
#
#   scripts/smoke-image.sh <amd64|arm64v8|arm32v7> [debug]
#
# With EDDY_IMAGE_STORE=DIR it checks the image scripts/build-image.sh left there; without it, it builds
# the image first in a temp store of its own and removes that store at the end.
set -euo pipefail
. "$(dirname "$0")/image-lib.sh"

[ $# -ge 1 ] && [ $# -le 2 ] || eddy_fail "usage: $0 <amd64|arm64v8|arm32v7> [debug]"
arch=$1 variant=${2:-}
eddy_arch_info "$arch" "$variant"
eddy_need_tools podman runc node
# How long the first summary may take, and SIGTERM to exit; arm64 under qemu is slower (notes in docs/deploy.md).
first_summary_s=${EDDY_SMOKE_FIRST_SUMMARY_S:-10}
stop_s=${EDDY_SMOKE_STOP_S:-10}

name="eddy-smoke-$arch-$$"
own_store=""
cleanup() {
  podman rm -f -t 0 "$name" >/dev/null 2>&1 || true
  podman image unmount -a >/dev/null 2>&1 || true
  [ -z "$own_store" ] || eddy_store_remove "$own_store"
}
if [ -n "${EDDY_IMAGE_STORE:-}" ]; then
  store=$EDDY_IMAGE_STORE
  [ -f "$store/storage.conf" ] || eddy_fail "$store is not an image store made by scripts/build-image.sh"
else
  store=$(mktemp -d /var/tmp/eddy-image-store.XXXXXX)
  own_store=$store
  trap cleanup EXIT
  EDDY_IMAGE_STORE=$store "$(dirname "$0")/build-image.sh" "$arch" $variant >/dev/null
fi
eddy_store_open "$store"
trap cleanup EXIT
tag=$(eddy_image_tag "$arch" "$variant")
podman image exists "$tag" || eddy_fail "no image $tag in $store (run scripts/build-image.sh $arch first)"

failures=0
check() { # description, then a command that must succeed
  local what=$1
  shift
  if "$@"; then echo "ok   $what"; else echo "FAIL $what" >&2; failures=$((failures + 1)); fi
}

# ---- what the image holds (its filesystem mounted read-only here) ----
mnt=$(podman image mount "$tag")
app="$mnt/app"
found() { # prints matches of find args under the image root; succeeds when there are none
  local hits
  hits=$(cd "$mnt" && find "$@" 2>/dev/null | head -20)
  [ -z "$hits" ] || { echo "$hits" | sed 's/^/       /' >&2; return 1; }
}
check "no compiler, make or python in the image" \
  found usr/bin usr/local/bin bin sbin usr/sbin -maxdepth 1 \( -name 'gcc*' -o -name 'g++*' -o -name 'c++' -o -name cc -o -name cpp -o -name 'cpp-*' -o -name 'clang*' -o -name make -o -name 'python*' \)
check "no compiler back end (cc1, cc1plus)" found usr/lib usr/libexec -name 'cc1*'
# Every install path package-lock.json marks dev-only (node_modules/vitest, node_modules/eslint/node_modules/ajv...)
# must be absent at that same path under /app; the production ones (node_modules/ajv) are what the image runs.
dev_paths=$(node -e '
  const lock = require(process.argv[1] + "/package-lock.json");
  console.log(Object.entries(lock.packages).filter(([p, m]) => p.startsWith("node_modules/") && m.dev === true).map(([p]) => p).join("\n"));' "$eddy_root")
[ -n "$dev_paths" ] || eddy_fail "package-lock.json lists no dev dependency: the dev-dependency check would prove nothing"
grep -qx 'node_modules/vitest' <<<"$dev_paths" || eddy_fail "package-lock.json does not mark vitest dev-only: cannot tell dev from production"
dev_in_image() {
  local p bad=0
  while IFS= read -r p; do
    if [ -e "$app/$p" ]; then echo "       /app/$p" >&2; bad=1; fi
  done <<<"$dev_paths"
  return $bad
}
check "none of the $(wc -l <<<"$dev_paths") dev-only install paths of package-lock.json (vitest, typescript, eslint...) in /app" dev_in_image
check "the production addon is there (better-sqlite3 build/Release/better_sqlite3.node)" test -f "$app/node_modules/better-sqlite3/build/Release/better_sqlite3.node"
check "no better-sqlite3 build leftovers (deps/, src/, obj*, test_extension.node)" \
  found app/node_modules/better-sqlite3 \( -path '*/deps' -o -path '*/better-sqlite3/src' -o -name 'obj*' -o -name test_extension.node -o -name '*.o' -o -name '*.a' \)
check "no test/, *.test.*, *.spec.*, TypeScript source or tsconfig in /app outside node_modules" \
  found app -path app/node_modules -prune -o \( -name test -o -name '*.test.*' -o -name '*.spec.*' -o -name src -o \( -name '*.ts' ! -name '*.d.ts' \) -o -name 'tsconfig*' -o -name '.npmrc' \) -print
check "nothing left of the build's npm CA mount (/usr/local/etc empty, no /root/.npmrc)" \
  found usr/local/etc root/.npmrc -mindepth 0 \( -type f -o -type l \)
podman image unmount "$tag" >/dev/null || true

# ---- the image's configuration ----
health=$(podman image inspect "$tag" | node -e 'let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => { try { const t = JSON.parse(s)[0].Healthcheck.Test; console.log(Array.isArray(t) && t[0] === "CMD" ? JSON.stringify(t.slice(1)) : ""); } catch { console.log(""); } })')
check "the image has its HEALTHCHECK (exec form; the docker format keeps it): ${health:0:60}..." test -n "$health"

# ---- run it: local mode ----
out="$store/tmp/$name.stdout"
err="$store/tmp/$name.stderr"
started=$(date +%s%N)
# --health-interval=disable: no systemd here to schedule the checks; `podman healthcheck run` runs it below.
# podman still reports (at level=error) that it has no systemd to add the timer to: that line is dropped.
podman run -d --name "$name" --network none --health-interval=disable "$tag" 2> >(grep -v 'unable to get systemd connection' >&2) >/dev/null \
  || eddy_fail "podman run $tag failed"
summary_ok=1
while :; do
  podman logs "$name" >"$out" 2>"$err" || true
  if node "$eddy_root/scripts/check-local-output.mjs" "$out" "$eddy_root/rules/default.json" >/dev/null 2>&1; then summary_ok=0; break; fi
  [ $(($(date +%s%N) - started)) -lt $((first_summary_s * 1000000000)) ] || break
  [ "$(podman inspect --format '{{.State.Running}}' "$name")" = true ] || break
  sleep 0.2
done
first_ms=$((($(date +%s%N) - started) / 1000000))
check "summaries on stdout within ${first_summary_s} s (after ${first_ms} ms), every line valid" test $summary_ok = 0
if [ $summary_ok != 0 ]; then
  node "$eddy_root/scripts/check-local-output.mjs" "$out" "$eddy_root/rules/default.json" >&2 || true
  echo "       stderr of the module:" >&2
  tail -20 "$err" | sed 's/^/       /' >&2
fi
# The debug variant's inspector prints its own two lines ("Debugger listening on ws://...", "For help, see: ...").
check "stderr holds the logger's JSON lines, with no error-level entry" \
  node -e 'const ls = require("fs").readFileSync(process.argv[1], "utf8").split("\n").filter(Boolean).filter((l) => !(process.argv[2] === "debug" && /^(Debugger listening on ws:|For help, see: )/.test(l))); if (ls.length === 0) process.exit(1); for (const l of ls) { const j = JSON.parse(l); if (j.level === "error" || j.level === "fatal" || j.level >= 50) { console.error("       " + l); process.exit(1); } }' "$err" "$variant"

uids=$(podman exec "$name" sh -c 'grep -E "^(Uid|Gid):" /proc/1/status' | awk '{print $2, $3, $4, $5}' | tr '\n' ' ')
check "the module (pid 1) runs as uid/gid 1000 (${uids% })" test "$uids" = "1000 1000 1000 1000 1000 1000 1000 1000 "
check "/app/data is writable by it" podman exec "$name" sh -c 'echo probe > /app/data/.smoke && test "$(cat /app/data/.smoke)" = probe && rm /app/data/.smoke'
check "it keeps its SQLite store in /app/data" podman exec "$name" sh -c 'ls /app/data | grep -q .'
check "/app/dist is not writable by it" podman exec "$name" sh -c '! touch /app/dist/.smoke 2>/dev/null'
check "podman healthcheck run: healthy" podman healthcheck run "$name"
# The live page is served from /app/page and node_modules/uplot (docs/contract.md section 10, "Live page").
check "the live page: / and its uPlot script answer 200, /api/state lists the default rules" podman exec "$name" node -e '
const base = "http://localhost:" + (process.env.EDDY_METRICS_PORT || "9600");
Promise.all(["/", "/uPlot.iife.min.js", "/page.js", "/api/state"].map((p) => fetch(base + p).then(async (r) => { if (!r.ok) throw new Error(p + " " + r.status); return r.text(); })))
  .then(([html, , , state]) => { if (!html.includes("page.js") || !JSON.parse(state).rules.some((r) => r.id === "machine1m")) throw new Error("unexpected content"); })
  .catch((e) => { console.error("       " + e.message); process.exit(1); })'
# The same probe, pointed at a port nothing listens on, must fail, or "healthy" above means nothing.
mapfile -t probe < <(node -e 'for (const a of JSON.parse(process.argv[1] || "[]")) console.log(a)' "$health")
probe_exit() { # EDDY_METRICS_PORT value, expected exit code of the image's HEALTHCHECK command
  local code=0
  podman exec -e "EDDY_METRICS_PORT=$1" "$name" "${probe[@]}" >/dev/null 2>&1 || code=$?
  [ "$code" = "$2" ] || { echo "       exit code $code" >&2; return 1; }
}
check "the HEALTHCHECK command exits 1 when nothing answers on the metrics port" probe_exit 9 1
check "the HEALTHCHECK command exits 0 when the metrics server is off (EDDY_METRICS_PORT=0)" probe_exit 0 0

stop_started=$(date +%s%N)
podman kill --signal TERM "$name" >/dev/null
code=$(timeout "$((stop_s + 5))" podman wait "$name" || echo timeout)
stop_ms=$((($(date +%s%N) - stop_started) / 1000000))
check "SIGTERM: exit code 0 (got $code) within ${stop_s} s (after ${stop_ms} ms)" test "$code" = 0 -a "$stop_ms" -le $((stop_s * 1000))
podman logs "$name" 2>&1 | grep -q '"msg":"stopping"' && echo "     (the module logged \"stopping\")"

echo "---- $tag: layers (podman history) ----"
podman history --no-trunc --format '{{.Size}}\t{{.CreatedBy}}' "$tag" | cut -c1-160
echo "---- $tag: size ----"
podman images --format '{{.Repository}}:{{.Tag}}  {{.Size}}' | grep -E "eddy|node" || true
if [ $failures -ne 0 ]; then eddy_fail "$failures check(s) failed for $tag"; fi
echo "all checks passed for $tag"
