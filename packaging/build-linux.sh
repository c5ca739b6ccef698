#!/usr/bin/env bash
# Build the Linux installers into dist/ (what `make package` runs):
#
#   dist/linnaeus_<version>_<arch>.deb           installs /opt/linnaeus, /usr/bin/linnaeus,
#                                                the menu entry and the icon
#   dist/linnaeus-<version>-linux-<arch>.tar.gz  the same bundle to unpack anywhere
#
# Environment: PYTHON (a Python with Linnaeus, its `cpu` or `gpu` extra and
# PyInstaller installed at the tested versions of constraints.txt, as `make package`
# installs them, or linnaeus.spec stops; default python3), DEB_COMPRESSION (zstd,
# gzip or xz; default zstd), BUILD (scratch folder, default build/package), DIST
# (default dist), REUSE_BUNDLE=1 (skip PyInstaller and repack the bundle left in
# BUILD by the last run).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
BUILD=${BUILD:-build/package}
DIST=${DIST:-dist}
# zstd packs the 1.5 GB bundle in about a minute (xz takes over twenty here) and every
# dpkg that can run the bundle (glibc 2.35+: Debian 12, Ubuntu 22.04) can unpack it.
DEB_COMPRESSION=${DEB_COMPRESSION:-zstd}
PREFIX=opt/linnaeus
export TF_CPP_MIN_LOG_LEVEL=2  # PyInstaller's hooks import TensorFlow; keep its banner out

VERSION=$("$PYTHON" -c "import linnaeus.engine as e; print(e.__version__)")
DEB_ARCH=$(dpkg --print-architecture)
ARCH=$(uname -m)
started=$SECONDS

step() { printf '\n== %s (%d s)\n' "$*" $((SECONDS - started)); }

bundle=$BUILD/bundle/linnaeus
icons=$BUILD/work/linnaeus/icons
if [ "${REUSE_BUNDLE:-0}" = 1 ] && [ -x "$bundle/linnaeus" ]; then
    step "Reusing the bundle in $bundle"
    rm -rf "$BUILD/deb" "$BUILD/tar"
else
    step "Freezing Linnaeus $VERSION with PyInstaller"
    rm -rf "$BUILD"
    "$PYTHON" -m PyInstaller --noconfirm --log-level WARN \
        --workpath "$BUILD/work" --distpath "$BUILD/bundle" packaging/linnaeus.spec
fi
mkdir -p "$DIST"

step "Staging the .deb"
root=$BUILD/deb
mkdir -p "$root/$(dirname $PREFIX)" "$root/usr/bin" "$root/usr/share/applications" \
    "$root/usr/share/doc/linnaeus" "$root/DEBIAN"
cp -al "$bundle" "$root/$PREFIX"  # hard links: the bundle is over a gigabyte
ln -s "../../$PREFIX/linnaeus" "$root/usr/bin/linnaeus"  # relative: also right under dpkg -x
cp packaging/linux/linnaeus.desktop "$root/usr/share/applications/"
mkdir -p "$root/usr/share/icons"
cp -r "$icons/hicolor" "$root/usr/share/icons/"
mkdir -p "$root/usr/share/icons/hicolor/scalable/apps"
cp resources/linnaeus.svg "$root/usr/share/icons/hicolor/scalable/apps/linnaeus.svg"
cp packaging/linux/copyright "$root/usr/share/doc/linnaeus/copyright"
installed_kb=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
sed -e "s/@VERSION@/$VERSION/" -e "s/@ARCH@/$DEB_ARCH/" -e "s/@INSTALLED_KB@/$installed_kb/" \
    packaging/linux/control.in >"$root/DEBIAN/control"

step "Packing the .deb ($DEB_COMPRESSION)"
deb=$DIST/linnaeus_${VERSION}_${DEB_ARCH}.deb
dpkg-deb --root-owner-group -Z"$DEB_COMPRESSION" --build "$root" "$deb" >/dev/null

step "Packing the .tar.gz"
tarball=$DIST/linnaeus-$VERSION-linux-$ARCH.tar.gz
top=$BUILD/tar/linnaeus-$VERSION
mkdir -p "$top"
cp -al "$bundle/." "$top/"
cp packaging/linux/linnaeus.desktop packaging/linux/install-menu-entry.sh "$top/"
cp "$icons/hicolor/256x256/apps/linnaeus.png" "$top/linnaeus.png"
tar -C "$BUILD/tar" --owner=0 --group=0 -czf "$tarball" "linnaeus-$VERSION"

step "Done"
printf 'bundle   %s unpacked\n' "$(du -sh "$bundle" | cut -f1)"
ls -l "$deb" "$tarball" | awk '{printf "%-8s %6.0f MB  %s\n", ($9 ~ /deb$/ ? "deb" : "tar.gz"), $5 / 1e6, $9}'
printf 'built in %d s\n' $((SECONDS - started))
