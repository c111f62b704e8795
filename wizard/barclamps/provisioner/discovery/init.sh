#!/bin/busybox sh
# Crowbar Wizard discovery image: the first and only process of an unknown machine that
# PXE-booted. It brings up the NIC it booted from by DHCP, reads what the machine is made of
# from the kernel (sysfs, /proc) and its BMC (in-band IPMI), posts that inventory to the
# admin node with the token its boot script gave it, then asks the admin node what to do:
# wait, reboot (into the installer, once the machine is a node of the deployment) or power
# off. Everything it says goes to the console (serial or screen).
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
/bin/busybox mkdir -p /proc /sys /dev /run /tmp /sbin /usr/bin /usr/sbin
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1

say() { echo "crowbar-discovery: $*"; }
arg() {  # the value of kernel argument $1
    for word in $(cat /proc/cmdline); do
        case "$word" in "$1="*) echo "${word#*=}"; return ;; esac
    done
}
halt_here() {  # nothing sensible is left to do: keep the console readable, never exit
    say "$*"
    while true; do sleep 3600; done
}

URL=$(arg crowbar.url)
MAC=$(arg crowbar.mac | tr 'A-F' 'a-f')
TOKEN=$(arg crowbar.token)
POLL=$(arg crowbar.poll)
POLL=${POLL:-10}
[ -n "$URL" ] && [ -n "$MAC" ] && [ -n "$TOKEN" ] \
    || halt_here "no crowbar.url, crowbar.mac or crowbar.token on the kernel command line"
say "image $(sed -n 's/.*"key": "\(.*\)".*/\1/p' /etc/crowbar-image.json), kernel $(uname -r)"

# --- drivers: every module of the image, in dependency order (absent hardware costs nothing)
while read -r name path params; do
    insmod "$path" $params 2>/dev/null
done < /etc/modules.load
mdev -s 2>/dev/null

# --- the booting NIC, by the MAC the admin node knows it by
nic=""
for _ in $(seq 60); do
    for dev in /sys/class/net/*; do
        [ "$(cat "$dev/address" 2>/dev/null)" = "$MAC" ] && nic=${dev##*/}
    done
    [ -n "$nic" ] && break
    sleep 0.5
done
[ -n "$nic" ] || halt_here "no NIC has the MAC $MAC"
# every physical NIC up, so that each shows its link and speed
for dev in /sys/class/net/*; do
    [ -e "$dev/device" ] && ip link set "${dev##*/}" up
done
say "asking for an address on $nic ($MAC)"
until udhcpc -i "$nic" -s /etc/udhcpc.sh -t 10 -T 3 -n -S >/dev/null 2>&1; do
    say "no DHCP answer on $nic; trying again"
    sleep 5
done
say "$nic has $(cat /run/crowbar-address)"

# --- the inventory, as JSON ---------------------------------------------------------------
js() {  # a JSON string of $1: quotes and backslashes escaped, control characters dropped
    printf '"%s"' "$(printf '%s' "$1" | tr -d '\000-\037' | cut -c1-128 \
        | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g')"
}
jsornull() { if [ -n "$1" ]; then js "$1"; else printf 'null'; fi; }
dmi() { cat "/sys/class/dmi/id/$1" 2>/dev/null | sed 's/ *$//'; }
number() { case "$1" in ''|*[!0-9]*) printf 'null' ;; *) printf '%s' "$1" ;; esac; }

nics=""
macs=""
for dev in /sys/class/net/*; do
    [ -e "$dev/device" ] || continue
    echo "$(basename "$(readlink -f "$dev/device")") ${dev##*/}"
done | sort > /tmp/nics  # bus order: the PCI (or other bus) address of each NIC
sleep 2  # links just set up report their carrier within a second or two
while read -r bus name; do
    dev=/sys/class/net/$name
    mac=$(cat "$dev/address")
    speed=$(cat "$dev/speed" 2>/dev/null)
    [ "${speed:--1}" -gt 0 ] 2>/dev/null || speed=""
    link=false
    [ "$(cat "$dev/carrier" 2>/dev/null)" = 1 ] && link=true
    driver=$(basename "$(readlink "$dev/device/driver" 2>/dev/null)")
    nics="$nics${nics:+,}{\"mac\":$(js "$mac"),\"name\":$(js "$name"),\"bus\":$(js "$bus"),\"speed_mbps\":$(number "$speed"),\"link\":$link,\"driver\":$(jsornull "$driver")}"
    macs="$macs${macs:+,}$(js "$mac")"
