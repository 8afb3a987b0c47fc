#!/usr/bin/env sh
# Headless Chromium for the book's browser test (Debian packages). Installs only
# when missing and when we may (root or passwordless sudo); otherwise the browser
# test skips and says why.
if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" = "0" ]; then SUDO=""; elif sudo -n true 2>/dev/null; then SUDO="sudo -n"; else
  echo "browser-deps: chromium missing and no root; the browser test will skip" >&2; exit 0
fi
echo "browser-deps: installing chromium and chromium-driver (Debian packages)" >&2
$SUDO apt-get update -qq >/dev/null 2>&1 || true
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium chromium-driver >/dev/null 2>&1 \
  || echo "browser-deps: apt-get install failed; the browser test will skip" >&2
exit 0
