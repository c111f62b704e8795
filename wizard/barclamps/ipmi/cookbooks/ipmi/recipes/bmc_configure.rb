# frozen_string_literal: true

# Gives the node's BMC its planned address on the BMC network, in-band through the OS's
# IPMI driver (a BMC fresh from the factory may have no usable LAN settings yet). Each
# setting is changed only when `ipmitool lan print` shows another value. The BMC account
# stays crowbar-wizard's, set over the network with the answers file's credentials: a
# password pushed to Chef would be readable by every node's client.
ipmi = node['ipmi']
address = node['crowbar']['network']['bmc']
network = ipmi['network']
reason = if !ipmi['enable'] then 'the ipmi barclamp is set not to (enable: false)'
         elsif network.nil? then 'the site has no BMC network'
         elsif address.nil? then 'the node has no address on the BMC network'
         end

if reason
  log 'ipmi: BMC left as it is' do
    message "ipmi: this node's BMC is left as it is: #{reason}"
    level :warn
  end
  return
end

package 'ipmitool'

%w(ipmi_si ipmi_devintf).each do |driver|
  kernel_module driver do
    action :install
  end
end

channel = ipmi['lan_channel'].to_s
vlan = network['use_vlan'] && network['vlan'] ? network['vlan'].to_s : nil
# [ipmitool lan set arguments, the line of `lan print` showing it, the value it shows]
settings = [
  [%w(ipsrc static), 'IP Address Source', 'Static Address'],
  [['ipaddr', address], 'IP Address', address],
  [['netmask', network['netmask']], 'Subnet Mask', network['netmask']],
  [['vlan', 'id', vlan || 'off'], '802.1q VLAN ID', vlan || 'Disabled']
]
settings << [['defgw', 'ipaddr', network['router']], 'Default Gateway IP', network['router']] if network['router']

settings.each do |arguments, label, shown|
  execute "ipmi: lan set #{channel} #{arguments.join(' ')}" do
    command ['ipmitool', 'lan', 'set', channel, *arguments]
    only_if { ::File.exist?('/dev/ipmi0') }
    not_if do
      printed = shell_out('ipmitool', 'lan', 'print', channel).stdout
      printed.match?(/^#{Regexp.escape(label)}\s+: #{Regexp.escape(shown)}$/)
    end
  end
end

log 'ipmi: no in-band BMC' do
  message 'ipmi: no IPMI device (/dev/ipmi0) after loading ipmi_si: this node\'s BMC settings were not applied'
  level :warn
  not_if { ::File.exist?('/dev/ipmi0') }
end
