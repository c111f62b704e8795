# frozen_string_literal: true

# Every other node forwards all of its syslog to the logging server, queued on disk while
# the server is unreachable so that nothing is lost across its restarts.
logging = node['logging']

package 'rsyslog'
package 'rsyslog-relp' if logging['protocol'] == 'relp'

template '/etc/rsyslog.d/90-crowbar-forward.conf' do
  source 'client.conf.erb'
  owner 'root'
  group 'root'
  mode '0644'
  variables(
    protocol: logging['protocol'],
    server: logging['server'],
    port: logging['port']
  )
  notifies :restart, 'service[rsyslog]', :delayed
end

service 'rsyslog' do
  action %i(enable start)
end