done < /tmp/nics

drives=""
count=0
for dev in /sys/block/*; do
    name=${dev##*/}
    case "$name" in loop*|ram*|zram*|dm-*|sr*|md*|nbd*) continue ;; esac
    [ -e "$dev/device" ] || continue
    sectors=$(cat "$dev/size")
    [ "${sectors:-0}" -gt 0 ] || continue
    serial=$(cat "$dev/device/serial" 2>/dev/null || cat "$dev/serial" 2>/dev/null)
    model=$(cat "$dev/device/model" 2>/dev/null | sed 's/ *$//')
    drives="$drives${drives:+,}{\"name\":$(js "$name"),\"size_bytes\":$((sectors * 512)),\"serial\":$(jsornull "$serial"),\"model\":$(jsornull "$model")}"
    count=$((count + 1))
done

cores=$(grep -c '^processor' /proc/cpuinfo)
memory_kb=$(sed -n 's/^MemTotal: *\([0-9]*\) kB/\1/p' /proc/meminfo)
memory_mb=$((memory_kb / 1024))
memory_gb=$(((memory_kb + 1048575) / 1048576))
virtualization=false
grep -qE '^flags.* (vmx|svm)( |$)' /proc/cpuinfo && virtualization=true

bmc_mac=""
bmc_address=""
if [ -e /dev/ipmi0 ] || [ -e /dev/ipmi/0 ]; then
    ipmitool lan print 1 > /tmp/lan 2>/dev/null
    bmc_address=$(sed -n 's/^IP Address *: *\([0-9.]*\)$/\1/p' /tmp/lan)
    bmc_mac=$(sed -n 's/^MAC Address *: *\([0-9a-fA-F:]*\)$/\1/p' /tmp/lan | tr 'A-F' 'a-f')
    [ "$bmc_address" = 0.0.0.0 ] && bmc_address=""
    [ "$bmc_mac" = 00:00:00:00:00:00 ] && bmc_mac=""
    bmc=true
else
    bmc=false
fi

cat > /tmp/inventory.json <<JSON
{"mac":$(js "$MAC"),"macs":[$macs],"serial":$(jsornull "$(dmi product_serial)"),
"manufacturer":$(jsornull "$(dmi sys_vendor)"),"model":$(jsornull "$(dmi product_name)"),
"cpu_cores":$cores,"memory_gb":$memory_gb,"memory_mb":$memory_mb,"disks":$count,
"virtualization":$virtualization,"bmc_mac":$(jsornull "$bmc_mac"),
"bmc_address":$(jsornull "$bmc_address"),"bmc_present":$bmc,
"nics":[$nics],"drives":[$drives]}
JSON

# --- post it, then ask what to do -----------------------------------------------------------
# (busybox's own wget -T crashes in Debian's static build: timeout bounds each request)
post() {  # the inventory; 0 once the admin node took it (or knows the machine already)
    rm -f /tmp/answer
    timeout 30 wget -q -O /tmp/answer --header "X-Crowbar-Token: $TOKEN" \
        --header "Content-Type: application/json" \
        --post-data "$(cat /tmp/inventory.json)" "$URL/inventory" 2>/tmp/post-error \
        || grep -q ' 409 ' /tmp/post-error
}
delay=5
until post; do
    say "the admin node did not take the inventory ($(tail -n 1 /tmp/post-error)); again in ${delay} s"
    sleep "$delay"
    [ "$delay" -lt 60 ] && delay=$((delay * 2))
done
say "inventory posted: $(cat /tmp/answer 2>/dev/null || tail -n 1 /tmp/post-error)"

while true; do
    order=$(timeout 30 wget -q -O - --header "X-Crowbar-Token: $TOKEN" "$URL/discovery/$MAC" \
        2>/dev/null | head -n 1)
    case "$order" in
        reboot)
            say "this machine is a node of the deployment now: rebooting"
            sync
            reboot -f
            ;;
        poweroff)
            say "the admin node asks to power off"
            sync
            poweroff -f
            ;;
    esac
    sleep "$POLL"
done
