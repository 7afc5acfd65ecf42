#!/usr/bin/env bash
# Vendor the front-end libraries `pipe ui` uses into runner/ui/static/vendor/, so the wheel, CI and
# the page need no npm and no request leaving the machine at run time. Each library is pinned by
# version and by the SHA-256 of the file copied; `npm pack` fetches it from npm's configured
# registry (checked against the registry's integrity hash), and a file whose digest differs stops
# the script. The copied files are committed; run this only to change a version (then update the
# digest and runner/ui/static/vendor/README.md).
#
# Usage: scripts/vendor-ui.sh
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
vendor="$root/runner/ui/static/vendor"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# package@version  file in the package  name in vendor/  sha256 of that file
libraries=(
  "@dagrejs/dagre@3.1.3 dist/dagre.min.js dagre-3.1.3.min.js 54a503e346f93ca0bb10abe7999587e037262935687aca45eb4e4b0f64bbb578"
)

mkdir -p "$vendor"
for entry in "${libraries[@]}"; do
  read -r spec file name digest <<<"$entry"
  (cd "$work" && npm pack --silent "$spec" >/dev/null)
  tarball=$(ls "$work"/*.tgz)
  mkdir -p "$work/unpacked"
  tar -xzf "$tarball" -C "$work/unpacked"
  actual=$(sha256sum "$work/unpacked/package/$file" | cut -d' ' -f1)
  if [[ "$actual" != "$digest" ]]; then
    echo "vendor-ui: $spec $file has sha256 $actual, expected $digest" >&2
    exit 1
  fi
  # The source map is not shipped: drop the comment that would make a browser ask for it.
  grep -v '^//# sourceMappingURL=' "$work/unpacked/package/$file" >"$vendor/$name"
  cp "$work/unpacked/package/LICENSE" "$vendor/${name%%.min.js}.LICENSE"
  rm -rf "$work/unpacked" "$tarball"
  echo "vendor-ui: $spec -> runner/ui/static/vendor/$name ($(wc -c <"$vendor/$name") bytes)"
done
