# Toolchain/image/wifi.sh (/lib/wisp/wifi.sh, sourced by wisp-init): Wi-Fi set up headlessly
# from the boot partition, then brought up with Debian's wpa_supplicant and busybox udhcpc.
#
# Sources on the boot partition (read at every boot; each one is removed once applied, a bad
# one is renamed *.rejected with the reason in wifi.error.txt):
#   network-config  cloud-init network config v2, as Raspberry Pi Imager writes it: the first
#                   access point of the first `wifis` interface, `regulatory-domain`
#   user-data       #cloud-config: `hostname` (everything else is logged and ignored; SSH
#                   keys and users too: the image has no SSH server and no login)
#   wisp.conf       the lines wifi_country, wifi_ssid, wifi_passphrase (taken out of the file
#                   before the rest goes to `wisp config check`; they win over network-config)
# Result, on the data partition: /data/etc/wifi.conf (0600: country, ssid as hex, the
# WPA-PSK key as 64 hex digits — a passphrase is turned into it with wpa_passphrase and not
# kept) and /data/etc/hostname.
# Console lines starting with "@@ wifi" / "@@ dhcp" are read by Tests/e2e/image-wifi.sh.

WIFI_CONF=/data/etc/wifi.conf

wifi_hex() { printf %s "$1" | od -An -v -tx1 | tr -d ' \n'; }

# wifi_check COUNTRY SSID PASSWORD: validates; sets wifi_psk (64 hex) or prints why not.
wifi_check() {
  local country=$1 ssid=$2 pass=$3 n
  case $country in '') ;; [A-Z][A-Z]|00) ;; *) echo "country '$country' is not two capital letters (ISO 3166, e.g. GB)"; return 1 ;; esac
  n=$(printf %s "$ssid" | wc -c)
  [ "$n" -ge 1 ] && [ "$n" -le 32 ] || { echo "SSID of $n bytes (1 to 32)"; return 1; }
  [ "$(printf %s "$ssid" | tr -d '\040-\176\200-\377' | wc -c)" = 0 ] || { echo "SSID with control characters"; return 1; }
  n=$(printf %s "$pass" | wc -c)
  if [ "$n" = 64 ] && [ -z "$(printf %s "$pass" | tr -d '0-9a-fA-F')" ]; then
    wifi_psk=$(printf %s "$pass" | tr 'A-F' 'a-f'); return 0
  fi
  [ "$n" -ge 8 ] && [ "$n" -le 63 ] || { echo "passphrase of $n characters (8 to 63, or a 64-hex-digit key)"; return 1; }
  [ -z "$(printf %s "$pass" | tr -d '\040-\176')" ] || { echo "passphrase with characters other than printable ASCII"; return 1; }
  wifi_psk=$(printf '%s\n' "$pass" | wpa_passphrase "$ssid" 2>/dev/null | sed -n 's/^[[:space:]]*psk=\([0-9a-f]\{64\}\)$/\1/p')
  [ -n "$wifi_psk" ] || { echo "wpa_passphrase failed"; return 1; }
}

# wifi_save SOURCE COUNTRY SSID PASSWORD HIDDEN: validate and write $WIFI_CONF durably.
wifi_save() {
  local src=$1 country=$2 ssid=$3 pass=$4 hidden=$5 why
  country=$(printf %s "$country" | tr 'a-z' 'A-Z')
  if ! why=$(wifi_check "$country" "$ssid" "$pass"); then
    log "Wi-Fi settings in $src rejected: $why"
    echo "@@ wifi rejected $src: $why"
    printf '%s: %s\n' "$src" "$why" >>/boot/wifi.error.txt
    return 1
  fi
  wifi_check "$country" "$ssid" "$pass" >/dev/null  # sets wifi_psk in this shell
  (umask 077; printf 'country=%s\nssid=%s\nhidden=%s\npsk=%s\n' "$country" "$(wifi_hex "$ssid")" "${hidden:-false}" "$wifi_psk" >/data/etc/wifi.conf.tmp) &&
    sync && mv -f /data/etc/wifi.conf.tmp "$WIFI_CONF" && sync
  [ -n "$country" ] || log "Wi-Fi: no country given: the radio stays on the world regulatory domain (fewer channels)"
  log "Wi-Fi settings from $src installed (SSID '$ssid', country ${country:-none})"
  echo "@@ wifi config from $src ssid=$ssid country=${country:-none} hidden=${hidden:-false}"
}

