#!/usr/bin/env bash
# Builds the Vigie .debs and checks each one on THIS machine (run by hand, as
# root, in a container or VM you can throw away; systemd need not be PID 1):
#   lintian (no errors), install, the vigie user and file modes, the binary
#   running as vigie, reinstall, upgrade to a newer revision with a kept
#   local conffile change, remove (conffiles stay), purge (this package's
#   /etc/vigie files go, the vigie user stays).
#   bash packaging/test-debs.sh              # all four
#   bash packaging/test-debs.sh node jitsi   # some
# VIGIE_DEB_NO_BUILD=1 reuses the release binaries already built.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then echo "test-debs: run as root (it installs packages)" >&2; exit 2; fi
ALL=(node blackbox snmp jitsi)
if [ $# -gt 0 ]; then WANT=("$@"); else WANT=("${ALL[@]}"); fi

bash packaging/build-debs.sh "${WANT[@]}"
TARGET_DIR=$(cargo metadata --format-version 1 --no-deps \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')

fails=0
pass() { echo "  ok   $*"; }
fail() { echo "  FAIL $*"; fails=$((fails + 1)); }
check() { local what=$1; shift; if "$@" >/dev/null 2>&1; then pass "$what"; else fail "$what"; fi; }
mode_of() { stat -c '%U:%G %a' "$1" 2>/dev/null; }

# Runs the installed binary as vigie on a free loopback port and asks /-/healthy.
runs_as_vigie() {
  local pkg=$1 cfg=$2 log port pid ok=1
  log=$(mktemp)
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  # shellcheck disable=SC2086
  runuser -u vigie -- "/usr/bin/$pkg" $cfg "--web.listen-address=127.0.0.1:$port" 2>"$log" &
  pid=$!
  for _ in $(seq 1 100); do
    if curl -fsS "http://127.0.0.1:$port/-/healthy" >/dev/null 2>&1; then ok=0; break; fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  [ $ok = 0 ] || sed 's/^/      /' "$log"
  rm -f "$log"
  return $ok
}

for x in "${WANT[@]}"; do
  pkg="vigie-$x-exporter"
  deb=$(ls -1t "$TARGET_DIR"/debian/"${pkg}"_*.deb | head -1)
  echo "== $pkg ($(basename "$deb"))"
  cfg=""; conf=""
  if [ "$x" != node ]; then conf="/etc/vigie/$x.yml"; cfg="--config.file=$conf"; fi

  # lintian: errors fail the test, warnings are shown
  lint=$(lintian --tag-display-limit 0 "$deb" 2>&1 | grep -v 'running with root privileges' || true)
  [ -n "$lint" ] && echo "$lint" | sed 's/^/      /'
  if echo "$lint" | grep -q '^E:'; then fail "lintian: no errors"; else pass "lintian: no errors"; fi

  dpkg -P "$pkg" >/dev/null 2>&1 || true
  check "install" dpkg -i "$deb"
  check "binary /usr/bin/$pkg" test -x "/usr/bin/$pkg"
  check "unit /lib/systemd/system/$pkg.service" test -f "/lib/systemd/system/$pkg.service"
  check "/etc/default/$pkg" test -f "/etc/default/$pkg"
  check "sysusers.d file" test -f "/usr/lib/sysusers.d/$pkg.conf"
  check "man page" test -f "/usr/share/man/man1/$pkg.1.gz"
  check "--help text" test -s "/usr/share/doc/$pkg/help.txt"
  check "user vigie exists" getent passwd vigie
  check "vigie is a system user" test "$(id -u vigie)" -lt 1000
  check "web config example" test -f "/etc/vigie/web-config-$x.example.yml"
  if [ -n "$conf" ]; then
    check "$conf is root:vigie 0640" test "$(mode_of "$conf")" = "root:vigie 640"
    check "$conf is a conffile" grep -qx "$conf" "/var/lib/dpkg/info/$pkg.conffiles"
  fi
  check "unit passes systemd-analyze verify" sh -c "systemd-analyze verify /lib/systemd/system/$pkg.service 2>&1 | grep -v -e 'man ' -e 'Documentation' | grep -q . && exit 1 || exit 0"
  check "runs as vigie and answers /-/healthy" runs_as_vigie "$pkg" "$cfg"

  echo "# local change" >> "/etc/default/$pkg"
  check "reinstall" dpkg -i "$deb"
  check "local /etc/default change kept on reinstall" grep -q '^# local change' "/etc/default/$pkg"

  # upgrade: the same package as revision 99
  tmp=$(mktemp -d)
  dpkg-deb -R "$deb" "$tmp/root"
  sed -i 's/^Version: \(.*\)-[0-9]*$/Version: \1-99/' "$tmp/root/DEBIAN/control"
  dpkg-deb --root-owner-group -b "$tmp/root" "$tmp/up.deb" >/dev/null
  check "upgrade to -99" dpkg -i --force-confold "$tmp/up.deb"
  check "version is -99" sh -c "dpkg-query -W -f='\${Version}' $pkg | grep -q -- '-99\$'"
  check "local /etc/default change kept on upgrade" grep -q '^# local change' "/etc/default/$pkg"
  [ -n "$conf" ] && check "$conf still root:vigie 0640 after upgrade" test "$(mode_of "$conf")" = "root:vigie 640"
  rm -rf "$tmp"

  cp "/etc/vigie/web-config-$x.example.yml" "/etc/vigie/web-config-$x.yml"
  check "remove" dpkg -r "$pkg"
  check "binary gone after remove" test ! -e "/usr/bin/$pkg"
  check "/etc/default/$pkg kept after remove" test -f "/etc/default/$pkg"
  [ -n "$conf" ] && check "$conf kept after remove" test -f "$conf"
  check "purge" dpkg -P "$pkg"
  check "/etc/default/$pkg gone after purge" test ! -e "/etc/default/$pkg"
  [ -n "$conf" ] && check "$conf gone after purge" test ! -e "$conf"
  check "admin's web-config-$x.yml gone after purge" test ! -e "/etc/vigie/web-config-$x.yml"
  check "package unknown to dpkg after purge" sh -c "! dpkg-query -W $pkg 2>/dev/null | grep -q ."
  check "user vigie kept after purge" getent passwd vigie
done

# Other packages' files are untouched by one package's purge.
if [ ${#WANT[@]} -gt 1 ]; then
  echo "== two packages side by side"
  a=${WANT[0]}; b=${WANT[1]}
  debs=()
  for x in "$a" "$b"; do debs+=("$(ls -1t "$TARGET_DIR"/debian/vigie-"$x"-exporter_*.deb | head -1)"); done
  check "install $a and $b together" dpkg -i "${debs[@]}"
  check "purge $a" dpkg -P "vigie-$a-exporter"
  check "$b's web config example survives $a's purge" test -f "/etc/vigie/web-config-$b.example.yml"
  check "purge $b" dpkg -P "vigie-$b-exporter"
  check "/etc/vigie gone when the last package is purged" test ! -e /etc/vigie
fi

if [ "$fails" -gt 0 ]; then echo "test-debs: $fails check(s) FAILED"; exit 1; fi
echo "test-debs: all checks passed"
