"""A small valid answers document as text, for tests that break it one line at a time."""

BASE = """\
schema_version: 1
site:
  name: lab
  domain: lab.crowbar.test
  timezone: UTC
  ntp_servers: [192.168.124.10]
  dns_forwarders: [192.168.124.1]
admin:
  hostname: admin
  address: 192.168.124.10
  interface: eth0
conduits:
  intf0:
    interfaces: [1g1]
  intf1:
    interfaces: [1g2, 1g3]
    teaming_mode: 4
networks:
  admin:
    conduit: intf0
    subnet: 192.168.124.0/24
    router: 192.168.124.1
    router_pref: 10
    ranges:
      admin: 192.168.124.10-192.168.124.11
      dhcp: 192.168.124.21-192.168.124.80
      host: 192.168.124.81-192.168.124.160
    node_addresses: all
  bmc:
    conduit: bmc
    subnet: 192.168.124.0/24
    ranges:
      host: 192.168.124.162-192.168.124.240
    node_addresses: all
  public:
    conduit: intf1
    subnet: 192.168.126.0/24
    router: 192.168.126.1
    router_pref: 5
    vlan: 300
    use_vlan: true
    ranges:
      host: 192.168.126.2-192.168.126.49
    node_addresses: [controller]
  nova_floating:
    conduit: intf1
    subnet: 192.168.126.128/26
    vlan: 300
    use_vlan: true
    ranges:
      host: 192.168.126.129-192.168.126.190
bmc:
  network: bmc
  username: root
  password: env:CROWBAR_BMC_PASSWORD
discovery:
  methods: [ipmi, pxe]
  bmc_ranges: [192.168.124.162-192.168.124.240]
provisioning:
  os: ubuntu-24.04
  mirror: http://192.168.124.10:8091/ubuntu
chef:
  server_url: http://192.168.124.10:4545
  client_name: crowbar
  key: file:/etc/crowbar/chef/crowbar.pem
barclamps:
  ntp:
    attributes:
      max_poll: 10
    roles:
      ntp-server: [admin]
nodes:
  - name: ctl-1
    macs: [52:54:00:00:10:00]
    bmc_address: 192.168.124.162
    hardware: {cpu_cores: 8, memory_gb: 32, disks: 2}
    roles: [controller]
  - name: compute-1
    macs: [52:54:00:00:11:00, 52:54:00:00:11:01]
    bmc_address: 192.168.124.163
    addresses:
      admin: 192.168.124.90
    roles: [compute]
"""
