# Toolchain/image/cloud-init.awk (/lib/wisp/cloud-init.awk in the image): reads the subset
# of cloud-init files a node needs, as Raspberry Pi Imager's OS customisation writes them on
# the boot partition. Not a YAML parser: block mappings of "key: value" lines, quoted or
# bare scalars; anything else is reported, never guessed at.
#
#   awk -v file=network-config -f cloud-init.awk network-config
#       network config version 2: the first access point of the first `wifis` interface
#       (name, `password` or `auth: {password}`, `hidden`) and `regulatory-domain`.
#   awk -v file=user-data -f cloud-init.awk user-data
#       `#cloud-config` with a top-level `hostname`.
#
# Output, one per line, TAB between name and value:
#   ssid S | password P | hidden true | country CC | iface NAME | hostname H
#   ignored WHAT   (a key or section this image does not use; logged by the caller)
#   ssh WHAT       (SSH settings: ignored, the image has no SSH server)
#   error WHY      (the file cannot be used)
# Values are passed on as written; the caller validates them (lengths, characters).

function unquote(s,    q, out, i, c) {
  q = substr(s, 1, 1)
  if (q == "\"") {
    out = ""
    for (i = 2; i <= length(s); i++) {
      c = substr(s, i, 1)
      if (c == "\\") { i++; c = substr(s, i, 1); if (c == "n" || c == "t" || c == "r") { bad = "escape \\" c " in a quoted string"; return "" } out = out c; continue }
      if (c == "\"") { rest = substr(s, i + 1); return out }
      out = out c
    }
    bad = "unterminated double-quoted string"; return ""
  }
  if (q == "'") {
    out = ""
    for (i = 2; i <= length(s); i++) {
      c = substr(s, i, 1)
      if (c == "'") {
        if (substr(s, i + 1, 1) == "'") { out = out "'"; i++; continue }
        rest = substr(s, i + 1); return out
      }
      out = out c
    }
    bad = "unterminated single-quoted string"; return ""
  }
  rest = ""
  return s
}

# The key of a "key: value" line (quoted or bare); sets `value` to the raw rest.
function split_key(s,    k, i) {
  bad = ""
  if (substr(s, 1, 1) == "\"" || substr(s, 1, 1) == "'") {
    k = unquote(s)
    if (bad != "") return ""
    s = rest
    sub(/^[ \t]*/, "", s)
    if (substr(s, 1, 1) != ":") { bad = "no ':' after a quoted key"; return "" }
    value = substr(s, 2)
  } else {
    i = index(s " ", ": ")
    if (i == 0) { bad = "not a 'key: value' line"; return "" }
    k = substr(s, 1, i - 1)
    value = substr(s, i + 1)
  }
  sub(/^[ \t]+/, "", value); sub(/[ \t\r]+$/, "", value)
  return k
}

