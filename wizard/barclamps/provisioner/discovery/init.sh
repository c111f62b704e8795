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

# --- the network check: the node's planned network on this kernel ----------------------------
kernel_of() {  # the kernel's name for the plan's device $1
    sed -n "s/^$1 \(.*\)$/\1/p" /tmp/check-names | head -n 1 | grep . || echo "$1"
}
plan_of() {  # the plan's name for the kernel's device $1
    sed -n "s/^\([^ ]*\) $1$/\1/p" /tmp/check-names | head -n 1 | grep . || echo "$1"
}
attempt() {  # run "$@"; a failure is noted for the report
    "$@" 2>/tmp/step || echo "$*: $(head -n 1 /tmp/step)" >> /tmp/check-errors
}
write() {  # write $1 to the sysfs file $2; a refusal is noted for the report
    echo "$1" 2>/tmp/step > "$2" || echo "echo $1 > $2: refused" >> /tmp/check-errors
}
undo_check() {  # the previous check's devices, addresses and route taken away
    [ -f /tmp/check-made ] || return 0
    tac /tmp/check-made | while read -r kind name; do
        case "$kind" in
            vlan) ip link del "$name" 2>/dev/null ;;
            bond) echo "-$name" > /sys/class/net/bonding_masters 2>/dev/null ;;
            nic) ip addr flush dev "$name" 2>/dev/null ;;
        esac
    done
    router=$(cat /run/crowbar-router 2>/dev/null)
    [ -n "$router" ] && ip route replace default via "$router" dev "$nic"
    rm -f /tmp/check-made
}
device_json() {  # the kernel's view of the plan's device $1, as JSON (nothing if absent)
    dev=$(kernel_of "$1")
    d=/sys/class/net/$dev
    [ -d "$d" ] || return 0
    up=false
    [ "$(cat "$d/operstate")" = up ] && up=true
    carrier=false
    [ "$(cat "$d/carrier" 2>/dev/null)" = 1 ] && carrier=true
    slaves=""
    mode=null
    if [ -d "$d/bonding" ]; then
        mode=$(js "$(cut -d' ' -f1 "$d/bonding/mode")")
        for slave in $(cat "$d/bonding/slaves"); do
            slaves="$slaves${slaves:+,}$(js "$(cat "/sys/class/net/$slave/bonding_slave/perm_hwaddr")")"
        done
    fi
    vlan=null
    parent=null
    if [ -f "/proc/net/vlan/$dev" ]; then
        vlan=$(sed -n 's/.*VID: \([0-9]*\).*/\1/p' "/proc/net/vlan/$dev")
        parent=$(js "$(plan_of "$(sed -n 's/^Device: *\([^ ]*\).*/\1/p' "/proc/net/vlan/$dev")")")
    fi
    addresses=""
    for address in $(ip -4 addr show dev "$dev" | sed -n 's/^ *inet \([0-9.]*\/[0-9]*\).*/\1/p'); do
        addresses="$addresses${addresses:+,}$(js "$address")"
    done
    printf '{"name":%s,"kernel":%s,"mac":%s,"mtu":%s,"up":%s,"carrier":%s,"slaves":[%s],"bond_mode":%s,"vlan":%s,"parent":%s,"addresses":[%s]}' \
        "$(js "$1")" "$(js "$dev")" "$(js "$(cat "$d/address")")" "$(number "$(cat "$d/mtu")")" \
        "$up" "$carrier" "$slaves" "$mode" "$(number "$vlan")" "$parent" "$addresses"
}
check_network() {  # apply the plan in /tmp/orders, then post what the kernel made of it
    request=$(sed -n '1s/^check-network \([0-9a-f]*\)$/\1/p' /tmp/orders)
    [ -n "$request" ] || return 0
    say "network check $request: bringing up the node's planned network"
    undo_check
    : > /tmp/check-errors
    : > /tmp/check-names
    : > /tmp/check-made
    boot=""
    sed 1d /tmp/orders > /tmp/check-plan
    while read -r kind a b c d rest; do
        case "$kind" in
            nic)  # nic NAME MAC MTU: the plan's name for the NIC with that MAC
                dev=""
                for x in /sys/class/net/*; do
                    [ -e "$x/device" ] && [ "$(cat "$x/address")" = "$b" ] && dev=${x##*/}
                done
                [ -n "$dev" ] || { echo "no NIC has the MAC $b ($a)" >> /tmp/check-errors; continue; }
                echo "$a $dev" >> /tmp/check-names
                if [ "$b" = "$MAC" ]; then boot=$a; continue; fi
                echo "nic $dev" >> /tmp/check-made
                attempt ip link set "$dev" mtu "$c" up
                ;;
            bond)  # bond NAME MODE MIIMON MTU NIC...
                case " $rest " in *" $boot "*) continue ;; esac  # kept: the admin node's link
                write "+$a" /sys/class/net/bonding_masters
                echo "bond $a" >> /tmp/check-made
                write "$b" "/sys/class/net/$a/bonding/mode"
                write "$c" "/sys/class/net/$a/bonding/miimon"
                for member in $rest; do
                    ip link set "$(kernel_of "$member")" down
                    write "+$(kernel_of "$member")" "/sys/class/net/$a/bonding/slaves"
                done
                attempt ip link set "$a" mtu "$d" up
                ;;
            vlan)  # vlan NAME PARENT ID MTU
                attempt ip link add link "$(kernel_of "$b")" name "$a" type vlan id "$c"
                echo "vlan $a" >> /tmp/check-made
                attempt ip link set "$a" mtu "$d" up
                ;;
            address)  # address DEVICE CIDR
                [ "$a" = "$boot" ] || attempt ip addr add "$b" dev "$(kernel_of "$a")"
                ;;
            route)  # route ROUTER DEVICE
                [ "$b" = "$boot" ] || attempt ip route replace default via "$a" dev "$(kernel_of "$b")"
                ;;
        esac
    done < /tmp/check-plan
    sleep 3  # links, bonds and VLANs settle
    devices=""
    for name in $(awk '$1 == "nic" || $1 == "bond" || $1 == "vlan" {print $2}' /tmp/check-plan); do
        one=$(device_json "$name")
        [ -n "$one" ] && devices="$devices${devices:+,}$one"
    done
    route=$(ip route show | sed -n 's/^default via \([0-9.]*\) dev \([^ ]*\).*/\1 \2/p' | head -n 1)
    errors=""
    while read -r line; do errors="$errors${errors:+,}$(js "$line")"; done < /tmp/check-errors
    printf '{"request":%s,"boot":%s,"devices":[%s],"default_via":%s,"default_dev":%s,"errors":[%s]}' \
        "$(js "$request")" "$(js "${boot:-none}")" "$devices" "$(jsornull "${route%% *}")" \
        "$(jsornull "$(plan_of "${route##* }")")" "$errors" > /tmp/check.json
    [ -n "$route" ] || sed -i 's/"default_dev":"[^"]*"/"default_dev":null/' /tmp/check.json
    if timeout 30 wget -q -O /dev/null --header "X-Crowbar-Token: $TOKEN" \
        --header "Content-Type: application/json" --post-data "$(cat /tmp/check.json)" \
        "$URL/discovery/$MAC/network" 2>/tmp/post-error; then
        say "network check $request: reported"
    else
        say "network check $request: not taken ($(tail -n 1 /tmp/post-error))"
    fi
}

while true; do
    timeout 30 wget -q -O /tmp/orders --header "X-Crowbar-Token: $TOKEN" \
        "$URL/discovery/$MAC" 2>/dev/null || : > /tmp/orders
    case "$(head -n 1 /tmp/orders)" in
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
        check-network*)
            check_network
            ;;
    esac
    sleep "$POLL"
done
