# A/B root slot state, shared by the initramfs (/init) and the root (/sbin/wisp-init).
# Sourced by busybox sh. The state is one file on the data partition:
#   /data/system/ab:  current=a|b   pending=a|b|(empty)   tries=0..3
# `current` is the last confirmed slot. An update writes the new root image into the
# other slot and sets pending=<it>, tries=0. The initramfs boots a pending slot at most
# AB_MAX_TRIES times (counting each try before it boots it); the root confirms the slot
# once wisp is READY (current=<slot>, pending cleared); after AB_MAX_TRIES unconfirmed
# boots the pending slot is dropped and `current` boots again.
AB_FILE=/data/system/ab
AB_MAX_TRIES=3

ab_read() {  # sets ab_current ab_pending ab_tries (defaults: a, none, 0)
  ab_current=a ab_pending= ab_tries=0
  [ -f "$AB_FILE" ] || return 0
  while IFS='=' read -r k v; do
    case $k in
      current) case $v in a|b) ab_current=$v ;; esac ;;
      pending) case $v in a|b) ab_pending=$v ;; esac ;;
      tries) case $v in [0-9]) ab_tries=$v ;; esac ;;
    esac
  done <"$AB_FILE"
  [ "$ab_pending" = "$ab_current" ] && ab_pending=
  return 0
}

ab_write() {  # ab_write CURRENT PENDING TRIES: durably (temp file, sync, rename, sync)
  mkdir -p "${AB_FILE%/*}"
  printf 'current=%s\npending=%s\ntries=%s\n' "$1" "$2" "$3" >"$AB_FILE.tmp" || return 1
  sync
  mv -f "$AB_FILE.tmp" "$AB_FILE" || return 1
  sync
}

ab_other() { [ "$1" = a ] && echo b || echo a; }
ab_partition() { [ "$1" = a ] && echo 2 || echo 3; }  # slot -> partition number
