#!/usr/bin/env bash
# Installs Debian/Ubuntu packages the project needs when they are missing:
#   redis-server  (the gateway's store; tests start their own)
#   chromium      (browser tests drive it headless through Playwright)
# Usage: scripts/install-system-packages.sh redis-server [chromium]
set -euo pipefail
missing=()
for pkg in "$@"; do
  case "$pkg" in
    redis-server) command -v redis-server >/dev/null || missing+=(redis-server) ;;
    chromium) command -v chromium >/dev/null || missing+=(chromium) ;;
    *) missing+=("$pkg") ;;
  esac
done
[ ${#missing[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null; then
  echo "Please install: ${missing[*]} (no apt-get here; e.g. brew install redis chromium)" >&2
  exit 1
fi
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "Installing ${missing[*]} with apt-get..." >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
