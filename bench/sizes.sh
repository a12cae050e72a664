#!/usr/bin/env bash
# Binary and package sizes of the Vigie exporters against Debian's Go
# exporters (run by hand):   bash bench/sizes.sh
# Uses the release binaries (LTO, stripped) in the target dir, building them
# if missing, and the .debs from packaging/build-debs.sh when present.
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET_DIR=$(cargo metadata --format-version 1 --no-deps \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')

declare -A GO=([node]=prometheus-node-exporter [blackbox]=prometheus-blackbox-exporter
               [snmp]=prometheus-snmp-exporter [jitsi]=prometheus-jitsi-meet-exporter)
missing=()
for x in node blackbox snmp jitsi; do
  [ -x "$TARGET_DIR/release/vigie-$x-exporter" ] || missing+=(-p "vigie-$x-exporter")
done
[ ${#missing[@]} -eq 0 ] || cargo build --release "${missing[@]}"

kib() { echo $(( ($1 + 1023) / 1024 )); }
printf '%-10s %12s %12s %7s   %14s %14s\n' exporter "vigie KiB" "go KiB" ratio "vigie deb KiB" "go pkg inst KiB"
for x in node blackbox snmp jitsi; do
  v="$TARGET_DIR/release/vigie-$x-exporter"
  vs=$(stat -c %s "$v")
  g="/usr/bin/${GO[$x]}"
  if [ -e "$g" ]; then
    gs=$(stat -L -c %s "$g")
    gk=$(kib "$gs"); ratio=$(python3 -c "print(f'{$vs/$gs:.2f}')")
    inst=$(dpkg-query -W -f='${Installed-Size}' "${GO[$x]}" 2>/dev/null || echo "-")
  else
    gk="-"; ratio="-"; inst="-"
  fi
  deb=$(ls -1t "$TARGET_DIR"/debian/vigie-"$x"-exporter_*.deb 2>/dev/null | head -1 || true)
  dk="-"; [ -n "$deb" ] && dk=$(kib "$(stat -c %s "$deb")")
  printf '%-10s %12s %12s %7s   %14s %14s\n' "$x" "$(kib "$vs")" "$gk" "$ratio" "$dk" "$inst"
done
echo "(ratio = vigie / go binary size; Go binaries from Debian 12 packages, also stripped)"
