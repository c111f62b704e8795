# frozen_string_literal: true

# The logging server: receives the nodes' syslog on the barclamp's protocol and port, keeps
# each host's messages in its own file, rotates them daily and keeps retention_days of
# them, and forwards everything to the site's own collectors when there are any.
logging = node['logging']

package 'rsyslog'
package 'rsyslog-relp' if logging['protocol'] == 'relp'
package 'logrotate'

directory '/var/log/crowbar/nodes' do
  owner 'root'
  group 'adm'
  mode '0750'
  recursive true
end

template '/etc/rsyslog.d/10-crowbar-server.conf' do
  source 'server.conf.erb'
  owner 'root'
  group 'root'
  mode '0644'
  variables(
    protocol: logging['protocol'],
    port: logging['port'],
    forward_to: logging['external_servers'].to_a.map { |server| server.split(':', 2) }
  )
  notifies :restart, 'service[rsyslog]', :delayed
end

template '/etc/logrotate.d/crowbar-nodes' do
  source 'logrotate.erb'
  owner 'root'
  group 'root'
  mode '0644'
  variables(retention_days: logging['retention_days'])
end

service 'rsyslog' do
  action %i(enable start)
end
