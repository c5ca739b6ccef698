#!/usr/bin/env bash
# Make sure Debian packages are installed: as root, install the missing ones with
# apt-get; otherwise name them and fail. Used by `make package` (the libraries the
# bundle must carry) and `make package-test` (what the .deb declares, as
# `apt install ./linnaeus_*.deb` would install on a user's machine).
#
#   packaging/linux/system-packages.sh PACKAGE...
#   packaging/linux/system-packages.sh --deb-relations FILE.deb   (its Depends and Recommends)
set -euo pipefail

if [ "${1:-}" = "--deb-relations" ]; then
    # "a (>= 1), b | c, d" -> a b d: the first choice of each relation, without versions.
    set -- $(dpkg-deb -f "$2" Depends Recommends | sed -E 's/^(Depends|Recommends)://' |
        tr ',' '\n' | sed -E 's/\|.*//; s/\(.*\)//' | xargs)
fi
missing=()
for package in "$@"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" ||
        missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "Installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
    echo "Missing system packages; install them with:" >&2
    echo "    sudo apt-get install ${missing[*]}" >&2
    exit 1
fi
