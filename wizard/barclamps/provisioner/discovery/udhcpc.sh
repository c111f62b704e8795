#!/bin/busybox sh
# Crowbar Wizard discovery image: busybox udhcpc's hook. Puts the leased address, netmask
# and router on the booting NIC, and takes them away when the lease is lost.
case "$1" in
    deconfig)
        ip addr flush dev "$interface"
        ip link set "$interface" up
        ;;
    bound|renew)
        ip addr flush dev "$interface"
        ifconfig "$interface" "$ip" netmask "${subnet:-255.255.255.0}" up
        if [ -n "$router" ]; then
            ip route replace default via "${router%% *}" dev "$interface"
            echo "${router%% *}" > /run/crowbar-router
        fi
        echo "$ip" > /run/crowbar-address
        ;;
esac
exit 0
