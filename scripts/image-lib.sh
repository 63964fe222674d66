# Shared by scripts/build-image.sh and scripts/smoke-image.sh (sourced, not run). Builds and runs eddy's
# images with Debian's buildah and podman as root, no Docker engine and no Docker Hub: docs/deploy.md
# ("Building and checking the images") explains each choice below.

eddy_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

eddy_fail() { echo "FAIL: $*" >&2; exit 1; }
eddy_log() { echo "[$(date -u +%H:%M:%S)] $*" >&2; }

# The architecture names of the IoT Edge tooling and module.json, and what each is called elsewhere.
eddy_arch_info() { # arch -> sets dockerfile, platform, deb_arch, npm_arch
  case "$1" in
    amd64) platform=linux/amd64 deb_arch=amd64 npm_arch=x64 ;;
    arm64v8) platform=linux/arm64 deb_arch=arm64 npm_arch=arm64 ;;
    arm32v7) platform=linux/arm/v7 deb_arch=armhf npm_arch=armv7l ;;
    *) eddy_fail "unknown architecture '$1' (amd64, arm64v8 or arm32v7)" ;;
  esac
  dockerfile="$eddy_root/Dockerfile.$1${2:+.$2}"
  [ -f "$dockerfile" ] || eddy_fail "no $dockerfile"
}

eddy_need_tools() {
  [ "$(id -u)" = 0 ] || eddy_fail "buildah and podman run as root here (rootless needs subuids this machine lacks)"
  local t missing=()
  for t in "$@"; do command -v "$t" >/dev/null || missing+=("$t"); done
  [ ${#missing[@]} -eq 0 ] || eddy_fail "missing ${missing[*]}: apt-get install podman buildah debootstrap runc"
}

# A store of our own (images, containers, podman's database) under $1, so nothing touches the machine's
# /var/lib/containers and the whole store goes with one rm. runc, not crun: crun refuses a hybrid
# cgroup v1+v2 host. Explicit ulimits: without CAP_SYS_RESOURCE podman's defaults fail in setrlimit.
eddy_store_open() {
  local store=$1
  mkdir -p "$store/graph" "$store/run" "$store/tmp"
  cat >"$store/storage.conf" <<CONF
[storage]
driver = "overlay"
graphroot = "$store/graph"
runroot = "$store/run"
CONF
  cat >"$store/containers.conf" <<CONF
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
tmp_dir = "$store/tmp"
CONF
  export CONTAINERS_STORAGE_CONF="$store/storage.conf" CONTAINERS_CONF="$store/containers.conf" TMPDIR="$store/tmp"
}

# Removes a store made by eddy_store_open: stops its containers, unmounts its overlays, deletes it.
eddy_store_remove() {
  local store=$1
  [ -n "$store" ] && [ -f "$store/storage.conf" ] || return 0
  CONTAINERS_STORAGE_CONF="$store/storage.conf" CONTAINERS_CONF="$store/containers.conf" podman rm -af -t 0 >/dev/null 2>&1 || true
  CONTAINERS_STORAGE_CONF="$store/storage.conf" CONTAINERS_CONF="$store/containers.conf" buildah rm --all >/dev/null 2>&1 || true
  local m
  for m in $(awk -v s="$store/" 'index($2, s) == 1 { print $2 }' /proc/mounts | sort -r); do umount -l "$m" 2>/dev/null || true; done
  rm -rf "$store"
}

# The image name eddy's images get locally, as module.json's tag would name them.
eddy_image_tag() { # arch [variant]
  local version
  version=$(node -p "require('$eddy_root/package.json').version")
  echo "localhost/eddy:$version-$1${2:+.$2}"
}

# npm inside the build reaches the same registry as npm here. Where that goes through a re-signing proxy
# (npm's `cafile`), the image's Node must trust that CA too: the CA and an npmrc naming it are mounted
# read-only over /usr/local/etc (npm's global config folder, empty in the Node image) for the RUN steps
# only, so no layer keeps them (a file mounted where none exists would leave an empty one behind).
# Prints the folder to mount, or nothing when npm uses the public registry with the system's CAs.
eddy_npm_etc() { # folder to create
  local dir=$1 cafile registry
  cafile=$(cd / && npm config get cafile 2>/dev/null || true)
  registry=$(cd / && npm config get registry 2>/dev/null || true)
  case "$cafile" in null | undefined) cafile="" ;; esac
  if [ -z "$cafile" ] && [ "${registry%/}" = https://registry.npmjs.org ]; then return 0; fi
  mkdir -p "$dir"
  : >"$dir/npmrc"
  [ "${registry%/}" = https://registry.npmjs.org ] || echo "registry=$registry" >>"$dir/npmrc"
  if [ -n "$cafile" ]; then
    [ -r "$cafile" ] || eddy_fail "npm's cafile $cafile is not readable"
    cp "$cafile" "$dir/ca.pem"
    echo "cafile=/usr/local/etc/ca.pem" >>"$dir/npmrc"
  fi
  echo "$dir"
}