# wifi_import: the boot partition (mounted at /boot, read-write) -> $WIFI_CONF, hostname.
# Runs before wisp.conf is checked; takes the wifi_* lines out of /boot/wisp.conf.
wifi_import() {
  local k v ssid= pass= country= hidden= iface= host= err= ign= ssh= f
  rm -f /boot/wifi.error.txt
  if [ -f /boot/network-config ]; then
    awk -v file=network-config -f /lib/wisp/cloud-init.awk /boot/network-config >/tmp/nc.out 2>&1
    while IFS="$(printf '\t')" read -r k v; do
      case $k in
        ssid) ssid=$v ;; password) pass=$v ;; country) country=$v ;; hidden) hidden=$v ;; iface) iface=$v ;;
        error) err=$v ;; ignored) ign="$ign${ign:+, }$v" ;;
      esac
    done </tmp/nc.out
    [ -n "$ign" ] && log "network-config: ignored (not used by this image): $ign"
    if [ -n "$err" ]; then
      log "network-config rejected: $err"; echo "@@ wifi rejected network-config: $err"
      echo "network-config: $err" >>/boot/wifi.error.txt; mv -f /boot/network-config /boot/network-config.rejected
    elif [ -z "$ssid" ]; then
      log "network-config has no Wi-Fi access point: nothing to set"; rm -f /boot/network-config
    elif wifi_save network-config "$country" "$ssid" "$pass" "$hidden"; then
      [ -z "$iface" ] || [ "$iface" = wlan0 ] || log "network-config names interface $iface: the image uses the first Wi-Fi interface"
      rm -f /boot/network-config
    else
      mv -f /boot/network-config /boot/network-config.rejected
    fi
  fi
  if [ -f /boot/user-data ]; then
    err= ign=
    awk -v file=user-data -f /lib/wisp/cloud-init.awk /boot/user-data >/tmp/ud.out 2>&1
    while IFS="$(printf '\t')" read -r k v; do
      case $k in hostname) host=$v ;; error) err=$v ;; ignored) ign="$ign${ign:+, }$v" ;; ssh) ssh=$v ;; esac
    done </tmp/ud.out
    [ -n "$ign" ] && log "user-data: ignored (not used by this image): $ign"
    [ -n "$ssh" ] && log "user-data: SSH settings and users ignored: this image has no SSH server and no login"
    if [ -n "$err" ]; then
      log "user-data not used: $err"; echo "@@ user-data rejected: $err"
      mv -f /boot/user-data /boot/user-data.rejected
    else
      if [ -n "$host" ]; then
        if printf %s "$host" | grep -qE '^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$'; then
          echo "$host" >/data/etc/hostname.tmp && sync && mv -f /data/etc/hostname.tmp /data/etc/hostname && sync
          log "host name '$host' from user-data"; echo "@@ hostname from user-data $host"
        else
          log "user-data: host name '$host' is not a valid host name: ignored"
        fi
      fi
      rm -f /boot/user-data
    fi
  fi
  if [ -f /boot/wisp.conf ] && grep -qE '^[[:space:]]*wifi_(country|ssid|passphrase)[[:space:]]*=' /boot/wisp.conf; then
    ssid= pass= country=
    while IFS= read -r f; do
      k=$(printf %s "$f" | sed -n 's/^[[:space:]]*\(wifi_[a-z]*\)[[:space:]]*=.*/\1/p')
      v=$(printf %s "$f" | sed 's/^[^=]*=[[:space:]]*//; s/[[:space:]]*$//; s/^"\(.*\)"$/\1/')
      case $k in wifi_ssid) ssid=$v ;; wifi_passphrase) pass=$v ;; wifi_country) country=$v ;; esac
    done <<EOF
