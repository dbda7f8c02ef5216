#!/usr/bin/env bash
# Writes docs/report-sample.png, the README's picture of the HTML report:
# the shipped sample trail replayed with --report, shot by headless
# Chromium (Debian's `chromium`). Every request off loopback goes to a
# closed local port, so nothing leaves the machine.
#
#   tools/report_screenshot.sh [OUT.png]
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-docs/report-sample.png}
chromium=${CHROMIUM:-/usr/bin/chromium}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cargo build --release --quiet
target/release/trailwatch replay -q samples/trail --report "$tmp/report.html" > /dev/null
"$chromium" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --proxy-server=http://127.0.0.1:9 \
  "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1" \
  --user-data-dir="$tmp/profile" --hide-scrollbars --window-size=1100,1500 \
  --screenshot="$out" "file://$tmp/report.html" 2> /dev/null
echo "$out"