function scalar(v,    c) {
  c = substr(v, 1, 1)
  if (c == "\"" || c == "'") {
    v = unquote(v)
    if (bad == "") { sub(/^[ \t]+/, "", rest); if (rest != "" && rest !~ /^#/) bad = "text after a quoted value" }
    return v
  }
  if (c == "|" || c == ">") { block = 1; return "" }  # a block scalar: its lines are skipped
  if (c == "{" || c == "[" || c == "&" || c == "*" || c == "!") { bad = "flow or tagged value (" c ") not supported"; return "" }
  sub(/[ \t]+#.*$/, "", v)
  return v
}

function out(name, v) { printf "%s\t%s\n", name, v }
function ignore(what) { if (!(what in told)) { told[what] = 1; out("ignored", what) } }

BEGIN { depth = 0; lines = 0; iface = ""; ap = ""; errors = 0; skip = -1 }
{
  sub(/\r$/, "")
  lines++
  if (lines == 1 && file == "user-data") {
    if ($0 !~ /^#cloud-config[ \t]*$/) { out("error", "user-data is not #cloud-config (first line: " substr($0, 1, 40) ")"); errors++; exit }
    next
  }
  if ($0 ~ /^[ \t]*(#.*)?$/) next
  if ($0 ~ /^\t/) { out("error", "line " NR ": tab indentation"); errors++; exit }
  match($0, /^ */); ind = RLENGTH
  if (skip >= 0 && ind > skip) next  # inside a block scalar
  skip = -1
  s = substr($0, ind + 1)
  if (s ~ /^- / || s == "-") {  # a list item: belongs to the key above it
    if (depth > 0) path_ignore(depth)
    next
  }
  if (s ~ /^---/ || s ~ /^\.\.\./) next
  while (depth > 0 && ind <= indent[depth]) depth--
  k = split_key(s)
  if (bad != "") { out("error", "line " NR ": " bad); errors++; exit }
  block = 0
  v = scalar(value)
  if (bad != "") { out("error", "line " NR " (" k "): " bad); errors++; exit }
  depth++; indent[depth] = ind; key[depth] = k
  if (value == "") next  # a section (or an empty value): its children follow
  if (block) { skip = ind; v = "" }
  leaf(v)
}

function K(i) { return key[i + o] }

function path_ignore(d,    i, p) {
  o = (file == "network-config" && key[1] == "network") ? 1 : 0
  p = ""
  for (i = 1; i <= d; i++) p = p (i > 1 ? "." : "") key[i]
  classify_ignore(p, d - o)
}

function classify_ignore(p, d) {
  if (file == "user-data") {
    if (K(1) ~ /^ssh/ || K(1) == "users" || K(1) == "enable_ssh" || K(1) == "disable_root") { if (!("ssh" in told)) { told["ssh"] = 1; out("ssh", K(1)) } return }
    ignore(K(1)); return
  }
  if (K(1) == "wifis" && d >= 2 && K(2) != iface) { ignore("wifis." K(2) " (only the first interface is used)"); return }
  if (K(1) == "wifis" && d >= 4 && K(3) == "access-points" && K(4) != ap) { ignore("access points after the first"); return }
  if (K(1) == "wifis" && d >= 5) { ignore("wifis." K(2) ".access-points." K(4) "." K(5) (d > 5 ? "." K(6) : "")); return }
  if (K(1) == "wifis" && d >= 3) { ignore("wifis." K(2) "." K(3)); return }
  ignore(d >= 2 ? K(1) "." K(2) : K(1))
}

function leaf(v,    d) {
  o = (file == "network-config" && key[1] == "network") ? 1 : 0
  d = depth - o
  if (file == "user-data") {
    if (d == 1 && K(1) == "hostname") { out("hostname", v); return }
    if (d == 1 && K(1) == "manage_etc_hosts") return
    classify_ignore("", d); return
  }
  if (d == 1 && K(1) == "version") { if (v != "2") { out("error", "network config version " v " (only version 2 is read)"); errors++; exit } return }
  if (d == 1 && K(1) == "renderer") return
  if (K(1) == "wifis" && d >= 2) {
    if (iface == "") { iface = K(2); out("iface", iface) }
    if (K(2) != iface) { classify_ignore("", d); return }
    if (d == 3 && K(3) == "regulatory-domain") { out("country", v); return }
    if (d == 3 && K(3) == "dhcp4") { if (v != "true" && v != "yes") ignore("dhcp4: " v " (the image always uses DHCP)"); return }
    if (d == 3 && (K(3) == "optional" || K(3) == "renderer")) return
    if (d >= 5 && K(3) == "access-points") {
      if (ap == "") { ap = K(4); out("ssid", ap) }
      if (K(4) != ap) { classify_ignore("", d); return }
      if (d == 5 && K(5) == "password") { out("password", v); return }
      if (d == 5 && K(5) == "hidden") { if (v == "true" || v == "yes") out("hidden", "true"); return }
      if (d == 6 && K(5) == "auth" && K(6) == "password") { out("password", v); return }
      if (d == 6 && K(5) == "auth" && K(6) == "key-management") { if (v != "psk") { out("error", "access point key-management " v " (only psk)"); errors++; exit } return }
    }
  }
  classify_ignore("", d)
}

END { if (errors) exit 1 }
