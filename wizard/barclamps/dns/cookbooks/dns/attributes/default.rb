# frozen_string_literal: true

# Where each platform family's BIND keeps its configuration, zones and working files. What
# to serve comes from the environment (node['dns'], pushed by crowbar-wizard).
if platform_family?('rhel')
  default['dns']['bind']['package'] = 'bind'
  default['dns']['bind']['service'] = 'named'
  default['dns']['bind']['config'] = '/etc/named.conf'
  default['dns']['bind']['zones'] = '/var/named'
  default['dns']['bind']['directory'] = '/var/named'
  default['dns']['bind']['group'] = 'named'
else
  default['dns']['bind']['package'] = 'bind9'
  default['dns']['bind']['service'] = 'named'
  default['dns']['bind']['config'] = '/etc/bind/named.conf.options'
  default['dns']['bind']['zones'] = '/etc/bind'
  default['dns']['bind']['directory'] = '/var/cache/bind'
  default['dns']['bind']['group'] = 'bind'
end
