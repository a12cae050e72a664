#!/usr/bin/env bash
# Builds the four Vigie .deb packages in one command:
#   bash packaging/build-debs.sh            # all four
#   bash packaging/build-debs.sh node snmp  # some of them
# Output: <target dir>/debian/vigie-<x>-exporter_<version>-1_<arch>.deb
#
# It installs cargo-deb (`cargo install cargo-deb --locked`) when missing,
# builds the release binaries (LTO, stripped: see [profile.release]), stages
# what the packages ship besides the binary (man page and --help text made
# from the binary, the exporter's README) under packaging/build/, then runs
# `cargo deb --no-build` for each crate. The package metadata is the
# [package.metadata.deb] section at the end of exporters/<x>/Cargo.toml.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

ALL=(node blackbox snmp jitsi)
if [ $# -gt 0 ]; then WANT=("$@"); else WANT=("${ALL[@]}"); fi

declare -A SUMMARY=(
  [node]="Prometheus exporter for machine metrics (Vigie)"
  [blackbox]="Prometheus blackbox prober for HTTP, TCP, ICMP, DNS and gRPC (Vigie)"
  [snmp]="Prometheus SNMP exporter with a pfSense module (Vigie)"
  [jitsi]="Prometheus exporter for Jitsi Videobridge, Jicofo and Prosody (Vigie)"
)

if ! cargo deb --version >/dev/null 2>&1; then
  echo "build-debs: installing cargo-deb"
  cargo install cargo-deb --locked
fi

TARGET_DIR=$(cargo metadata --format-version 1 --no-deps \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')

# Configs each package ships as conffiles; they must exist before packaging.
for x in "${WANT[@]}"; do
  case "$x" in node|blackbox|snmp|jitsi) ;; *) echo "build-debs: unknown exporter '$x' (node|blackbox|snmp|jitsi)" >&2; exit 2 ;; esac
  if [ "$x" != node ] && [ ! -f "config/$x.yml" ]; then
    echo "build-debs: config/$x.yml is missing; vigie-$x-exporter ships it as /etc/vigie/$x.yml" >&2
    exit 1
  fi
done

pkgs=()
for x in "${WANT[@]}"; do pkgs+=(-p "vigie-$x-exporter"); done
# VIGIE_DEB_NO_BUILD=1 packages the release binaries already built.
if [ -z "${VIGIE_DEB_NO_BUILD:-}" ]; then cargo build --release "${pkgs[@]}"; fi

# A man page from --help (help2man is not in a default Debian install).
# The date comes from the changelog so that rebuilds are reproducible.
make_man() {
  local bin=$1 pkg=$2 summary=$3 out=$4 date version
  date=$(sed -n 's/^ -- .*>  //p' "packaging/$pkg/changelog" | head -1)
  date=$(date -u -d "$date" +%Y-%m-%d)
  version=$("$bin" --version 2>&1 | head -1 | awk '{print $3}')
  {
    echo ".TH $(echo "$pkg" | tr a-z A-Z) 1 \"$date\" \"Vigie $version\" \"User Commands\""
    echo ".SH NAME"
    echo "$pkg \\- $summary"
    echo ".SH SYNOPSIS"
    echo ".B $pkg"
    echo "[\\fIOPTIONS\\fR]"
    echo ".SH DESCRIPTION"
    echo "The output of \\fB$pkg \\-\\-help\\fR:"
    echo ".PP"
    echo ".nf"
    # roff: escape backslashes, protect lines starting with . or '
    "$bin" --help 2>&1 | sed -e 's/\\/\\e/g' -e "s/^\\([.']\\)/\\\\\\&\\1/"
    echo ".fi"
    echo ".SH FILES"
    echo ".TP"
    echo ".I /etc/default/$pkg"
    echo "ARGS, the extra flags the systemd unit passes."
    if [ "$pkg" != vigie-node-exporter ]; then
      local x=${pkg#vigie-}; x=${x%-exporter}
      echo ".TP"
      echo ".I /etc/vigie/$x.yml"
      echo "The configuration file (re-read on SIGHUP and POST /\\-/reload)."
    fi
    echo ".TP"
    echo ".I /usr/share/doc/$pkg/README.md"
    echo "Metrics, flags and every difference from the Go exporter."
    echo ".SH SEE ALSO"
    echo ".BR systemctl (1),"
    echo ".BR prometheus (1)"
  } > "$out"
}

# cargo-deb takes the one-line summary from [package] description, which the
# exporter crates do not set (their [package] is not packaging's to edit):
# put the summary into the control file and repack.
set_summary() {
  local deb=$1 summary=$2 tmp
  tmp=$(mktemp -d)
  dpkg-deb -R "$deb" "$tmp/root"
  sed -i "s|^Description: .*|Description: $summary|" "$tmp/root/DEBIAN/control"
  dpkg-deb --root-owner-group -Zxz -b "$tmp/root" "$deb" >/dev/null
  rm -rf "$tmp"
}

mkdir -p packaging/build
for x in "${WANT[@]}"; do
  pkg="vigie-$x-exporter"
  bin="$TARGET_DIR/release/$pkg"
  stage="packaging/build/$pkg"
  rm -rf "$stage"; mkdir -p "$stage"
  "$bin" --help > "$stage/help.txt" 2>&1
  make_man "$bin" "$pkg" "${SUMMARY[$x]}" "$stage/$pkg.1"
  gzip -9n -f "$stage/$pkg.1"
  if [ -f "exporters/$x/README.md" ]; then
    cp "exporters/$x/README.md" "$stage/README.md"
  else
    printf '# %s\n\n%s\n\nSee %s --help (help.txt next to this file).\n' "$pkg" "${SUMMARY[$x]}" "$pkg" > "$stage/README.md"
  fi
  deb=$(cd "exporters/$x" && cargo deb --no-build -p "$pkg" | tail -1)
  set_summary "$deb" "${SUMMARY[$x]}"
done

echo "build-debs: built"
for x in "${WANT[@]}"; do ls -1 "$TARGET_DIR"/debian/"vigie-$x-exporter"_*.deb; done
