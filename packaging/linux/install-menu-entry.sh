#!/bin/sh
# Put Linnaeus from this unpacked folder into your application menu (this user only):
# writes ~/.local/share/applications/linnaeus.desktop pointing here. Run it again
# after moving the folder; delete that file to remove the entry.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
applications=${XDG_DATA_HOME:-$HOME/.local/share}/applications
mkdir -p "$applications"
sed -e "s|^Exec=linnaeus|Exec=\"$here/linnaeus\"|" -e "s|^TryExec=linnaeus|TryExec=$here/linnaeus|" \
    -e "s|^Icon=linnaeus|Icon=$here/linnaeus.png|" "$here/linnaeus.desktop" \
    >"$applications/linnaeus.desktop"
echo "Added Linnaeus to the application menu: $applications/linnaeus.desktop"
