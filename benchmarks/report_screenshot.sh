#!/usr/bin/env bash
# Screenshot a condgan report page in headless Chromium (Debian: apt-get install -y chromium).
#   bash benchmarks/report_screenshot.sh RUN/report.html out.png
set -euo pipefail
page=$(realpath "$1"); shot=${2:-report.png}
browser=$(command -v chromium || command -v chromium-browser || true)
[ -n "$browser" ] || { echo "chromium is not installed (apt-get install -y chromium)" >&2; exit 1; }
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
timeout 120 "$browser" --headless --no-sandbox --disable-gpu --disable-background-networking --disable-component-update \
  --disable-sync --no-first-run --user-data-dir="$profile" --screenshot="$shot" --window-size=1200,2000 "file://$page" 2>/dev/null
echo "wrote $shot"