$(grep -E '^[[:space:]]*wifi_(country|ssid|passphrase)[[:space:]]*=' /boot/wisp.conf | tr -d '\r')
EOF
    # The node does not know these keys: the rest of the file goes on to `wisp config check`.
    grep -vE '^[[:space:]]*wifi_(country|ssid|passphrase)[[:space:]]*=' /boot/wisp.conf >/boot/wisp.conf.tmp
    if grep -qvE '^[[:space:]]*(#.*)?$' /boot/wisp.conf.tmp; then mv -f /boot/wisp.conf.tmp /boot/wisp.conf
    else rm -f /boot/wisp.conf.tmp /boot/wisp.conf; fi  # nothing but Wi-Fi: keep the node's config
    wifi_save wisp.conf "$country" "$ssid" "$pass" false || true
  fi
  sync
}

# wifi_start: in the background, bring up the first Wi-Fi interface with $WIFI_CONF.
wifi_start() {
  [ -f "$WIFI_CONF" ] || return 0
  (
    . "$WIFI_CONF" 2>/dev/null || { log "Wi-Fi: cannot read $WIFI_CONF"; exit 1; }
    # The Pi's Broadcom radio (its firmware comes from the root slot's /lib/firmware).
    for m in brcmfmac; do modprobe -q "$m" 2>/dev/null; done
    i=0 dev=
    while [ -z "$dev" ]; do
      for n in /sys/class/net/*; do [ -e "$n/phy80211" ] && { dev=${n##*/}; break; }; done
      [ -n "$dev" ] && break
      i=$((i + 1)); [ $i -gt 600 ] && { log "Wi-Fi: no Wi-Fi interface after 60 s"; echo "@@ wifi no interface"; exit 1; }
      usleep 100000
    done
    [ -n "$country" ] && iw reg set "$country" 2>/dev/null
    mkdir -p /run/wifi && chmod 700 /run/wifi
    {
      echo "ctrl_interface=/run/wifi/ctrl"
      [ -n "$country" ] && echo "country=$country"
      echo "network={"
      echo "	ssid=$ssid"
      [ "$hidden" = true ] && echo "	scan_ssid=1"
      echo "	key_mgmt=WPA-PSK"
      echo "	ieee80211w=1"
      echo "	psk=$psk"
      echo "}"
    } >/run/wifi/wpa_supplicant.conf
    chmod 600 /run/wifi/wpa_supplicant.conf
    ip link set "$dev" up
    log "Wi-Fi: $dev, wpa_supplicant starting"
    wpa_supplicant -B -s -i "$dev" -D nl80211 -c /run/wifi/wpa_supplicant.conf -P /run/wifi/wpa_supplicant.pid ||
      { log "Wi-Fi: wpa_supplicant failed"; echo "@@ wifi wpa_supplicant failed"; exit 1; }
    i=0
    until wpa_cli -p /run/wifi/ctrl -i "$dev" status 2>/dev/null | grep -q '^wpa_state=COMPLETED'; do
      i=$((i + 1))
      [ $i = 60 ] && log "Wi-Fi: $dev not associated after 60 s (wrong SSID or key, or out of range?): still trying"
      sleep 1
    done
    st=$(wpa_cli -p /run/wifi/ctrl -i "$dev" status 2>/dev/null)
    log "Wi-Fi: $dev associated: $(echo "$st" | grep -E '^(bssid|freq|key_mgmt|pairwise_cipher)=' | tr '\n' ' ')"
    echo "@@ wifi $dev associated at $(up) s $(echo "$st" | grep -E '^(wpa_state|key_mgmt|pairwise_cipher)=' | tr '\n' ' ')"
    udhcpc -b -S -t 5 -T 2 -A 5 -i "$dev" -s /etc/udhcpc/default.script -x hostname:"$(hostname)" >/dev/null 2>&1
  ) &
}
