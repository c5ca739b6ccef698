#!/usr/bin/env bash
# Build Linnaeus.app and a .dmg on a Mac (packaging/README.md, "macOS"). Run from
# anywhere; needs Python 3.11 (python.org or Homebrew) and Xcode's command line tools.
#
#   packaging/macos/build-macos.sh
#
# leaves dist/macos/Linnaeus.app and dist/Linnaeus-<version>-macos-<arch>.dmg. The
# app is built for the Mac it runs on (arm64 or x86_64): build once on each.
# Environment: PYTHON (default python3.11), CODESIGN_IDENTITY ("Developer ID Application: ..."; unset: ad-hoc signature, fine
# for testing, Gatekeeper warns users), NOTARY_PROFILE (a `xcrun notarytool
# store-credentials` profile; set it to notarize and staple the .dmg).
set -euo pipefail
cd "$(dirname "$0")/../.."

PYTHON=${PYTHON:-python3.11}
VENV=build/macos-venv
ARCH=$(uname -m)

"$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet -c constraints.txt ".[cpu,package]"  # tested versions
VERSION=$("$VENV/bin/python" -c "import linnaeus.engine as e; print(e.__version__)")

TF_CPP_MIN_LOG_LEVEL=2 "$VENV/bin/python" -m PyInstaller --noconfirm \
    --workpath build/macos --distpath dist/macos packaging/linnaeus.spec
app=dist/macos/Linnaeus.app

# Inside the app the command line is Contents/MacOS/linnaeus; prove it works offline.
QT_QPA_PLATFORM=offscreen "$app/Contents/MacOS/linnaeus" --self-test

if [ -n "${CODESIGN_IDENTITY:-}" ]; then  # notarization needs the hardened runtime and a timestamp
    codesign --force --deep --options runtime --timestamp \
        --entitlements packaging/macos/entitlements.plist --sign "$CODESIGN_IDENTITY" "$app"
else
    codesign --force --deep --sign - "$app"
fi
dmg=dist/Linnaeus-$VERSION-macos-$ARCH.dmg
rm -f "$dmg"
hdiutil create -volname "Linnaeus $VERSION" -srcfolder "$app" -ov -format UDZO "$dmg"
if [ -n "${NOTARY_PROFILE:-}" ]; then
    xcrun notarytool submit "$dmg" --keychain-profile "$NOTARY_PROFILE" --wait
    xcrun stapler staple "$dmg"
fi
echo "built $app and $dmg"
